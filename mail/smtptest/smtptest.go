// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp)
// in-process over TCP for tests: it stores the messages it receives and can
// be told to reply 4xx/5xx or to stall at MAIL, RCPT or DATA.
//
//	srv := smtptest.Start(t)
//	sender := &mail.SMTP{Host: srv.Host, Port: srv.Port, TLS: mail.TLSNone, Timeout: 2 * time.Second}
//	... send ...
//	msgs := srv.Messages()
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"anprsec/internal/testnet"
)

// Message is one message the server accepted.
type Message struct {
	// From is the MAIL FROM address, To the accepted RCPT TO addresses.
	From string
	To   []string
	// Data is the message exactly as received (CRLF, dot-unstuffed).
	Data []byte
	// User is the authenticated user name, "" without AUTH.
	User string
}

// Stage is an SMTP command the server can be told to fail or stall on.
type Stage string

// Stages.
const (
	Mail Stage = "MAIL"
	Rcpt Stage = "RCPT"
	Data Stage = "DATA" // after the body was received, before the reply
)

// Options configure StartWith.
type Options struct {
	// TLS offers STARTTLS with a fresh self-signed certificate for
	// 127.0.0.1 and localhost; trust it with Server.ClientTLSConfig.
	TLS bool
	// Username and Password, when set, make AUTH PLAIN mandatory before MAIL.
	Username, Password string
}

// Server is a running test SMTP server; it is closed at the test's cleanup.
type Server struct {
	// Addr is "127.0.0.1:port"; Host and Port are its parts.
	Addr string
	Host string
	Port int

	srv      *smtp.Server
	ln       net.Listener
	opts     Options
	clientTC *tls.Config

	mu       sync.Mutex
	msgs     []Message
	faults   map[Stage]*fault
	rejects  map[string]*smtp.SMTPError
	stalls   map[Stage]chan struct{}
	closed   chan struct{}
	closeOne sync.Once
	received chan struct{}
}

type fault struct {
	err *smtp.SMTPError
	n   int // remaining; <= 0 means until Clear
}

// Start starts a plain server (no TLS, no AUTH) on 127.0.0.1.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts a server with the given options on 127.0.0.1.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{
		opts:     o,
		faults:   map[Stage]*fault{},
		rejects:  map[string]*smtp.SMTPError{},
		stalls:   map[Stage]chan struct{}{},
		closed:   make(chan struct{}),
		received: make(chan struct{}, 1),
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 32 << 20
	srv.MaxRecipients = 100
	srv.AllowInsecureAuth = !o.TLS
	if o.TLS {
		cert, pool, err := selfSigned()
		if err != nil {
			t.Fatalf("smtptest: certificate: %v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.clientTC = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	tcp := l.Addr().(*net.TCPAddr)
	s.Addr, s.Host, s.Port = tcp.String(), tcp.IP.String(), tcp.Port
	s.srv, s.ln = srv, l
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(s.Close)
	return s
}

// ClientTLSConfig returns a client configuration trusting the server's
// certificate (nil without Options.TLS).
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.clientTC == nil {
		return nil
	}
	return s.clientTC.Clone()
}

// Messages returns a copy of the messages accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = Message{From: m.From, To: append([]string(nil), m.To...), Data: append([]byte(nil), m.Data...), User: m.User}
	}
	return out
}

// WaitMessages waits until at least n messages were accepted or the
// timeout passes, and returns the messages.
func (s *Server) WaitMessages(n int, timeout time.Duration) []Message {
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.received:
		case <-deadline:
			return s.Messages()
		case <-s.closed:
			return s.Messages()
		}
	}
}

// Fail makes the next n commands of stage reply code and text (e.g. 451 or
// 550); n <= 0 means every one until Clear. For Data, the body is read and
// discarded first.
func (s *Server) Fail(stage Stage, code int, text string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[stage] = &fault{err: replyErr(code, text), n: n}
}

// Reject makes RCPT TO of addr (case-insensitive) reply code and text until
// Clear, while other recipients are accepted.
func (s *Server) Reject(addr string, code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[strings.ToLower(addr)] = replyErr(code, text)
}

// Stall makes commands of stage hang without reply until Clear or Close
// (the client must time out).
func (s *Server) Stall(stage Stage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.stalls[stage]; !ok {
		s.stalls[stage] = make(chan struct{})
	}
}

// Clear removes every fault, rejection and stall (stalled commands resume).
func (s *Server) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[Stage]*fault{}
	s.rejects = map[string]*smtp.SMTPError{}
	for st, ch := range s.stalls {
		close(ch)
		delete(s.stalls, st)
	}
}

// Reset forgets the received messages.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
}

// Close stops the server, releasing stalled commands. It is called at the
// test's cleanup; calling it earlier simulates a server going down.
func (s *Server) Close() {
	s.closeOne.Do(func() {
		close(s.closed)
		s.Clear()
		_ = s.srv.Close()
		_ = s.ln.Close() // in case Serve had not registered it yet
	})
}

func replyErr(code int, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: text}
}

// check applies stalls and faults of stage.
func (s *Server) check(stage Stage) error {
	s.mu.Lock()
	stall := s.stalls[stage]
	s.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-s.closed:
			return replyErr(421, "shutting down")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[stage]
	if f == nil {
		return nil
	}
	if f.n > 0 {
		f.n--
		if f.n == 0 {
			delete(s.faults, stage)
		}
	}
	return f.err
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	sess := &session{s: s}
	if s.opts.Username != "" {
		return &authSession{session: sess}, nil
	}
	return sess, nil
}

type session struct {
	s    *Server
	user string
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.opts.Username != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	if err := x.s.check(Mail); err != nil {
		return err
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := x.s.check(Rcpt); err != nil {
		return err
	}
	x.s.mu.Lock()
	rej := x.s.rejects[strings.ToLower(to)]
	x.s.mu.Unlock()
	if rej != nil {
		return rej
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := x.s.check(Data); err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, Message{From: x.from, To: append([]string(nil), x.to...), Data: b, User: x.user})
	x.s.mu.Unlock()
	select {
	case x.s.received <- struct{}{}:
	default:
	}
	return nil
}

type authSession struct{ *session }

func (x *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *authSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != x.s.opts.Username || password != x.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		x.user = username
		return nil
	}), nil
}

// Blackhole returns the address of a listener that accepts TCP connections
// and never says anything (a stalled server). Closed at cleanup.
func Blackhole(t testing.TB) string { return testnet.Blackhole(t) }

// RefusedAddr returns a 127.0.0.1 address where nothing listens
// (connections are refused).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// selfSigned makes a certificate for 127.0.0.1 and localhost and a pool
// trusting it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
