package cades

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz seeds in testdata/fuzz/FuzzVerify are openssl signatures of
// fuzzContent by a card of testCF issued by testdata/fuzz-anchors.pem, valid
// at fuzzNow.
const fuzzContent = "richiesta di prova\n"

var fuzzNow = time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC)

func fuzzAnchors(t testing.TB) *Anchors {
	a, err := LoadAnchors(filepath.Join("testdata", "fuzz-anchors.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// FuzzVerify feeds hostile envelopes to Verify: it never panics, refuses with
// an *Error of a known code, and accepts only the signed content.
func FuzzVerify(f *testing.F) {
	a := fuzzAnchors(f)
	f.Add([]byte{0x30, 0x80, 0x00, 0x00}, false)
	f.Add([]byte("-----BEGIN PKCS7-----\nMIAGCSqGSIb3DQEHAqCA\n-----END PKCS7-----\n"), true)
	codes := map[string]bool{FirmaAssente: true, FirmaNonValida: true, CertificatoNonFidato: true,
		CertificatoScaduto: true, CertificatoRevocato: true, FirmatarioSenzaCF: true}
	f.Fuzz(func(t *testing.T, sig []byte, detached bool) {
		var content []byte
		if detached {
			content = []byte(fuzzContent)
		}
		s, err := Verify(content, sig, detached, a, fuzzNow)
		if err != nil {
			e, ok := err.(*Error)
			if !ok || !codes[e.Code] || e.Message == "" {
				t.Fatalf("refusal %#v is not a coded *Error", err)
			}
			return
		}
		if s.CF != testCF || !bytes.Equal(s.Content, []byte(fuzzContent)) {
			t.Fatalf("accepted CF %q content %q", s.CF, s.Content)
		}
	})
}

// TestFuzzSeedsReachEveryCheck keeps the seeds meaningful: the openssl
// signatures among them pass every check, so mutations of them exercise all
// of Verify rather than its first refusal.
func TestFuzzSeedsReachEveryCheck(t *testing.T) {
	a := fuzzAnchors(t)
	want := map[string]string{
		"enveloping": "", "detached": "", "ber-streamed": "", "pem-armoured": "",
		"no-ess": FirmaNonValida, "garbage": FirmaNonValida, "nesting-60": FirmaNonValida,
	}
	for name, code := range want {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		raw, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		detached := lines[2] == "bool(true)"
		var content []byte
		if detached {
			content = []byte(fuzzContent)
		}
		_, err = Verify(content, []byte(raw), detached, a, fuzzNow)
		if got := CodeOf(err); got != code {
			t.Errorf("seed %s: code %q (%v), want %q", name, got, err, code)
		}
	}
}
