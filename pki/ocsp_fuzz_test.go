package pki

import (
	"bytes"
	"crypto"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// FuzzParseOCSPRequest feeds the public OCSP endpoint's parser arbitrary
// bytes: it never panics, and what it accepts has a CertID and a nonce
// within bounds, and can be answered.
func FuzzParseOCSPRequest(f *testing.F) {
	ca := ecCA(f)
	s := ocspSigner(f, ca)
	id, err := s.CertID(crypto.SHA1, big.NewInt(0x1234))
	if err != nil {
		f.Fatal(err)
	}
	wrap := func(b []byte) []byte { return append([]byte{0x30, byte(len(b))}, b...) }
	f.Add(wrap(wrap(wrap(wrap(id)))))
	nonceExt := []byte{0xa2, 0x21, 0x30, 0x1f, 0x30, 0x1d, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
		0x04, 0x10, 0x04, 0x0e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	f.Add(wrap(append(wrap(wrap(wrap(id))), nonceExt...)))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ParseOCSPRequest(der)
		if err != nil {
			return
		}
		if req.Serial == nil || len(req.CertID) == 0 || len(req.IssuerNameHash) != req.Hash.Size() || len(req.Nonce) > MaxOCSPNonce+2 {
			t.Fatalf("accepted %+v", req)
		}
		resp, err := s.Sign(req.CertID, OCSPStatus{Status: ocsp.Unknown}, time.Now(), time.Hour, req.Nonce)
		if err != nil {
			t.Fatalf("cannot answer an accepted request: %v", err)
		}
		if !bytes.HasPrefix(resp, []byte{0x30}) {
			t.Fatal("not a SEQUENCE")
		}
	})
}
