package jobs

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/mail/smtptest"
	"anprsec/pki"
	"anprsec/pki/pgp"
	"anprsec/store"
)

// orderedCards runs the census and ordini-sc and returns the serials of
// the cards, IN PRODUZIONE, with their second halves as sealed.
func (c *certEnv) orderedCards() ([]string, map[string]pki.CardHalf) {
	c.t.Helper()
	c.withPGP()
	c.census()
	if _, err := c.run(ordiniJob); err != nil {
		c.t.Fatal(err)
	}
	halves := map[string]pki.CardHalf{}
	var serials []string
	for s, sc := range c.cards() {
		plain, err := c.env.Sealer.Open(sc.SecondSealed, domain.CardSecretsSealContext(s, "seconda"))
		if err != nil {
			c.t.Fatal(err)
		}
		if halves[s], err = pki.UnmarshalCardHalf(plain); err != nil {
			c.t.Fatal(err)
		}
		serials = append(serials, s)
	}
	sort.Strings(serials)
	return serials, halves
}

// activate delivers cards to the comune and then to their holders.
func (c *certEnv) activate(serials ...string) {
	c.t.Helper()
	err := c.env.Store.Update(func(tx *store.Tx) error {
		src := store.Source{Actor: "test"}
		for _, s := range serials {
			sc, err := tx.Card(s)
			if err != nil {
				return err
			}
			if err := lifecycle.DeliverCard(tx, src, sc, time.Time{}, "RSSMRA68A01H501Y", false); err != nil {
				return err
			}
			if err := lifecycle.ActivateCard(tx, src, sc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// openPIN parses a received PGP/MIME message, decrypts it with keys and
// returns its headers and the decoded text; the signature must be the
// service's.
func (c *certEnv) openPIN(raw []byte, keys string) (netmail.Header, string) {
	c.t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/encrypted" || params["protocol"] != "application/pgp-encrypted" {
		c.t.Fatalf("Content-Type %q", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, b)
	}
	if len(parts) != 2 || !strings.Contains(string(parts[0]), "Version: 1") {
		c.t.Fatalf("%d parts", len(parts))
	}
	dir := filepath.Join(c.env.Config.Dir, "keys")
	sec, err := pgp.ReadSecretFile(keys)
	if err != nil {
		c.t.Fatal(err)
	}
	service, err := pgp.ReadPublicFile(filepath.Join(dir, "service.pub.asc"))
	if err != nil {
		c.t.Fatal(err)
	}
	inner, signer, err := pgp.Decrypt(parts[1], append(service, sec))
	if err != nil {
		c.t.Fatalf("decrypt with %s: %v", keys, err)
	}
	if pgp.Fingerprint(signer) != pgp.Fingerprint(service[0]) {
		c.t.Error("not signed by the service key")
	}
	im, err := netmail.ReadMessage(bytes.NewReader(inner))
	if err != nil {
		c.t.Fatal(err)
	}
	text, err := io.ReadAll(quotedprintable.NewReader(im.Body))
	if err != nil {
		c.t.Fatal(err)
	}
	return msg.Header, string(text)
}

// TestInvioPIN: two cards activated; invio-pin sends one PGP/MIME message
// each over a real SMTP connection, encrypted to the gateway (the holders
// have no key of their own), signed by the service; the text carries the
// second halves as sealed and the warning that the Ministry never asks for
// credentials by phone or e-mail; the second halves are then erased and
// nothing is sent twice. Cards not activated get nothing.
func TestInvioPIN(t *testing.T) {
	c := newCertEnv(t)
	serials, halves := c.orderedCards()
	if len(serials) < 3 {
		t.Fatalf("%d cards", len(serials))
	}
	srv := smtptest.Start(t)
	c.env.Config.Mail.SMTP.Address = srv.Addr
	c.env.Config.Mail.SMTP.TLS = "none"
	c.activate(serials[0], serials[1])

	counts, err := c.run(invioJob)
	if err != nil || counts["sent"] != 2 {
		t.Fatalf("counts %v, err %v", counts, err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	cards := c.cards()
	// Messages leave in parallel: each is matched to its card by its
	// Message-ID (checked below against the serial of its text).
	bySerial := map[string]bool{}
	for _, m := range msgs {
		hdr, text := c.openPIN(m.Data, filepath.Join(c.env.Config.Dir, "keys", "gateway.sec.asc"))
		s := strings.TrimSuffix(strings.TrimPrefix(hdr.Get("Message-Id"), "<pin-"), "@anprsec.invalid>")
		if bySerial[s] || (s != serials[0] && s != serials[1]) {
			t.Errorf("message %q: unexpected or repeated", hdr.Get("Message-Id"))
			continue
		}
		bySerial[s] = true
		h := halves[s]
		var email string
		c.env.Store.View(func(tx *store.Tx) error {
			u, err := tx.Utenza(cards[s].ISTAT, cards[s].CF)
			if err == nil {
				email = u.Email
			}
			return err
		})
		to, _ := netmail.ParseAddress(hdr.Get("To"))
		if len(m.To) != 1 || m.To[0] != email || to == nil || to.Address != email {
			t.Errorf("%s: sent to %v (header %q), holder's e-mail %q", s, m.To, hdr.Get("To"), email)
		}
		if hdr.Get("Subject") != PINSubject || hdr.Get("Message-Id") != "<pin-"+s+"@anprsec.invalid>" {
			t.Errorf("headers: subject %q, id %q", hdr.Get("Subject"), hdr.Get("Message-Id"))
		}
		for _, want := range []string{s, "PIN, seconda metà:       " + h.PIN, "PUK, seconda metà:       " + h.PUK,
			"Password, seconda metà:  " + h.Password, "non chiede mai credenziali"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the text lacks %q:\n%s", s, want, text)
			}
		}
		if bytes.Contains(m.Data, []byte(h.Password)) {
			t.Errorf("%s: the password half is in clear in the message", s)
		}
		if len(cards[s].SecondSealed) != 0 {
			t.Errorf("%s: second halves not erased after sending", s)
		}
	}
	// GnuPG reads the message with the gateway's key, the service's good
	// signature; the halves of the order and of the message recombine to
	// whole secrets.
	gpgDecryptPIN(t, c, msgs[0].Data, "gateway.sec.asc")
	orders, _ := filepath.Glob(filepath.Join(c.root, "produttore", "ordini", "*"))
	firsts := map[string][]string{}
	for _, r := range c.readOrder(orders[0])[1:] {
		firsts[r[0]] = r[7:10]
	}
	for _, s := range serials[:2] {
		f, h := firsts[s], halves[s]
		pin, puk, pw := f[0]+h.PIN, f[1]+h.PUK, f[2]+h.Password
		if len(pin) != pki.CardPINLength || strings.Trim(pin, "0123456789") != "" || len(puk) != pki.CardPUKLength ||
			len(pw) != pki.CardPasswordLength || strings.Trim(pw, pki.PasswordAlphabet) != "" {
			t.Errorf("%s: halves recombine to PIN %q, PUK %q, password %q", s, pin, puk, pw)
		}
	}
	if len(cards[serials[2]].SecondSealed) == 0 {
		t.Errorf("%s (not activated): second halves gone", serials[2])
	}
	if counts, err := c.run(invioJob); err != nil || len(counts) != 0 || len(srv.Messages()) != 2 {
		t.Errorf("second run: %v %v, %d messages", counts, err, len(srv.Messages()))
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "smartcard.seconde-meta-inviate" })
	if len(hist) != 2 || !strings.Contains(hist[0].Detail, "cifrate per la chiave") {
		t.Errorf("history: %+v", hist)
	}
	for _, e := range hist {
		for _, h := range halves {
			if strings.Contains(e.Detail, h.PIN) || strings.Contains(e.Detail, h.Password) {
				t.Errorf("a secret half in the history: %q", e.Detail)
			}
		}
	}
}

// TestInvioPINHolderKey: a holder whose key is in keys.holders gets the
// message encrypted to that key (the gateway cannot read it).
func TestInvioPINHolderKey(t *testing.T) {
	c := newCertEnv(t)
	serials, _ := c.orderedCards()
	var email string
	c.env.Store.View(func(tx *store.Tx) error {
		sc, _ := tx.Card(serials[0])
		u, err := tx.Utenza(sc.ISTAT, sc.CF)
		if err == nil {
			email = u.Email
		}
		return err
	})
	pub, sec, err := pgp.Generate("Titolare", email)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(c.env.Config.Keys.Holders, "titolare.asc"), pub, 0o644)
	secPath := filepath.Join(c.env.Config.Dir, "keys", "holder.sec.asc")
	os.WriteFile(secPath, sec, 0o600)
	spool := t.TempDir()
	c.env.Config.Mail.Spool = spool // no SMTP server: the spool
	c.activate(serials[0])
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 1 {
		t.Fatalf("%v %v", counts, err)
	}
	emls, _ := filepath.Glob(filepath.Join(spool, "*.eml"))
	if len(emls) != 1 {
		t.Fatalf("spool: %v", emls)
	}
	raw, _ := os.ReadFile(emls[0])
	if _, text := c.openPIN(raw, secPath); !strings.Contains(text, serials[0]) {
		t.Errorf("text: %s", text)
	}
	gpgDecryptPIN(t, c, raw, "holder.sec.asc")
	msg, _ := netmail.ReadMessage(bytes.NewReader(raw))
	body, _ := io.ReadAll(msg.Body)
	gw, _ := pgp.ReadSecretFile(filepath.Join(c.env.Config.Dir, "keys", "gateway.sec.asc"))
	start := bytes.Index(body, []byte("-----BEGIN PGP MESSAGE-----"))
	end := bytes.Index(body, []byte("-----END PGP MESSAGE-----"))
	if start < 0 || end < 0 {
		t.Fatal("no armored message")
	}
	if _, _, err := pgp.Decrypt(body[start:end+len("-----END PGP MESSAGE-----")], openpgp.EntityList{gw}); err == nil {
		t.Error("the gateway can read a message meant for the holder's own key")
	}
}

// TestInvioPINFaults: a 4xx is retried later (not before mail.retry), a
// 5xx sets the message aside with the reason, the second halves stay
// sealed until a message leaves; a server that is down fails the run and
// changes no message.
func TestInvioPINFaults(t *testing.T) {
	c := newCertEnv(t)
	serials, _ := c.orderedCards()
	srv := smtptest.Start(t)
	c.env.Config.Mail.SMTP.Address = srv.Addr
	c.env.Config.Mail.SMTP.TLS = "none"
	c.env.Config.Mail.SMTP.Timeout = 2 * time.Second
	c.activate(serials[0], serials[1])
	mailOf := func(s string) *store.Mail {
		var m *store.Mail
		c.env.Store.View(func(tx *store.Tx) error {
			var err error
			m, err = tx.Mail(store.PINMailID(s))
			return err
		})
		return m
	}
	emailOf := func(serial string) string {
		var email string
		c.env.Store.View(func(tx *store.Tx) error {
			sc, _ := tx.Card(serial)
			u, _ := tx.Utenza(sc.ISTAT, sc.CF)
			email = u.Email
			return nil
		})
		return email
	}

	// Messages leave in parallel: each address gets its own reply.
	srv.Reject(emailOf(serials[0]), 451, "try again later")
	srv.Reject(emailOf(serials[1]), 550, "no such user")
	counts, err := c.run(invioJob)
	if err != nil || counts["retry"] != 1 || counts["failed"] != 1 {
		t.Fatalf("counts %v, err %v", counts, err)
	}
	m0, m1 := mailOf(serials[0]), mailOf(serials[1])
	if m0.State != store.MailQueued || m0.Attempts != 1 || !strings.Contains(m0.LastError, "451") || m0.NextTry.Before(time.Now().Add(4*time.Minute)) {
		t.Errorf("after 451: %+v", m0)
	}
	if m1.State != store.MailFailed || !strings.Contains(m1.LastError, "550") {
		t.Errorf("after 550: %+v", m1)
	}
	if cs := c.cards(); len(cs[serials[0]].SecondSealed) == 0 || len(cs[serials[1]].SecondSealed) == 0 {
		t.Error("second halves erased without a message sent")
	}
	srv.Clear()
	// Not due yet: nothing happens.
	if counts, _ := c.run(invioJob); len(counts) != 0 {
		t.Errorf("a message was tried before its time: %v", counts)
	}
	// Due now, but the server is down: temporary.
	c.env.Store.Update(func(tx *store.Tx) error {
		m, _ := tx.Mail(store.PINMailID(serials[0]))
		m.NextTry = tx.Now
		return tx.PutMail(m)
	})
	c.env.Config.Mail.SMTP.Address = smtptest.RefusedAddr(t)
	if counts, err := c.run(invioJob); err == nil || !strings.Contains(err.Error(), "server di posta non disponibile") || counts["server_unavailable"] != 1 {
		t.Errorf("server down: %v %v", counts, err)
	}
	if m := mailOf(serials[0]); m.State != store.MailQueued || m.Attempts != 1 {
		t.Errorf("after server down: %+v", m)
	}
	// Back up: sent.
	c.env.Store.Update(func(tx *store.Tx) error {
		m, _ := tx.Mail(store.PINMailID(serials[0]))
		m.NextTry = tx.Now
		return tx.PutMail(m)
	})
	c.env.Config.Mail.SMTP.Address = srv.Addr
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 1 {
		t.Errorf("server back: %v %v", counts, err)
	}
	if m := mailOf(serials[0]); m.State != store.MailSent || m.Attempts != 2 {
		t.Errorf("after sending: %+v", m)
	}

	// A server that stalls after accepting the connection: the attempt
	// times out (mail.smtp.timeout) and is retried later; the run ends.
	c.activate(serials[2])
	c.env.Config.Mail.SMTP.Timeout = time.Second
	srv.Stall(smtptest.Rcpt)
	start := time.Now()
	counts, err = c.run(invioJob)
	if took := time.Since(start); err != nil || counts["retry"] != 1 || took > 5*time.Second {
		t.Errorf("stalled server: %v %v after %v", counts, err, took)
	}
	srv.Clear()
	if m := mailOf(serials[2]); m.State != store.MailQueued || m.Attempts != 1 || !strings.Contains(m.LastError, "RCPT") {
		t.Errorf("after a stall: %+v", m)
	}
}

// activateDelivered registers the delivery to the holder of cards that the
// prefettura delivered.
func (c *certEnv) activateDelivered(serials ...string) {
	c.t.Helper()
	err := c.env.Store.Update(func(tx *store.Tx) error {
		for _, s := range serials {
			sc, err := tx.Card(s)
			if err != nil {
				return err
			}
			if err := lifecycle.ActivateCard(tx, store.Source{Actor: "test"}, sc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// gpgDecryptPIN has GnuPG decrypt the encrypted part of a PGP/MIME message
// with the secret key file keyName of the environment's keys and checks
// the service's good signature and the text.
func gpgDecryptPIN(t *testing.T, c *certEnv, raw []byte, keyName string) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Log("gpg not installed: GnuPG check skipped")
		return
	}
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
	if !strings.Contains(stderr.String(), `Good signature from "service`) || !strings.Contains(stdout.String(), "quoted-printable") ||
		!strings.Contains(stdout.String(), "seconda met=C3=A0") {
		t.Errorf("gpg: %s\n%s", stderr.String(), stdout.String())
	}
}
