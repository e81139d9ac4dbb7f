package mail

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestComposeStructure(t *testing.T) {
	m := testMessage()
	m.Subject = "Comunicazione riservata — ANPR è qui"
	raw, err := Compose(m, fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	p := parsePGPMIME(t, raw)

	h := p.msg.Header
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "sicurezza@anpr.example.it" || from[0].Name != "ANPR Sicurezza" {
		t.Errorf("From = %v (%v)", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "maria.rossi@example.it" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if got := h.Get("Message-Id"); got != "<pin-0001.058091@anpr.example.it>" {
		t.Errorf("Message-ID = %q", got)
	}
	date, err := h.Date()
	if err != nil || !date.Equal(m.Date) {
		t.Errorf("Date = %v (%v), want %v", date, err, m.Date)
	}
	subj := h.Get("Subject")
	if !isASCII(subj) {
		t.Errorf("Subject not RFC 2047 encoded: %q", subj)
	}
	dec, err := new(mime.WordDecoder).DecodeHeader(subj)
	if err != nil || dec != m.Subject {
		t.Errorf("Subject decodes to %q (%v)", dec, err)
	}
	// Header order and nothing else in the header block.
	head := string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))])
	var names []string
	for _, l := range strings.Split(head, "\r\n") {
		name, _, _ := strings.Cut(l, ":")
		names = append(names, name)
	}
	if got := strings.Join(names, ","); got != "From,To,Subject,Date,Message-ID,MIME-Version,Content-Type" {
		t.Errorf("headers = %s", got)
	}

	// The inner entity, what gets encrypted.
	inner := unfake(t, p.armored)
	checkItalian(t, checkInner(t, inner, italianText))
}

// checkInner checks the inner MIME entity and that its quoted-printable
// body decodes to text (line endings normalised to CRLF).
func checkInner(t testing.TB, inner []byte, text string) string {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(inner, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("bare LF in inner entity")
	}
	tp := textproto.NewReader(bufioReader(inner))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("inner header: %v", err)
	}
	if len(h) != 2 {
		t.Errorf("inner header fields: %v", h)
	}
	if ct := h.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("inner Content-Type = %q", ct)
	}
	if cte := h.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Errorf("inner Content-Transfer-Encoding = %q", cte)
	}
	enc, _ := io.ReadAll(tp.R)
	if !isASCII(string(enc)) {
		t.Errorf("quoted-printable body is not ASCII")
	}
	for _, l := range strings.Split(string(enc), "\r\n") {
		if len(l) > 76 {
			t.Errorf("quoted-printable line longer than 76: %q", l)
		}
	}
	body, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(enc)))
	if err != nil {
		t.Fatalf("quoted-printable: %v", err)
	}
	want := toCRLF(text)
	if got := string(body); got != want && got != want+"\r\n" {
		t.Errorf("inner text = %q\nwant %q", got, want)
	}
	return string(body)
}

// checkItalian checks that the accents and the tricky lines of italianText
// survived.
func checkItalian(t testing.TB, body string) {
	t.Helper()
	for _, w := range []string{"seconda metà del PIN", "è riservata", "\r\n. riga che inizia", "perché così è più sicuro   \r\n", "l'Ufficio — Ministero dell'Interno €"} {
		if !strings.Contains(body, w) {
			t.Errorf("inner text lost %q", w)
		}
	}
}

func TestComposeDeterministic(t *testing.T) {
	a, err := Compose(testMessage(), fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compose(testMessage(), fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same message composed twice differs")
	}
	m := testMessage()
	m.MessageID = "<pin-0002.058091@anpr.example.it>"
	c, err := Compose(m, fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	if parsePGPMIME(t, a).boundary == parsePGPMIME(t, c).boundary {
		t.Fatal("different Message-IDs share a boundary")
	}
	// Message-ID with or without angle brackets is the same message.
	m = testMessage()
	m.MessageID = strings.Trim(m.MessageID, "<>")
	d, err := Compose(m, fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, d) {
		t.Fatal("Message-ID without brackets composes differently")
	}
}

func TestComposeBoundaryNeverInContent(t *testing.T) {
	m := testMessage()
	id, _ := normalizeMessageID(m.MessageID)
	first := boundaryFor(id, nil)
	// An encrypt callback whose armor (a Comment header) holds the boundary
	// that would be derived first, and its delimiter line.
	evil := func(inner []byte) ([]byte, error) {
		a, _ := fakeEncrypt(inner)
		return bytes.Replace(a, []byte("\n\n"), []byte("\nComment: --"+first+"--\n\n"), 1), nil
	}
	raw, err := Compose(m, evil)
	if err != nil {
		t.Fatal(err)
	}
	p := parsePGPMIME(t, raw)
	if p.boundary == first {
		t.Fatalf("boundary %q occurs in the content", first)
	}
	if !bytes.Contains(p.armored, []byte("Comment: --"+first+"--")) {
		t.Fatal("armored content was altered")
	}
	// Still deterministic.
	raw2, _ := Compose(m, evil)
	if !bytes.Equal(raw, raw2) {
		t.Fatal("not deterministic after a collision")
	}
}

func TestComposeRejects(t *testing.T) {
	encErr := errors.New("no valid encryption keys")
	tests := []struct {
		name    string
		edit    func(*Message)
		encrypt func([]byte) ([]byte, error)
		want    error  // errors.Is target, or nil
		substr  string // in the message, or ""
	}{
		{"CRLF in Subject", func(m *Message) { m.Subject = "Ciao\r\nBcc: spia@example.com" }, nil, ErrHeaderInjection, "Subject"},
		{"LF in Subject", func(m *Message) { m.Subject = "Ciao\nX: y" }, nil, ErrHeaderInjection, "Subject"},
		{"CR in To", func(m *Message) { m.To = "a@example.it\rBcc: b@example.it" }, nil, ErrHeaderInjection, "To"},
		{"LF in From name", func(m *Message) { m.From = "Evil\n <a@example.it>" }, nil, ErrHeaderInjection, "From"},
		{"CRLF in Message-ID", func(m *Message) { m.MessageID = "<a@b>\r\nBcc: x@y" }, nil, ErrHeaderInjection, "Message-ID"},
		{"NUL in Subject", func(m *Message) { m.Subject = "a\x00b" }, nil, ErrHeaderInjection, "Subject"},
		{"bad To", func(m *Message) { m.To = "non un indirizzo" }, nil, ErrInvalidAddress, "To"},
		{"empty To", func(m *Message) { m.To = "" }, nil, ErrInvalidAddress, "To"},
		{"two To", func(m *Message) { m.To = "a@example.it, b@example.it" }, nil, ErrInvalidAddress, "To"},
		{"bad From", func(m *Message) { m.From = "@example.it" }, nil, ErrInvalidAddress, "From"},
		{"Message-ID without @", func(m *Message) { m.MessageID = "<abc>" }, nil, ErrInvalidMessageID, ""},
		{"Message-ID with space", func(m *Message) { m.MessageID = "<a b@c>" }, nil, ErrInvalidMessageID, ""},
		{"Message-ID with two @", func(m *Message) { m.MessageID = "a@b@c" }, nil, ErrInvalidMessageID, ""},
		{"bad UTF-8 Text", func(m *Message) { m.Text = "perch\xe9" }, nil, nil, "UTF-8"},
		{"encrypt fails", nil, func([]byte) ([]byte, error) { return nil, encErr }, encErr, "cifratura"},
		{"encrypt returns clear text", nil, func(b []byte) ([]byte, error) { return b, nil }, nil, "armored"},
		{"encrypt returns 8-bit", nil, func([]byte) ([]byte, error) { return []byte("-----BEGIN PGP MESSAGE-----\nè\n"), nil }, nil, "7 bit"},
		{"encrypt returns a signature", nil, func([]byte) ([]byte, error) { return []byte("-----BEGIN PGP SIGNATURE-----\n"), nil }, nil, "armored"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testMessage()
			if tc.edit != nil {
				tc.edit(m)
			}
			enc := tc.encrypt
			if enc == nil {
				enc = fakeEncrypt
			}
			raw, err := Compose(m, enc)
			if err == nil {
				t.Fatalf("accepted:\n%s", raw)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error %q does not mention %q", err, tc.substr)
			}
		})
	}
	if _, err := Compose(nil, fakeEncrypt); err == nil {
		t.Error("nil message accepted")
	}
	if _, err := Compose(testMessage(), nil); err == nil {
		t.Error("nil encrypt accepted")
	}
}

func TestComposeDefaults(t *testing.T) {
	m := testMessage()
	m.MessageID = ""
	m.Date = time.Time{}
	before := time.Now().Add(-time.Second)
	raw, err := Compose(m, fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	p := parsePGPMIME(t, raw)
	id := p.msg.Header.Get("Message-Id")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@anpr.example.it>") {
		t.Errorf("generated Message-ID = %q", id)
	}
	if d, err := p.msg.Header.Date(); err != nil || d.Before(before) {
		t.Errorf("default Date = %v (%v)", d, err)
	}
	raw2, _ := Compose(m, fakeEncrypt)
	if parsePGPMIME(t, raw2).msg.Header.Get("Message-Id") == id {
		t.Error("generated Message-IDs repeat")
	}
}

// TestComposeOpenPGPRoundTrip encrypts and signs with go-crypto and reads
// the message back with it.
func TestComposeOpenPGPRoundTrip(t *testing.T) {
	key, err := pgpKeys()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Compose(testMessage(), openpgpEncrypt([]*openpgp.Entity{key}, key))
	if err != nil {
		t.Fatal(err)
	}
	p := parsePGPMIME(t, raw)
	inner := decryptGoCrypto(t, p.armored, key)
	checkItalian(t, checkInner(t, inner, italianText))
}

func decryptGoCrypto(t testing.TB, armored []byte, key *openpgp.Entity) []byte {
	t.Helper()
	blk, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatalf("armor: %v", err)
	}
	md, err := openpgp.ReadMessage(blk.Body, openpgp.EntityList{key}, nil, &packet.Config{})
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	inner, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		t.Fatalf("decrypt body: %v", err)
	}
	if !md.IsSigned || md.SignatureError != nil {
		t.Fatalf("signature: signed %v, error %v", md.IsSigned, md.SignatureError)
	}
	return inner
}

func TestNormalizeMessageID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a@b", "<a@b>"},
		{"<a@b>", "<a@b>"},
		{"  <pin-1.x@anpr.example.it>  ", "<pin-1.x@anpr.example.it>"},
		{"<>", ""},
		{"<a@>", ""},
		{"a@b>", ""},
		{"<<a@b>>", ""},
		{"è@b", ""},
	}
	for _, tc := range tests {
		got, err := normalizeMessageID(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("normalizeMessageID(%q) = %q, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("normalizeMessageID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzCompose: arbitrary header values and text never panic, and whatever
// Compose accepts has exactly the seven expected header fields (no
// injection) and parses back.
func FuzzCompose(f *testing.F) {
	f.Add("a@example.it", "Nome <b@example.it>", "Oggetto è", "<x@y>", "testo\nriga")
	f.Add("a@example.it", "b@example.it", "x\r\nBcc: c@example.it", "x@y", "")
	f.Add("\"Rossi, M.\" <a@example.it>", "=?utf-8?q?x?= <b@example.it>", strings.Repeat("é", 400), "1@2", ".\r\n.")
	f.Fuzz(func(t *testing.T, from, to, subject, id, text string) {
		m := &Message{From: from, To: to, Subject: subject, MessageID: id, Date: time.Unix(1700000000, 0), Text: text}
		raw, err := Compose(m, fakeEncrypt)
		if err != nil {
			return
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("accepted message does not parse: %v", err)
		}
		if len(msg.Header) != 7 {
			t.Fatalf("header fields: %v", msg.Header)
		}
		for _, k := range []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type"} {
			if len(msg.Header[k]) != 1 {
				t.Fatalf("header %s: %q", k, msg.Header[k])
			}
		}
		p := parsePGPMIME(t, raw)
		inner := unfake(t, p.armored)
		if utf8.ValidString(text) {
			checkInner(t, inner, text)
		}
	})
}

func BenchmarkCompose(b *testing.B) {
	b.Run("fake", func(b *testing.B) {
		m := testMessage()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Compose(m, fakeEncrypt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("openpgp", func(b *testing.B) {
		key, err := pgpKeys()
		if err != nil {
			b.Fatal(err)
		}
		enc := openpgpEncrypt([]*openpgp.Entity{key}, key)
		m := testMessage()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Compose(m, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
