package mail

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrHeaderInjection is returned (wrapped) when a header field value holds a
// CR, LF or another control character.
var ErrHeaderInjection = errors.New("l'intestazione contiene CR, LF o un carattere di controllo")

// ErrInvalidAddress is returned (wrapped) when an e-mail address does not
// parse as an RFC 5322 address.
var ErrInvalidAddress = errors.New("indirizzo e-mail non valido")

// ErrInvalidMessageID is returned (wrapped) when a Message-ID is not of the
// form left@right in printable ASCII without spaces or angle brackets inside.
var ErrInvalidMessageID = errors.New("Message-ID non valido")

// maxHeaderLine is the RFC 5322 hard limit on a line, without CRLF.
const maxHeaderLine = 998

// Message is an e-mail to seal and compose.
type Message struct {
	// From and To are RFC 5322 addresses ("a@b.it" or "Nome <a@b.it>").
	From, To string
	// Subject travels in clear: keep it generic (no names, no secrets).
	Subject string
	// MessageID, with or without angle brackets ("id@host"). Empty means a
	// random one with the domain of From: set it for stable, comparable output.
	MessageID string
	// Date of the message; the zero time means now.
	Date time.Time
	// Text is the plain UTF-8 body (Italian text); it is encrypted.
	Text string
	// Attachments travel, with the text, inside the encrypted part
	// (multipart/mixed, base64); none keeps the text/plain entity alone.
	Attachments []Attachment
}

// Attachment is a file carried inside the encrypted part of a message.
type Attachment struct {
	// Name is the file name: printable ASCII, no quote, backslash or slash.
	Name string
	// ContentType is its media type ("application/x-pkcs12"); empty is
	// application/octet-stream.
	ContentType string
	Data        []byte
}

// Compose returns the raw RFC 5322 message (CRLF line endings) for m: an
// RFC 3156 multipart/encrypted entity whose second part is the armored
// OpenPGP message returned by encrypt. encrypt receives the inner MIME
// entity (text/plain; charset=utf-8, quoted-printable) and must return an
// ASCII-armored "PGP MESSAGE". The MIME boundary derives from the
// Message-ID, so composing the same message twice with a deterministic
// encrypt yields the same bytes.
func Compose(m *Message, encrypt func(inner []byte) (armored []byte, err error)) ([]byte, error) {
	if m == nil {
		return nil, errors.New("mail: messaggio nil")
	}
	if encrypt == nil {
		return nil, errors.New("mail: funzione di cifratura nil")
	}
	for _, f := range []struct{ name, value string }{
		{"From", m.From}, {"To", m.To}, {"Subject", m.Subject}, {"Message-ID", m.MessageID},
	} {
		if err := checkHeaderValue(f.name, f.value); err != nil {
			return nil, err
		}
	}
	from, err := parseAddress("From", m.From)
	if err != nil {
		return nil, err
	}
	to, err := parseAddress("To", m.To)
	if err != nil {
		return nil, err
	}
	if !utf8.ValidString(m.Subject) {
		return nil, errors.New("mail: Subject non è UTF-8 valido")
	}
	if !utf8.ValidString(m.Text) {
		return nil, errors.New("mail: Text non è UTF-8 valido")
	}
	id := m.MessageID
	if id == "" {
		id = randomMessageID(from.Address)
	}
	id, err = normalizeMessageID(id)
	if err != nil {
		return nil, err
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}

	inner, err := innerOf(m, id)
	if err != nil {
		return nil, err
	}
	armored, err := encrypt(inner)
	if err != nil {
		return nil, fmt.Errorf("mail: cifratura: %w", err)
	}
	armored, err = checkArmored(armored)
	if err != nil {
		return nil, err
	}
	boundary := boundaryFor(id, armored)

	var b bytes.Buffer
	b.Grow(len(armored) + 1024)
	headers := []struct{ name, value string }{
		{"From", from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", date.Format(time.RFC1123Z)},
		{"Message-ID", id},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/encrypted; protocol="application/pgp-encrypted"; boundary="` + boundary + `"`},
	}
	for _, h := range headers {
		line := h.name + ": " + h.value
		if len(line) > maxHeaderLine {
			return nil, fmt.Errorf("mail: intestazione %s più lunga di %d caratteri", h.name, maxHeaderLine)
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")

	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, fmt.Errorf("mail: separatore MIME: %w", err)
	}
	p1, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":        {"application/pgp-encrypted"},
		"Content-Description": {"PGP/MIME version identification"},
	})
	if err != nil {
		return nil, err
	}
	if _, err := p1.Write([]byte("Version: 1\r\n")); err != nil {
		return nil, err
	}
	p2, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":        {`application/octet-stream; name="encrypted.asc"`},
		"Content-Description": {"OpenPGP encrypted message"},
		"Content-Disposition": {`inline; filename="encrypted.asc"`},
	})
	if err != nil {
		return nil, err
	}
	if _, err := p2.Write(armored); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// innerEntity returns the MIME entity that gets encrypted: text/plain UTF-8
// in quoted-printable, CRLF line endings.
func innerEntity(text string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n")
	b.WriteString("\r\n")
	qw := quotedprintable.NewWriter(&b)
	if _, err := qw.Write([]byte(toCRLF(text))); err != nil {
		return nil, err
	}
	if err := qw.Close(); err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

// innerOf returns the entity of m that gets encrypted: its text, with its
// attachments when it has any (message ID id).
func innerOf(m *Message, id string) ([]byte, error) {
	inner, err := innerEntity(m.Text)
	if err != nil || len(m.Attachments) == 0 {
		return inner, err
	}
	return mixedEntity(id, inner, m.Attachments)
}

// contentType is the media type of attachment a, checked.
func (a *Attachment) contentType() (string, error) {
	if a.Name == "" || strings.ContainsAny(a.Name, "\"/") || !isPrintableASCII(a.Name) {
		return "", fmt.Errorf("mail: nome dell'allegato %q: ammessi solo caratteri ASCII stampabili senza virgolette né barre", a.Name)
	}
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil || strings.Contains(ct, ";") {
		return "", fmt.Errorf("mail: allegato %s: tipo di contenuto %q non ammesso", a.Name, ct)
	}
	return ct, nil
}

// mixedEntity returns the multipart/mixed entity of the text entity and
// the attachments (base64, lines of 76 characters). Its boundary derives
// from the Message-ID, as the outer one does.
func mixedEntity(id string, text []byte, atts []Attachment) ([]byte, error) {
	for i := range atts {
		if _, err := atts[i].contentType(); err != nil {
			return nil, err
		}
	}
	boundary := boundaryFor(id+"\x00mixed", text)
	var b bytes.Buffer
	b.WriteString(`Content-Type: multipart/mixed; boundary="` + boundary + `"` + "\r\n\r\n")
	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, fmt.Errorf("mail: separatore MIME: %w", err)
	}
	head, rest, _ := bytes.Cut(text, []byte("\r\n\r\n"))
	th := textproto.MIMEHeader{}
	for _, l := range strings.Split(string(head), "\r\n") {
		k, v, _ := strings.Cut(l, ": ")
		th.Set(k, v)
	}
	tp, err := mw.CreatePart(th)
	if err != nil {
		return nil, err
	}
	if _, err := tp.Write(rest); err != nil {
		return nil, err
	}
	for i := range atts {
		if err := writeAttachment(mw, &atts[i]); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// writeAttachment writes a as a base64 part of mw, in lines of 76
// characters.
func writeAttachment(mw *multipart.Writer, a *Attachment) error {
	ct, err := a.contentType()
	if err != nil {
		return err
	}
	ap, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {ct + `; name="` + a.Name + `"`},
		"Content-Transfer-Encoding": {"base64"},
		"Content-Disposition":       {`attachment; filename="` + a.Name + `"`},
	})
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(a.Data)
	for len(enc) > 76 {
		if _, err := io.WriteString(ap, enc[:76]+"\r\n"); err != nil {
			return err
		}
		enc = enc[76:]
	}
	_, err = io.WriteString(ap, enc+"\r\n")
	return err
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkArmored makes sure the encrypt callback returned a 7-bit ASCII armored
// OpenPGP message and returns it with CRLF line endings and a final CRLF.
func checkArmored(armored []byte) ([]byte, error) {
	s := strings.TrimLeft(string(armored), " \t\r\n")
	if !strings.HasPrefix(s, "-----BEGIN PGP MESSAGE-----") {
		return nil, errors.New("mail: la cifratura non ha restituito un PGP MESSAGE in formato armored")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || (c < 0x20 && c != '\r' && c != '\n' && c != '\t') {
			return nil, errors.New("mail: il messaggio armored non è testo ASCII a 7 bit")
		}
	}
	s = toCRLF(strings.TrimRight(s, " \t\r\n")) + "\r\n"
	for line := range strings.SplitSeq(s, "\r\n") {
		if len(line) > maxHeaderLine {
			return nil, fmt.Errorf("mail: il messaggio armored ha una riga più lunga di %d caratteri", maxHeaderLine)
		}
	}
	return []byte(s), nil
}

// boundaryFor derives the MIME boundary from the Message-ID. "=_" cannot
// occur in base64, and the (rare) boundary that still occurs in the armored
// text is replaced by the next derivation, so the result is deterministic
// and never collides with the content.
func boundaryFor(messageID string, content []byte) string {
	for n := 0; ; n++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "anprsec-boundary\x00%s\x00%d", messageID, n))
		b := "=_anprsec_" + hex.EncodeToString(sum[:16])
		if !bytes.Contains(content, []byte(b)) {
			return b
		}
	}
}

// checkHeaderValue refuses values that would end the header line (CR, LF)
// or otherwise hold control characters.
func checkHeaderValue(name, value string) error {
	for _, r := range value {
		if r == '\r' || r == '\n' || (r < 0x20 && r != '\t') || r == 0x7f {
			return fmt.Errorf("mail: %s: %w", name, ErrHeaderInjection)
		}
	}
	return nil
}

// parseAddress parses one RFC 5322 address (with optional display name).
func parseAddress(field, s string) (*netmail.Address, error) {
	if err := checkHeaderValue(field, s); err != nil {
		return nil, err
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("mail: %s: vuoto: %w", field, ErrInvalidAddress)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("mail: %s %q: %w: %v", field, s, ErrInvalidAddress, err)
	}
	if checkHeaderValue(field, a.Address) != nil || checkHeaderValue(field, a.Name) != nil {
		return nil, fmt.Errorf("mail: %s: %w", field, ErrHeaderInjection)
	}
	return a, nil
}

// normalizeMessageID validates id (with or without angle brackets) and
// returns it as "<left@right>".
func normalizeMessageID(id string) (string, error) {
	if err := checkHeaderValue("Message-ID", id); err != nil {
		return "", err
	}
	s := strings.TrimSpace(id)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") && len(s) >= 2 {
		s = s[1 : len(s)-1]
	}
	left, right, ok := strings.Cut(s, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") {
		return "", fmt.Errorf("mail: %q: %w: atteso sinistra@destra", id, ErrInvalidMessageID)
	}
	if len(s) > 250 {
		return "", fmt.Errorf("mail: %w: più lungo di 250 caratteri", ErrInvalidMessageID)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' || c == '(' || c == ')' || c == ',' || c == ';' || c == ':' || c == '[' || c == ']' {
			return "", fmt.Errorf("mail: %q: %w: carattere %q non ammesso", id, ErrInvalidMessageID, c)
		}
	}
	return "<" + s + ">", nil
}

// randomMessageID returns a fresh "random@domain" with the domain of addr.
func randomMessageID(addr string) string {
	domain := "anprsec.invalid"
	if _, d, ok := strings.Cut(addr, "@"); ok && d != "" && strings.Trim(strings.ToLower(d), "abcdefghijklmnopqrstuvwxyz0123456789.-") == "" {
		domain = d
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:]) + "@" + domain
}

// toCRLF normalizes CRLF, CR and LF line endings to CRLF.
func toCRLF(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}
