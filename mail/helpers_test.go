package mail

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// italianText has accents, an apostrophe, a long line, a line that starts
// with a dot and one with trailing spaces: all must survive.
const italianText = "Gentile Sig.ra Rossi,\n" +
	"le inviamo la seconda metà del PIN della Sua carta: è riservata, non la comunichi a nessuno.\n" +
	". riga che inizia con un punto\n" +
	"perché così è più sicuro   \n" +
	"Cordiali saluti,\nl'Ufficio — Ministero dell'Interno €"

func testMessage() *Message {
	return &Message{
		From:      "ANPR Sicurezza <sicurezza@anpr.example.it>",
		To:        "Maria Rossi <maria.rossi@example.it>",
		Subject:   "Comunicazione riservata",
		MessageID: "<pin-0001.058091@anpr.example.it>",
		Date:      time.Date(2026, 3, 9, 10, 30, 0, 0, time.FixedZone("CET", 3600)),
		Text:      italianText,
	}
}

// fakeEncrypt is deterministic: it "armors" the inner entity in base64
// (no encryption), so composition can be checked without keys.
func fakeEncrypt(inner []byte) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("-----BEGIN PGP MESSAGE-----\n\n")
	enc := base64.StdEncoding.EncodeToString(inner)
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	b.WriteString(enc + "\n=AAAA\n-----END PGP MESSAGE-----\n")
	return b.Bytes(), nil
}

// unfake reverses fakeEncrypt.
func unfake(t testing.TB, armored []byte) []byte {
	t.Helper()
	var enc strings.Builder
	for _, l := range strings.Split(strings.ReplaceAll(string(armored), "\r\n", "\n"), "\n") {
		if l == "" || strings.HasPrefix(l, "-----") || strings.HasPrefix(l, "=") {
			continue
		}
		enc.WriteString(l)
	}
	b, err := base64.StdEncoding.DecodeString(enc.String())
	if err != nil {
		t.Fatalf("unfake: %v", err)
	}
	return b
}

// pgpMIME is a parsed RFC 3156 message.
type pgpMIME struct {
	msg      *netmail.Message
	boundary string
	version  []byte // body of part 1
	armored  []byte // body of part 2
	part2    *multipart.Part
}

// parsePGPMIME parses raw with net/mail and mime/multipart and checks the
// RFC 3156 structure strictly; it fails the test on any deviation.
func parsePGPMIME(t testing.TB, raw []byte) *pgpMIME {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("bare LF in message")
	}
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Fatalf("bare CR in message")
	}
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Fatalf("message does not end with CRLF")
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	if got := msg.Header.Get("MIME-Version"); got != "1.0" {
		t.Fatalf("MIME-Version = %q", got)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if mt != "multipart/encrypted" || params["protocol"] != "application/pgp-encrypted" || params["boundary"] == "" {
		t.Fatalf("Content-Type = %q %v", mt, params)
	}
	p := &pgpMIME{msg: msg, boundary: params["boundary"]}
	body, _ := io.ReadAll(msg.Body)
	if !bytes.HasSuffix(body, []byte("\r\n--"+p.boundary+"--\r\n")) {
		t.Fatalf("no closing boundary at the end: ...%q", tail(body))
	}
	mr := multipart.NewReader(bytes.NewReader(body), p.boundary)
	p1, err := mr.NextRawPart()
	if err != nil {
		t.Fatalf("part 1: %v", err)
	}
	if ct := p1.Header.Get("Content-Type"); ct != "application/pgp-encrypted" {
		t.Fatalf("part 1 Content-Type = %q", ct)
	}
	p.version, _ = io.ReadAll(p1)
	if strings.TrimSpace(string(p.version)) != "Version: 1" {
		t.Fatalf("part 1 body = %q", p.version)
	}
	p2, err := mr.NextRawPart()
	if err != nil {
		t.Fatalf("part 2: %v", err)
	}
	mt2, params2, err := mime.ParseMediaType(p2.Header.Get("Content-Type"))
	if err != nil || mt2 != "application/octet-stream" || params2["name"] != "encrypted.asc" {
		t.Fatalf("part 2 Content-Type = %q (%v)", p2.Header.Get("Content-Type"), err)
	}
	disp, dparams, err := mime.ParseMediaType(p2.Header.Get("Content-Disposition"))
	if err != nil || disp != "inline" || dparams["filename"] != "encrypted.asc" {
		t.Fatalf("part 2 Content-Disposition = %q", p2.Header.Get("Content-Disposition"))
	}
	p.part2 = p2
	p.armored, _ = io.ReadAll(p2)
	if !bytes.HasPrefix(p.armored, []byte("-----BEGIN PGP MESSAGE-----")) {
		t.Fatalf("part 2 is not armored: %q", p.armored[:min(40, len(p.armored))])
	}
	if _, err := mr.NextRawPart(); err != io.EOF {
		t.Fatalf("more than two parts (err %v)", err)
	}
	return p
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func tail(b []byte) []byte { return b[max(0, len(b)-80):] }

// pgpKeys is a go-crypto recipient and signer, generated once.
var pgpKeys = sync.OnceValues(func() (*openpgp.Entity, error) {
	return openpgp.NewEntity("Test", "", "t@example.it", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
})

// openpgpEncrypt returns an encrypt callback for Compose: encrypted to
// recipients, signed by signer (may be nil), armored.
func openpgpEncrypt(recipients []*openpgp.Entity, signer *openpgp.Entity) func([]byte) ([]byte, error) {
	return func(inner []byte) ([]byte, error) {
		var b bytes.Buffer
		aw, err := armor.Encode(&b, "PGP MESSAGE", nil)
		if err != nil {
			return nil, err
		}
		cfg := &packet.Config{DefaultCipher: packet.CipherAES256}
		pw, err := openpgp.Encrypt(aw, recipients, signer, &openpgp.FileHints{IsBinary: true}, cfg)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write(inner); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
		if err := aw.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
}
