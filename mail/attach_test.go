package mail

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"testing"
)

// TestAttachmentsTravelInsideTheEncryptedPart pins that the files of a
// message are in the entity handed to encrypt (multipart/mixed: the text,
// then each file in base64), never beside the ciphertext.
func TestAttachmentsTravelInsideTheEncryptedPart(t *testing.T) {
	m := testMessage()
	xlsx := bytes.Repeat([]byte{0x50, 0x4b, 0x03, 0x04, 0xff, 0x00}, 100)
	csv := []byte("Codice Fiscale;Cognome\r\nRSSMRA80A01H501U;Rossi\r\n")
	m.Attachments = []Attachment{
		{Name: "utenti-058091-20261207.xlsx", ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Data: xlsx},
		{Name: "utenti-058091-20261207.csv", ContentType: "text/csv", Data: csv},
	}
	var inner []byte
	raw, err := Compose(m, func(b []byte) ([]byte, error) { inner = b; return fakeEncrypt(b) })
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("Codice Fiscale;Cognome")) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(csv)[:20])) {
		t.Fatal("an attachment is outside the encrypted part")
	}
	hdr, body, _ := bytes.Cut(inner, []byte("\r\n\r\n"))
	mt, params, err := mime.ParseMediaType(strings.TrimPrefix(string(hdr), "Content-Type: "))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("inner entity %q: %v", hdr, err)
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	text, err := r.NextPart()
	if err != nil || !strings.HasPrefix(text.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("first part: %v %v", text, err)
	}
	for _, want := range m.Attachments {
		p, err := r.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() != want.Name {
			t.Errorf("file name %q, want %q", p.FileName(), want.Name)
		}
		got, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil || !bytes.Equal(got, want.Data) {
			t.Errorf("%s: content differs (%v)", want.Name, err)
		}
	}
	if _, err := r.NextPart(); err != io.EOF {
		t.Errorf("more parts than attachments: %v", err)
	}
	again, err := Compose(m, fakeEncrypt)
	if err != nil || !bytes.Equal(again, raw) {
		t.Error("composing the same message twice gives different bytes")
	}
}

// TestAttachmentNameCannotInjectHeaders pins that a file name cannot end
// its header line or its quoted parameter.
func TestAttachmentNameCannotInjectHeaders(t *testing.T) {
	for _, name := range []string{"a\r\nBcc: x@y.it", `a".xlsx`, "../x", "", "città.csv"} {
		m := testMessage()
		m.Attachments = []Attachment{{Name: name, Data: []byte("x")}}
		if _, err := Compose(m, fakeEncrypt); err == nil {
			t.Errorf("attachment name %q accepted", name)
		}
	}
}
