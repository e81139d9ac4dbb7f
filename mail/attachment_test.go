package mail

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"
)

// TestAttachmentTravelsInsideTheEncryptedPart: a message with an
// attachment encrypts a multipart/mixed entity holding the text
// (quoted-printable, as without attachments) and the file (base64, lines of
// 76 characters); nothing of either is in clear, the output is the same
// for the same message, and a name that could break the header is refused.
func TestAttachmentTravelsInsideTheEncryptedPart(t *testing.T) {
	data := bytes.Repeat([]byte{0x30, 0x82, 0xff, 0x00, 'P', 'K'}, 300)
	m := testMessage()
	m.Attachments = []Attachment{{Name: "058091-PC-0001.p12", ContentType: "application/x-pkcs12", Data: data}}
	raw, err := Compose(m, fakeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Compose(m, fakeEncrypt)
	if !bytes.Equal(raw, again) {
		t.Error("the same message composed twice differs")
	}
	if bytes.Contains(raw, []byte("058091-PC-0001.p12")) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(data)[:40])) {
		t.Error("the attachment is visible outside the encrypted part")
	}
	p := parsePGPMIME(t, raw)
	inner := unfake(t, p.armored)
	im, err := netmail.ReadMessage(bytes.NewReader(inner))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(im.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("inner Content-Type %q", im.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(im.Body, params["boundary"])
	text, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if text.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("text part header %v", text.Header)
	}
	// multipart.Part decodes quoted-printable itself (and drops that header).
	body, _ := io.ReadAll(text)
	if string(body) != strings.ReplaceAll(italianText, "\n", "\r\n")+"\r\n" && string(body) != strings.ReplaceAll(italianText, "\n", "\r\n") {
		t.Errorf("text = %q", body)
	}
	att, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if att.FileName() != "058091-PC-0001.p12" || !strings.HasPrefix(att.Header.Get("Content-Type"), "application/x-pkcs12") {
		t.Errorf("attachment header %v", att.Header)
	}
	enc, _ := io.ReadAll(att)
	for _, l := range strings.Split(strings.TrimRight(string(enc), "\r\n"), "\r\n") {
		if len(l) > 76 {
			t.Errorf("base64 line of %d characters", len(l))
		}
	}
	got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(enc), "\r\n", ""))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("attachment does not decode to its data: %v", err)
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("a third part: %v", err)
	}

	for _, bad := range []string{"", `a".p12`, "../a.p12", "a\r\nX-Evil: 1", "città.p12"} {
		m.Attachments = []Attachment{{Name: bad, Data: data}}
		if _, err := Compose(m, fakeEncrypt); err == nil {
			t.Errorf("attachment name %q accepted", bad)
		}
	}
}
