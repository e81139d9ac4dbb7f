package jobs

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/mail/smtptest"
	"anprsec/store"
)

// firstCertMails returns the first-certificate messages of the outbox.
func (c *certEnv) firstCertMails() []*store.Mail {
	c.t.Helper()
	var out []*store.Mail
	c.env.Store.View(func(tx *store.Tx) error {
		for _, st := range []store.MailState{store.MailQueued, store.MailSent, store.MailFailed} {
			ids, err := tx.MailsInState(st)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if m, err := tx.Mail(id); err == nil && m.Kind == store.MailFirstCert {
					out = append(out, m)
				}
			}
		}
		return nil
	})
	return out
}

// ascEmail is the personal e-mail of comune istat's ASC.
func (c *certEnv) ascEmail(istat string) string {
	c.t.Helper()
	var email string
	c.env.Store.View(func(tx *store.Tx) error {
		_, e, err := lifecycle.ASCAddress(tx, istat)
		email = e
		return err
	})
	if email == "" {
		c.t.Fatalf("comune %s has no ASC with an e-mail", istat)
	}
	return email
}

// gpgOpen has GnuPG decrypt the encrypted part of a PGP/MIME message with
// the secret key file keyName of the environment's keys, checks the
// service's good signature and returns the decrypted MIME entity.
func gpgOpen(t *testing.T, c *certEnv, raw []byte, keyName string) []byte {
	t.Helper()
	start := bytes.Index(raw, []byte("-----BEGIN PGP MESSAGE-----"))
	end := bytes.Index(raw, []byte("-----END PGP MESSAGE-----"))
	if start < 0 || end < 0 {
		t.Fatal("no armored message")
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	defer exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
	keys := filepath.Join(c.env.Config.Dir, "keys")
	for _, f := range []string{keyName, "service.pub.asc"} {
		if out, err := exec.Command("gpg", "--batch", "--homedir", home, "--import", filepath.Join(keys, f)).CombinedOutput(); err != nil {
			t.Fatalf("gpg import %s: %v\n%s", f, err, out)
		}
	}
	cmd := exec.Command("gpg", "--batch", "--homedir", home, "--trust-model", "always", "--decrypt")
	cmd.Stdin = bytes.NewReader(raw[start : end+len("-----END PGP MESSAGE-----")])
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg --decrypt: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), `Good signature from "service`) {
		t.Errorf("gpg: no good signature of the service key:\n%s", stderr.String())
	}
	return stdout.Bytes()
}

var passwordLine = regexp.MustCompile(`(?m)^  Password:    (\S+)\r?$`)

// openFirstCert splits a decrypted first-certificate entity into its text
// (with the password) and the attached P12 with its file name.
func openFirstCert(t *testing.T, inner []byte) (text, password, name string, p12 []byte) {
	t.Helper()
	im, err := netmail.ReadMessage(bytes.NewReader(inner))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(im.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("decrypted Content-Type %q", im.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(im.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if p.FileName() == "" {
			text = string(b)
			continue
		}
		name = p.FileName()
		if p12, err = decodeBase64Lines(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	m := passwordLine.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no password in the text:\n%s", text)
	}
	return text, m[1], name, p12
}

// TestFirstCertificateReachesTheSindaco: the census of a new comune asks
// three workstations and the server certificate; the first batch queues
// one message, for the lowest -PC- code (not the server's CO-9999, which
// sorts first), and invio-pin sends it over SMTP to the ASC's personal
// e-mail, PGP/MIME encrypted to the gateway and signed by the service:
// GnuPG decrypts it, the attached P12 opens in OpenSSL with the password
// of the text, and neither is in clear in the message. A certificate
// issued later sends nothing; the history says what was sent, never the
// password.
func TestFirstCertificateReachesTheSindaco(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	srv := smtptest.Start(t)
	c.env.Config.Mail.SMTP.Address = srv.Addr
	c.env.Config.Mail.SMTP.TLS = "none"
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	const first = "058091-PC-0001"
	ms := c.firstCertMails()
	if len(ms) != 1 || ms[0].Code != first || ms[0].State != store.MailQueued {
		t.Fatalf("first-certificate mails %+v, want one for %s", ms, first)
	}
	counts, err := c.run(invioJob)
	if err != nil || counts["sent"] != 1 {
		t.Fatalf("invio-pin: %v %v", counts, err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	asc := c.ascEmail("058091")
	if len(msgs[0].To) != 1 || msgs[0].To[0] != asc {
		t.Errorf("sent to %v, the ASC's e-mail is %s", msgs[0].To, asc)
	}
	raw := msgs[0].Data
	hdr, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ct := hdr.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/encrypted;") || hdr.Header.Get("Subject") != PINSubject {
		t.Errorf("headers: %q, %q", ct, hdr.Header.Get("Subject"))
	}
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not installed")
	}
	text, password, name, p12 := openFirstCert(t, gpgOpen(t, c, raw, "gateway.sec.asc"))
	if name != first+".p12" || !strings.Contains(text, first) {
		t.Errorf("attachment %q, text:\n%s", name, text)
	}
	if bytes.Contains(raw, []byte(password)) || bytes.Contains(raw, []byte(first+".p12")) {
		t.Error("the password or the file name is in clear in the message")
	}
	var sealed string
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Postazione(first)
		pw, err := c.env.Sealer.Open(p.PasswordSealed, domain.PasswordSealContext(first))
		sealed = string(pw)
		return err
	})
	if password != sealed {
		t.Errorf("the text's password %q is not the certificate's", password)
	}
	openSSLCheck(t, map[string]string{first: password}, map[string][]byte{first: p12})

	// A later certificate of the same comune sends nothing.
	c.env.Store.Update(func(tx *store.Tx) error {
		return tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0004", ISTAT: "058091", State: domain.CertRichiesta, Created: tx.Now, Updated: tx.Now})
	})
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	if ms := c.firstCertMails(); len(ms) != 1 || ms[0].State != store.MailSent {
		t.Errorf("after a second batch: %+v", ms)
	}
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 0 || len(srv.Messages()) != 1 {
		t.Errorf("second invio-pin: %v %v, %d messages", counts, err, len(srv.Messages()))
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return strings.HasPrefix(e.Action, "postazione.primo-certificato") })
	if len(hist) != 2 || hist[0].Key != first || !strings.Contains(hist[1].Detail, asc) {
		t.Errorf("history: %+v", hist)
	}
	for _, e := range hist {
		if strings.Contains(e.Detail, password) {
			t.Errorf("the password in the history: %q", e.Detail)
		}
	}
	// Sent: there is nothing to send again.
	err = c.env.Store.Update(func(tx *store.Tx) error {
		_, err := lifecycle.ResendFirstCertificate(tx, store.Source{Actor: "test"}, "058091", "", c.env.Loc)
		return err
	})
	if !errors.Is(err, lifecycle.ErrNothingToResend) {
		t.Errorf("resend of a sent certificate: %v", err)
	}
}

// TestFirstCertificateSentAgainAfterAFailure: the ASC's server refuses the
// message (550): it is set aside as failed, with the reason; reinvia-primo
// queues it again and the next invio-pin delivers the same message
// (same Message-ID).
func TestFirstCertificateSentAgainAfterAFailure(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	srv := smtptest.Start(t)
	c.env.Config.Mail.SMTP.Address = srv.Addr
	c.env.Config.Mail.SMTP.TLS = "none"
	c.env.Config.Mail.SMTP.Timeout = 5 * time.Second
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	srv.Reject(c.ascEmail("058091"), 550, "mailbox unavailable")
	if counts, err := c.run(invioJob); err != nil || counts["failed"] != 1 {
		t.Fatalf("invio-pin: %v %v", counts, err)
	}
	if ms := c.firstCertMails(); len(ms) != 1 || ms[0].State != store.MailFailed || !strings.Contains(ms[0].LastError, "550") {
		t.Fatalf("after the refusal: %+v", ms)
	}
	srv.Clear()
	var code string
	err := c.env.Store.Update(func(tx *store.Tx) error {
		var err error
		code, err = lifecycle.ResendFirstCertificate(tx, store.Source{Actor: "back-office:test"}, "058091", "casella riattivata", c.env.Loc)
		return err
	})
	if err != nil || code != "058091-PC-0001" {
		t.Fatalf("resend: %q %v", code, err)
	}
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 1 {
		t.Fatalf("invio-pin after the resend: %v %v", counts, err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	hdr, _ := netmail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if id := hdr.Header.Get("Message-Id"); id != "<primo-certificato-058091-PC-0001@anprsec.invalid>" {
		t.Errorf("Message-ID %q", id)
	}
	if ms := c.firstCertMails(); len(ms) != 1 || ms[0].State != store.MailSent {
		t.Errorf("after the resend: %+v", ms)
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.primo-certificato-reinvio" })
	if len(hist) != 1 || hist[0].Actor != "back-office:test" || !strings.Contains(hist[0].Detail, "casella riattivata") {
		t.Errorf("history: %+v", hist)
	}
}

// decodeBase64Lines decodes base64 broken in lines.
func decodeBase64Lines(b []byte) ([]byte, error) {
	s := strings.NewReplacer("\r", "", "\n", "").Replace(string(b))
	return base64.StdEncoding.DecodeString(s)
}
