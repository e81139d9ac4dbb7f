package pkihttp

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"anprsec/domain"
	"anprsec/pki"
	"anprsec/secret"
	"anprsec/store"
)

// benchCerts is the size of the store of the OCSP benchmarks.
const benchCerts = 50_000

// The benchmark's store: benchCerts postazioni (one in four blocked or
// revoked), their responses precomputed, made once (signing 50,000
// responses with an RSA-2048 responder takes most of a minute).
var benchSetup struct {
	once sync.Once
	dir  string
	st   *store.Store
	ca   *pki.CA
	r    *Responder
	reqs [][]byte
	err  error
}

func benchResponder(b *testing.B) (*Responder, [][]byte, *pki.CA) {
	b.Helper()
	s := &benchSetup
	s.once.Do(func() { s.err = makeBenchStore() })
	if s.err != nil {
		b.Fatal(s.err)
	}
	return s.r, s.reqs, s.ca
}

func makeBenchStore() error {
	s := &benchSetup
	var err error
	if s.dir, err = os.MkdirTemp("", "pkihttp-bench-"); err != nil {
		return err
	}
	if s.st, err = store.Open(store.Options{Dir: filepath.Join(s.dir, "data"), Key: bytes.Repeat([]byte{3}, secret.KeySize)}); err != nil {
		return err
	}
	caPath, keyPath := filepath.Join(s.dir, "ca.crt"), filepath.Join(s.dir, "ca.key")
	if _, err := pki.CreateDevCABits(caPath, keyPath, time.Now().Add(-time.Hour), 4096); err != nil {
		return err
	}
	if s.ca, err = pki.LoadCA(caPath, keyPath); err != nil {
		return err
	}
	serials := make([]string, benchCerts)
	now := time.Now()
	for start := 0; start < benchCerts; start += 1000 {
		err := s.st.Update(func(tx *store.Tx) error {
			for i := start; i < start+1000 && i < benchCerts; i++ {
				sn, err := pki.NewSerial()
				if err != nil {
					return err
				}
				serials[i] = fmt.Sprintf("%X", sn)
				p := &domain.Postazione{Code: domain.WorkstationCode(fmt.Sprintf("%06d", 1+i/100), 1+i%100), State: domain.CertAttivo,
					Serial: serials[i], NotAfter: now.AddDate(5, 0, 0), Created: now, Updated: now}
				p.ISTAT = p.Code[:6]
				switch i % 8 {
				case 1:
					p.State, p.HoldSince = domain.CertBloccato, now
				case 5:
					p.State, p.RevokedAt, p.RevocationReason = domain.CertRevocato, now, pki.ReasonKeyCompromise
				}
				if err := tx.PutPostazione(p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, secret.KeySize))
	if err != nil {
		return err
	}
	s.r, err = NewResponder(ResponderOptions{Store: s.st, Sealer: sealer, CACert: s.ca.Cert,
		LoadCA: func() (*pki.CA, error) { return s.ca, nil }, Validity: 24 * time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	if n, err := s.r.Precompute(); err != nil || n != benchCerts {
		return fmt.Errorf("precomputed %d responses: %v", n, err)
	}
	for _, sn := range serials {
		serial, _ := pki.ParseSerialHex(sn)
		id, err := s.r.Signer().CertID(crypto.SHA1, serial)
		if err != nil {
			return err
		}
		s.reqs = append(s.reqs, wrapRequest(id))
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchSetup.st != nil {
		benchSetup.st.Close()
	}
	if benchSetup.dir != "" {
		os.RemoveAll(benchSetup.dir)
	}
	os.Exit(code)
}

// BenchmarkOCSPCached answers requests about the 50,000 certificates of
// the store round-robin, as parsed from DER: each reads the certificate's
// status from the store and serves the kept response.
func BenchmarkOCSPCached(b *testing.B) {
	r, reqs, _ := benchResponder(b)
	hits0, signed0, _ := r.Stats()
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if a := r.Respond(reqs[int(i)%len(reqs)]); !a.Cacheable {
				b.Error("not answered from the kept responses")
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "responses/s")
	hits, signed, _ := r.Stats()
	if signed != signed0 || hits-hits0 != int64(b.N) {
		b.Errorf("%d responses signed during the run, %d from the kept ones (of %d)", signed-signed0, hits-hits0, b.N)
	}
}

// BenchmarkOCSPBareSigning is the floor without a cache: a loop of
// golang.org/x/crypto/ocsp.CreateResponse with the same responder key,
// one signature a response, on the same cores.
func BenchmarkOCSPBareSigning(b *testing.B) {
	r, _, ca := benchResponder(b)
	s := r.Signer()
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sn, _ := pki.NewSerial()
			now := time.Now()
			_, err := ocsp.CreateResponse(ca.Cert, s.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: sn,
				ThisUpdate: now, NextUpdate: now.Add(time.Hour), Certificate: s.Cert}, s.Key)
			if err != nil {
				b.Error(err)
				return
			}
			next.Add(1)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "responses/s")
}
