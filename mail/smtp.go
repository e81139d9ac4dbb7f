package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// TLSPolicy says whether the SMTP sender requires STARTTLS.
type TLSPolicy int

const (
	// TLSMandatory (the zero value, the default) refuses a server that does
	// not offer STARTTLS or whose certificate does not verify.
	TLSMandatory TLSPolicy = iota
	// TLSOpportunistic uses STARTTLS when offered, plain text otherwise.
	TLSOpportunistic
	// TLSNone never uses TLS (local relays and tests only).
	TLSNone
)

// ParseTLSPolicy parses a configuration value: "mandatory" (or ""),
// "opportunistic" or "none".
func ParseTLSPolicy(s string) (TLSPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "mandatory":
		return TLSMandatory, nil
	case "opportunistic":
		return TLSOpportunistic, nil
	case "none":
		return TLSNone, nil
	}
	return 0, fmt.Errorf("mail: politica TLS %q sconosciuta (ammesse: mandatory, opportunistic, none)", s)
}

// String returns the configuration spelling of p.
func (p TLSPolicy) String() string {
	switch p {
	case TLSMandatory:
		return "mandatory"
	case TLSOpportunistic:
		return "opportunistic"
	case TLSNone:
		return "none"
	}
	return "TLSPolicy(" + strconv.Itoa(int(p)) + ")"
}

// DefaultTimeout bounds each network step of SMTP.Send when Timeout is 0.
const DefaultTimeout = 30 * time.Second

// SMTP is a Sender that delivers through an SMTP server with go-mail's
// client: connect, EHLO, STARTTLS (per TLS), AUTH (when Username is set),
// then MAIL, RCPT, DATA with the raw bytes, QUIT. One connection per Send.
type SMTP struct {
	// Host is the server's name or IP address.
	Host string
	// Port is the server's port; 0 means 587 (submission).
	Port int
	// Username enables SMTP AUTH (the strongest mechanism offered; PLAIN
	// and LOGIN only over TLS). Empty means no authentication.
	Username string
	// Password for Username. The configuration names a file or an
	// environment variable; reading it is the caller's job.
	Password string
	// TLS is the STARTTLS policy; the zero value is TLSMandatory.
	TLS TLSPolicy
	// TLSConfig optionally sets roots or a client certificate; ServerName
	// defaults to Host.
	TLSConfig *tls.Config
	// Timeout bounds each network step (connect with greeting, EHLO,
	// STARTTLS and AUTH; then each of MAIL, RCPT, DATA and the final
	// reply); 0 means DefaultTimeout. The ctx deadline, when earlier,
	// wins, and cancelling ctx aborts the exchange at once.
	Timeout time.Duration
	// HELO is the name sent in EHLO; empty means this host's name.
	HELO string
}

var _ Sender = (*SMTP)(nil)
var _ Sender = Spool{}

// Addr returns "host:port" of the server.
func (s *SMTP) Addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.port()))
}

func (s *SMTP) port() int {
	if s.Port == 0 {
		return 587
	}
	return s.Port
}

func (s *SMTP) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// Send delivers raw to the recipients in to. Every failure is an *Error
// naming the server and, when there is one, the SMTP reply; Temporary
// classifies it. All recipients must be accepted, or nothing is sent.
func (s *SMTP) Send(ctx context.Context, from string, to []string, raw []byte) (err error) {
	env, err := s.check(ctx, from, to, raw)
	if err != nil {
		return err
	}
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	err = c.transact(ctx, env, raw)
	c.close(err == nil)
	return err
}

// check validates a message before any connection.
func (s *SMTP) check(ctx context.Context, from string, to []string, raw []byte) (addrs, error) {
	env, err := envelope(from, to)
	if err != nil {
		return env, s.fail(ctx, "validate", err)
	}
	if len(raw) == 0 {
		return env, s.fail(ctx, "validate", errors.New("messaggio vuoto"))
	}
	if s.Host == "" {
		return env, s.fail(ctx, "validate", errors.New("nessun server SMTP configurato"))
	}
	if err := checkHeaderValue("host", s.Host+s.HELO); err != nil {
		return env, s.fail(ctx, "validate", err)
	}
	return env, nil
}

// fail makes an *Error of a step's failure, classified (see Temporary).
func (s *SMTP) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Server: s.Addr(), Op: op, Err: err, Code: replyCode(err), Text: replyText(err)}
	switch {
	case op == "validate":
		e.temporary = false
	case e.Code >= 500:
		e.temporary = false
	default:
		// No reply code or a 4xx one: the connection or the server failed,
		// not this message; retrying later may work.
		e.temporary = true
	}
	var ne net.Error
	switch {
	case e.Code != 0:
	case ctx.Err() != nil:
		e.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	case errors.As(err, &ne) && ne.Timeout():
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 10*time.Millisecond {
			// The step deadline was the ctx deadline; its timer may not have fired yet.
			e.Err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
			break
		}
		e.Err = fmt.Errorf("nessuna risposta entro il timeout di %v: %w", s.timeout(), err)
	}
	return e
}

// conn is one open SMTP connection: its deadlines follow the ctx it was
// dialled with.
type conn struct {
	s    *SMTP
	ctx  context.Context
	dl   *deadliner
	stop func() bool
	sc   *smtp.Client
}

// dial connects, greets, negotiates TLS and authenticates.
func (s *SMTP) dial(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.fail(ctx, "connect", err)
	}
	dl := &deadliner{timeout: s.timeout(), ctx: ctx}
	stop := context.AfterFunc(ctx, dl.cancel)
	opts := []gomail.Option{
		gomail.WithPort(s.port()),
		gomail.WithTimeout(dl.stepTimeout()),
		gomail.WithTLSPolicy(goMailPolicy(s.TLS)),
		gomail.WithDialContextFunc(dl.dial),
	}
	if s.HELO != "" {
		opts = append(opts, gomail.WithHELO(s.HELO))
	}
	if s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = s.Host
		}
		opts = append(opts, gomail.WithTLSConfig(cfg))
	}
	if s.Username != "" {
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.Username),
			gomail.WithPassword(s.Password))
	}
	client, err := gomail.NewClient(s.Host, opts...)
	if err != nil {
		stop()
		return nil, s.fail(ctx, "validate", err)
	}
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		stop()
		dl.close()
		return nil, s.fail(ctx, "connect", err)
	}
	return &conn{s: s, ctx: ctx, dl: dl, stop: stop, sc: sc}, nil
}

// transact sends one message on the connection: MAIL, RCPT, DATA.
func (c *conn) transact(ctx context.Context, env addrs, raw []byte) error {
	step := func(op string, f func() error) error {
		if err := ctx.Err(); err != nil {
			return c.s.fail(ctx, op, err)
		}
		if err := c.dl.arm(); err != nil {
			return c.s.fail(c.ctx, op, err)
		}
		return c.s.fail(c.ctx, op, f())
	}
	if err := step("MAIL", func() error { return c.sc.Mail("<" + env.from + ">") }); err != nil {
		return err
	}
	for _, rcpt := range env.to {
		if err := step("RCPT", func() error { return c.sc.Rcpt("<" + rcpt + ">") }); err != nil {
			return err
		}
	}
	var w io.WriteCloser
	if err := step("DATA", func() (err error) { w, err = c.sc.Data(); return err }); err != nil {
		return err
	}
	return step("DATA", func() error {
		if _, err := w.Write(raw); err != nil {
			_ = w.Close()
			return err
		}
		return w.Close()
	})
}

// close ends the connection: with quit, a QUIT bounded by the timeout
// first (the messages are accepted; QUIT is a courtesy).
func (c *conn) close(quit bool) {
	if quit && c.dl.arm() == nil {
		_ = c.sc.Quit()
	}
	_ = c.sc.Close()
	c.dl.close()
	c.stop()
}

// Session sends several messages over one connection, dialled on the first
// Send and again after a failure (a failed message closes it, so the next
// one starts clean). A Session is used by one goroutine; its deadlines and
// cancellation follow the ctx it was made with. Close it when done.
type Session struct {
	s   *SMTP
	ctx context.Context
	c   *conn
}

// Session returns a Session of s bound to ctx.
func (s *SMTP) Session(ctx context.Context) *Session { return &Session{s: s, ctx: ctx} }

// Send delivers one message, as SMTP.Send does.
func (ss *Session) Send(ctx context.Context, from string, to []string, raw []byte) error {
	env, err := ss.s.check(ctx, from, to, raw)
	if err != nil {
		return err
	}
	if ss.c == nil {
		if ss.c, err = ss.s.dial(ss.ctx); err != nil {
			return err
		}
	}
	if err := ss.c.transact(ctx, env, raw); err != nil {
		ss.c.close(false)
		ss.c = nil
		return err
	}
	return nil
}

// Close quits and closes the connection, if one is open.
func (ss *Session) Close() error {
	if ss.c != nil {
		ss.c.close(true)
		ss.c = nil
	}
	return nil
}

// goMailPolicy maps a TLSPolicy to go-mail's.
func goMailPolicy(p TLSPolicy) gomail.TLSPolicy {
	switch p {
	case TLSOpportunistic:
		return gomail.TLSOpportunistic
	case TLSNone:
		return gomail.NoTLS
	}
	return gomail.TLSMandatory
}

// deadliner owns the connection's deadlines: each step gets Timeout, capped
// by the ctx deadline, and cancelling ctx expires the deadline at once.
type deadliner struct {
	timeout time.Duration
	ctx     context.Context

	mu       sync.Mutex
	conn     net.Conn
	canceled bool
}

// stepTimeout is the timeout of the next step: Timeout or what is left of
// the ctx deadline, if less (at least 1ms, so go-mail accepts it).
func (d *deadliner) stepTimeout() time.Duration {
	t := d.timeout
	if dl, ok := d.ctx.Deadline(); ok {
		if left := time.Until(dl); left < t {
			t = left
		}
	}
	return max(t, time.Millisecond)
}

// dial is go-mail's dial function: it records the connection.
func (d *deadliner) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.canceled {
		_ = conn.Close()
		return nil, d.ctx.Err()
	}
	d.conn = conn
	return conn, nil
}

// arm sets the deadline for the next step, or fails if ctx is done.
func (d *deadliner) arm() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.canceled || d.ctx.Err() != nil {
		return d.ctx.Err()
	}
	if d.conn == nil {
		return errors.New("nessuna connessione")
	}
	return d.conn.SetDeadline(time.Now().Add(d.stepTimeout()))
}

// cancel expires the deadline so that any blocked read or write returns.
func (d *deadliner) cancel() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.canceled = true
	if d.conn != nil {
		_ = d.conn.SetDeadline(time.Unix(1, 0))
	}
}

// close closes the connection (a no-op when QUIT already did).
func (d *deadliner) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		_ = d.conn.Close()
	}
}

// addrs is a validated SMTP envelope.
type addrs struct {
	from string
	to   []string
}

// envelope validates the envelope addresses and reduces them to bare
// addresses for MAIL FROM and RCPT TO.
func envelope(from string, to []string) (addrs, error) {
	var e addrs
	a, err := parseAddress("envelope from", from)
	if err != nil {
		return e, err
	}
	e.from = a.Address
	if len(to) == 0 {
		return e, errors.New("mail: nessun destinatario")
	}
	for _, t := range to {
		a, err := parseAddress("envelope to", t)
		if err != nil {
			return e, err
		}
		e.to = append(e.to, a.Address)
	}
	return e, nil
}
