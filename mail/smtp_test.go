package mail

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/mail/smtptest"
)

const (
	envFrom = "sicurezza@anpr.example.it"
	envTo   = "maria.rossi@example.it"
)

func plainSender(srv *smtptest.Server) *SMTP {
	return &SMTP{Host: srv.Host, Port: srv.Port, TLS: TLSNone, Timeout: 2 * time.Second}
}

func senderFor(t *testing.T, addr string, timeout time.Duration) *SMTP {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &SMTP{Host: host, Port: p, TLS: TLSNone, Timeout: timeout}
}

// TestSMTPComposeDeliver sends a go-crypto sealed message through a real
// SMTP server and checks the received bytes and their RFC 3156 structure.
func TestSMTPComposeDeliver(t *testing.T) {
	key, err := pgpKeys()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Compose(testMessage(), openpgpEncrypt([]*openpgp.Entity{key}, key))
	if err != nil {
		t.Fatal(err)
	}
	srv := smtptest.Start(t)
	// Display-name forms are reduced to the bare address in the envelope.
	if err := plainSender(srv).Send(context.Background(), "ANPR <"+envFrom+">", []string{envTo}, raw); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("received %d messages", len(msgs))
	}
	got := msgs[0]
	if got.From != envFrom || len(got.To) != 1 || got.To[0] != envTo {
		t.Errorf("envelope = %q -> %q", got.From, got.To)
	}
	if !bytes.Equal(got.Data, raw) {
		t.Fatalf("received bytes differ from the sent ones:\n%q\n---\n%q", tail(got.Data), tail(raw))
	}
	p := parsePGPMIME(t, got.Data)
	checkItalian(t, checkInner(t, decryptGoCrypto(t, p.armored, key), italianText))
}

// TestSMTPDotStuffing: a body line starting with "." survives the DATA
// dot-stuffing both ways.
func TestSMTPDotStuffing(t *testing.T) {
	srv := smtptest.Start(t)
	raw := []byte("Subject: x\r\nMessage-ID: <d@x>\r\n\r\n.\r\n..\r\n.riga\r\nfine\r\n")
	if err := plainSender(srv).Send(context.Background(), envFrom, []string{envTo}, raw); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || !bytes.Equal(m[0].Data, raw) {
		t.Fatalf("received %q", m)
	}
}

func TestSMTPFaults(t *testing.T) {
	raw, err := Compose(testMessage(), fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = time.Second
	tests := []struct {
		name      string
		setup     func(t *testing.T) *SMTP // returns the sender
		ctx       func() (context.Context, context.CancelFunc)
		to        string
		temporary bool
		op        string
		code      int
		substr    string // in the error text besides the address
		maxTime   time.Duration
		is        error
	}{
		{name: "connection refused", temporary: true, op: "connect",
			setup: func(t *testing.T) *SMTP { return senderFor(t, smtptest.RefusedAddr(t), timeout) }, substr: "refused", is: nil},
		{name: "server closed", temporary: true, op: "connect",
			setup: func(t *testing.T) *SMTP { s := smtptest.Start(t); s.Close(); return plainSender(s) }},
		{name: "4xx on RCPT", temporary: true, op: "RCPT", code: 450, substr: "mailbox busy",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Fail(smtptest.Rcpt, 450, "mailbox busy", 0)
				return plainSender(s)
			}},
		{name: "5xx on RCPT", temporary: false, op: "RCPT", code: 550, substr: "unknown recipient", to: "ignoto@example.it",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Reject("ignoto@example.it", 550, "unknown recipient")
				return plainSender(s)
			}},
		{name: "4xx on MAIL", temporary: true, op: "MAIL", code: 421, substr: "try later",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Fail(smtptest.Mail, 421, "try later", 0)
				return plainSender(s)
			}},
		{name: "5xx on MAIL", temporary: false, op: "MAIL", code: 553, substr: "sender not allowed",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Fail(smtptest.Mail, 553, "sender not allowed", 0)
				return plainSender(s)
			}},
		{name: "4xx on DATA", temporary: true, op: "DATA", code: 451, substr: "local error",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Fail(smtptest.Data, 451, "local error", 0)
				return plainSender(s)
			}},
		{name: "5xx on DATA", temporary: false, op: "DATA", code: 554, substr: "content rejected",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Fail(smtptest.Data, 554, "content rejected", 0)
				return plainSender(s)
			}},
		{name: "stalled server (no greeting)", temporary: true, op: "connect", maxTime: 2 * time.Second, substr: "timeout",
			setup: func(t *testing.T) *SMTP { return senderFor(t, smtptest.Blackhole(t), timeout) }},
		{name: "stall on RCPT", temporary: true, op: "RCPT", maxTime: 2 * time.Second, substr: "timeout",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Stall(smtptest.Rcpt)
				snd := plainSender(s)
				snd.Timeout = timeout
				return snd
			}},
		{name: "stall after DATA", temporary: true, op: "DATA", maxTime: 2 * time.Second, substr: "timeout",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Stall(smtptest.Data)
				snd := plainSender(s)
				snd.Timeout = timeout
				return snd
			}},
		{name: "ctx deadline before timeout", temporary: true, op: "connect", maxTime: time.Second, is: context.DeadlineExceeded,
			setup: func(t *testing.T) *SMTP { return senderFor(t, smtptest.Blackhole(t), time.Minute) },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			}},
		{name: "ctx cancelled while stalled on RCPT", temporary: true, op: "RCPT", maxTime: time.Second, is: context.Canceled,
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				s.Stall(smtptest.Rcpt)
				snd := plainSender(s)
				snd.Timeout = time.Minute
				return snd
			},
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(300*time.Millisecond, cancel)
				return ctx, cancel
			}},
		{name: "STARTTLS mandatory, not offered", temporary: true, op: "connect", substr: "STARTTLS",
			setup: func(t *testing.T) *SMTP {
				s := smtptest.Start(t)
				snd := plainSender(s)
				snd.TLS = TLSMandatory
				return snd
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snd := tc.setup(t)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			to := tc.to
			if to == "" {
				to = envTo
			}
			start := time.Now()
			err := snd.Send(ctx, envFrom, []string{to}, raw)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Logf("%v (%v)", err, elapsed.Round(time.Millisecond))
			if got := Temporary(err); got != tc.temporary {
				t.Errorf("Temporary = %v, want %v", got, tc.temporary)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %T", err)
			}
			if e.Op != tc.op || e.Code != tc.code {
				t.Errorf("Op, Code = %q, %d; want %q, %d", e.Op, e.Code, tc.op, tc.code)
			}
			if !strings.Contains(err.Error(), snd.Addr()) {
				t.Errorf("error does not name the server %s", snd.Addr())
			}
			if tc.code != 0 && !strings.Contains(err.Error(), strconv.Itoa(tc.code)) {
				t.Errorf("error does not give the SMTP code")
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.substr)) {
				t.Errorf("error does not say %q", tc.substr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error is not %v", tc.is)
			}
			if tc.maxTime != 0 && elapsed > tc.maxTime {
				t.Errorf("Send took %v, want <= %v", elapsed, tc.maxTime)
			}
		})
	}
}

// TestSMTPRetryAfterTemporary: a 4xx for one attempt, then the retry is
// delivered (the pattern invio-pin relies on).
func TestSMTPRetryAfterTemporary(t *testing.T) {
	srv := smtptest.Start(t)
	srv.Fail(smtptest.Rcpt, 451, "greylisted", 1)
	raw, _ := Compose(testMessage(), fakeEncrypt)
	snd := plainSender(srv)
	err := snd.Send(context.Background(), envFrom, []string{envTo}, raw)
	if !Temporary(err) {
		t.Fatalf("first attempt: %v, want a temporary error", err)
	}
	if err := snd.Send(context.Background(), envFrom, []string{envTo}, raw); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if m := srv.Messages(); len(m) != 1 || !bytes.Equal(m[0].Data, raw) {
		t.Fatalf("received %d messages", len(m))
	}
}

// TestSMTPStartTLSAuth: the default policy (mandatory STARTTLS) with
// certificate verification and AUTH PLAIN.
func TestSMTPStartTLSAuth(t *testing.T) {
	srv := smtptest.StartWith(t, smtptest.Options{TLS: true, Username: "anprsec", Password: "s3greta"})
	raw, _ := Compose(testMessage(), fakeEncrypt)
	base := SMTP{Host: srv.Host, Port: srv.Port, Timeout: 2 * time.Second, TLSConfig: srv.ClientTLSConfig(), Username: "anprsec", Password: "s3greta"}

	t.Run("ok", func(t *testing.T) {
		snd := base
		if err := snd.Send(context.Background(), envFrom, []string{envTo}, raw); err != nil {
			t.Fatal(err)
		}
		m := srv.Messages()
		if len(m) != 1 || m[0].User != "anprsec" || !bytes.Equal(m[0].Data, raw) {
			t.Fatalf("received %+v", m)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		snd := base
		snd.Password = "sbagliata"
		err := snd.Send(context.Background(), envFrom, []string{envTo}, raw)
		if err == nil || Temporary(err) || !strings.Contains(err.Error(), "535") {
			t.Fatalf("err = %v (temporary %v), want permanent 535", err, Temporary(err))
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		snd := base
		snd.TLSConfig = nil
		err := snd.Send(context.Background(), envFrom, []string{envTo}, raw)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v, want a certificate error", err)
		}
	})
	t.Run("no auth", func(t *testing.T) {
		snd := base
		snd.Username = ""
		err := snd.Send(context.Background(), envFrom, []string{envTo}, raw)
		var e *Error
		if !errors.As(err, &e) || e.Op != "MAIL" || e.Code/100 != 5 {
			t.Fatalf("err = %v, want a 5xx on MAIL", err)
		}
	})
	t.Run("opportunistic", func(t *testing.T) {
		snd := base
		snd.TLS = TLSOpportunistic
		if err := snd.Send(context.Background(), envFrom, []string{envTo}, raw); err != nil {
			t.Fatal(err)
		}
	})
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("server accepted %d messages, want 2", n)
	}
}

func TestSMTPValidate(t *testing.T) {
	srv := smtptest.Start(t)
	snd := plainSender(srv)
	raw, _ := Compose(testMessage(), fakeEncrypt)
	tests := []struct {
		name string
		from string
		to   []string
		raw  []byte
		snd  *SMTP
	}{
		{"no recipients", envFrom, nil, raw, snd},
		{"bad recipient", envFrom, []string{"nobody"}, raw, snd},
		{"CRLF in recipient", envFrom, []string{"a@example.it>\r\nRCPT TO:<b@example.it"}, raw, snd},
		{"CRLF in from", envFrom + "\r\nRSET", []string{envTo}, raw, snd},
		{"empty message", envFrom, []string{envTo}, nil, snd},
		{"no host", envFrom, []string{envTo}, raw, &SMTP{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.snd.Send(context.Background(), tc.from, tc.to, tc.raw)
			var e *Error
			if !errors.As(err, &e) || e.Op != "validate" || Temporary(err) {
				t.Fatalf("err = %v, want a permanent validation error", err)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
}

func TestParseTLSPolicy(t *testing.T) {
	for in, want := range map[string]TLSPolicy{"": TLSMandatory, "mandatory": TLSMandatory, " Opportunistic ": TLSOpportunistic, "none": TLSNone} {
		got, err := ParseTLSPolicy(in)
		if err != nil || got != want {
			t.Errorf("ParseTLSPolicy(%q) = %v, %v", in, got, err)
		}
		if in != "" && !strings.EqualFold(strings.TrimSpace(in), got.String()) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := ParseTLSPolicy("starttls"); err == nil {
		t.Error("unknown policy accepted")
	}
}

func TestTemporaryClassify(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boh"), false},
		{context.DeadlineExceeded, true},
		{&net.OpError{Op: "dial", Err: errors.New("x")}, true},
		{&Error{Op: "RCPT", Code: 550, temporary: false}, false},
		{&Error{Op: "RCPT", Code: 450, temporary: true}, true},
	}
	for _, tc := range tests {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
