package pki

import (
	"crypto"
	"crypto/x509"
	"testing"
	"time"
)

// BenchmarkWorkstationP12 sizes the certificate batch, one RSA-2048
// workstation per operation, signed by the RSA-4096 development CA, on one
// goroutine. Key generation is measured apart from signing and encoding:
// with a warm key pool the batch pays "sign+p12-*" per certificate.
//
//	go test -run '^$' -bench WorkstationP12 ./pki/
func BenchmarkWorkstationP12(b *testing.B) {
	ca, _, _ := devCA(b)
	const pool = 16
	keys := make([]crypto.Signer, pool)
	certs := make([]*x509.Certificate, pool)
	for i := range keys {
		var err error
		if keys[i], err = GenerateKey(KeyRSA2048); err != nil {
			b.Fatal(err)
		}
		if certs[i], _, err = ca.IssueWorkstation(WorkstationRequest{Code: testCode, Comune: "Roma", PublicKey: keys[i].Public()}); err != nil {
			b.Fatal(err)
		}
	}
	chain := []*x509.Certificate{ca.Cert}
	perSecond := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
	}
	sign := func(b *testing.B, i int) *x509.Certificate {
		c, _, err := ca.IssueWorkstation(WorkstationRequest{Code: testCode, Comune: "Roma", PublicKey: keys[i%pool].Public(), NotBefore: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	encode := func(b *testing.B, i int, c *x509.Certificate, enc string) {
		pw, err := NewPassword("", 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := EncodeP12(keys[i%pool], c, chain, pw, enc, testCode); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("keygen-rsa2048", func(b *testing.B) {
		for b.Loop() {
			if _, err := GenerateKey(KeyRSA2048); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("sign", func(b *testing.B) {
		i := 0
		for b.Loop() {
			sign(b, i)
			i++
		}
		perSecond(b)
	})
	for _, enc := range []string{EncodingLegacy, EncodingModern} {
		b.Run("p12-"+enc, func(b *testing.B) {
			i := 0
			for b.Loop() {
				encode(b, i, certs[i%pool], enc)
				i++
			}
			perSecond(b)
		})
		b.Run("p12-"+enc+"-library-only", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := encoders[enc].Encode(keys[i%pool], certs[i%pool], chain, "653B739E"); err != nil {
					b.Fatal(err)
				}
				i++
			}
			perSecond(b)
		})
		b.Run("sign+p12-"+enc, func(b *testing.B) {
			i := 0
			for b.Loop() {
				encode(b, i, sign(b, i), enc)
				i++
			}
			perSecond(b)
		})
	}
	b.Run("keygen+sign+p12-legacy", func(b *testing.B) {
		for b.Loop() {
			k, err := GenerateKey(KeyRSA2048)
			if err != nil {
				b.Fatal(err)
			}
			c, _, err := ca.IssueWorkstation(WorkstationRequest{Code: testCode, Comune: "Roma", PublicKey: k.Public()})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := EncodeP12(k, c, chain, "653B739E", EncodingLegacy, testCode); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
}
