package ingest

import (
	"encoding/base64"
	"encoding/pem"
	"testing"
)

// A DER envelope is binary: one that ends in bytes that are white space in
// text (a vertical tab, a space, a newline) is still whole, and a cut one
// is not, whatever its last byte.
func TestWholeEnvelopeEndingInWhiteSpaceBytes(t *testing.T) {
	for _, last := range []byte{'\v', ' ', '\n', '\t', '\r', '\f', 0x85, 0xa0, 'x'} {
		der := []byte{0x30, 0x05, 1, 2, 3, 4, last}
		if !wholeEnvelope(der) {
			t.Errorf("DER ending in %#x: not whole", last)
		}
		if wholeEnvelope(der[:len(der)-1]) {
			t.Errorf("DER cut before its last byte %#x: whole", last)
		}
	}
	der := []byte{0x30, 0x03, 1, 2, '\v'}
	armored := pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: der})
	if !wholeEnvelope(append([]byte("\n"), armored...)) {
		t.Error("PEM with white space around: not whole")
	}
	if !wholeEnvelope([]byte(" " + base64.StdEncoding.EncodeToString(der) + "\r\n")) {
		t.Error("base64 with white space around: not whole")
	}
}
