package pki

import (
	"crypto/rsa"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/pki/hsm"
	"anprsec/pki/hsm/softhsmtest"
)

// hsmCA makes a CA whose RSA key of bits is in a fresh SoftHSM2 token.
func hsmCA(tb testing.TB, bits int) (*CA, string, string) {
	tb.Helper()
	if !hsm.Available {
		tb.Skip("built without cgo: no PKCS#11")
	}
	tok := softhsmtest.New(tb)
	uri := tok.URI("anprsec-ca")
	certPath := filepath.Join(tb.TempDir(), "ca.crt")
	keyMade, certMade, err := CreateHSMCA(certPath, uri, time.Now().Add(-time.Hour), bits)
	if err != nil || !keyMade || !certMade {
		tb.Fatalf("CreateHSMCA: key %v, cert %v, %v", keyMade, certMade, err)
	}
	ca, err := LoadCA(certPath, uri)
	if err != nil {
		tb.Fatal(err)
	}
	return ca, certPath, uri
}

// A CA whose key lives in SoftHSM2: its certificate, a batch of
// workstation certificates and a CRL are all signed in the token, and
// OpenSSL verifies every one against the CA certificate.
func TestBatchAndCRLSignedInTheHSMVerifyWithOpenSSL(t *testing.T) {
	openssl := tool(t, "openssl", "Debian package openssl")
	ca, caPath, _ := hsmCA(t, 2048)
	if ca.Cert.Subject.CommonName != HSMCACommonName || !ca.Cert.IsCA {
		t.Fatalf("CA certificate %v", ca.Cert.Subject)
	}
	if _, ok := ca.Signer.(*rsa.PrivateKey); ok {
		t.Fatal("the CA key is a software key")
	}
	dir := t.TempDir()
	const batch = 16
	certs := make([]string, batch)
	var serials []*big.Int
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := make(chan error, batch)
	for i := range batch { // on several goroutines, as the certificati job
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, err := GenerateKey(KeyECDSAP256)
			if err != nil {
				errs <- err
				return
			}
			code := fmt.Sprintf("058091-PC-%04d", i+1)
			c, _, err := ca.IssueWorkstation(WorkstationRequest{Code: code, Comune: "Roma", PublicKey: key.Public()})
			if err != nil {
				errs <- err
				return
			}
			certs[i] = filepath.Join(dir, code+".pem")
			if err := os.WriteFile(certs[i], certPEM(c), 0o644); err != nil {
				errs <- err
			}
			mu.Lock()
			serials = append(serials, c.SerialNumber)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out := mustRun(t, dir, openssl, append([]string{"verify", "-CAfile", caPath}, certs...)...)
	if n := strings.Count(out, ": OK"); n != batch {
		t.Errorf("openssl verify: %d of %d OK:\n%s", n, batch, out)
	}

	now := time.Now()
	der, err := ca.CreateCRL([]CRLEntry{{Serial: serials[0], RevokedAt: now, Reason: ReasonKeyCompromise}, {Serial: serials[1], RevokedAt: now, Reason: ReasonCertificateHold}},
		big.NewInt(1), now, now.Add(25*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ca.crl"), der)
	text := mustRun(t, dir, openssl, "crl", "-inform", "DER", "-in", "ca.crl", "-CAfile", caPath, "-noout", "-text")
	if !strings.Contains(text, "verify OK") || !strings.Contains(text, "Key Compromise") || !strings.Contains(text, "Certificate Hold") {
		t.Errorf("openssl crl:\n%s", text)
	}
	// the OCSP responder's certificate too
	key, err := ca.NewOCSPResponderKey()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ca.IssueOCSPResponder(key.Public(), now)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ocsp.pem"), certPEM(rc))
	if out := mustRun(t, dir, openssl, "verify", "-CAfile", caPath, "-purpose", "ocsphelper", "ocsp.pem"); !strings.Contains(out, "ocsp.pem: OK") {
		t.Errorf("openssl verify of the responder: %s", out)
	}
}

// CreateHSMCA is idempotent, uses a key already in the token, and
// refuses a certificate whose key is not in the token.
func TestCreateHSMCAKeepsWhatExists(t *testing.T) {
	if !hsm.Available {
		t.Skip("built without cgo")
	}
	_, certPath, uri := hsmCA(t, 2048)
	before, _ := os.ReadFile(certPath)
	keyMade, certMade, err := CreateHSMCA(certPath, uri, time.Now(), 2048)
	if err != nil || keyMade || certMade {
		t.Fatalf("second CreateHSMCA: %v %v %v", keyMade, certMade, err)
	}
	if after, _ := os.ReadFile(certPath); string(after) != string(before) {
		t.Error("the certificate was rewritten")
	}
	// a key made by the HSM's own tools: only the certificate is made
	os.Remove(certPath)
	if keyMade, certMade, err := CreateHSMCA(certPath, uri, time.Now(), 2048); err != nil || keyMade || !certMade {
		t.Fatalf("with the key already in the token: %v %v %v", keyMade, certMade, err)
	}
	if _, err := LoadCA(certPath, uri); err != nil {
		t.Fatal(err)
	}
	// a certificate whose key is not in the token
	other := strings.Replace(uri, "object=anprsec-ca", "object=missing", 1)
	if _, _, err := CreateHSMCA(certPath, other, time.Now(), 2048); err == nil || !strings.Contains(err.Error(), "la sua chiave non è nel token") {
		t.Errorf("certificate without its key: %v", err)
	}
	// the certificate of another key is refused by LoadCA
	tok := softhsmtest.New(t)
	otherCert := filepath.Join(t.TempDir(), "other.crt")
	if _, _, err := CreateHSMCA(otherCert, tok.URI("anprsec-ca"), time.Now(), 2048); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(otherCert, uri); err == nil || !strings.Contains(err.Error(), "non corrisponde") {
		t.Errorf("a certificate of another key: %v", err)
	}
}

// BenchmarkBatchSigning compares the CA signature of a workstation
// certificate with an RSA-4096 key in a file and in SoftHSM2, on all
// cores as the certificati job signs (keys generated beforehand: with a
// warm key pool this is what a batch pays the CA per certificate).
//
//	go test -run '^$' -bench BatchSigning ./pki/
func BenchmarkBatchSigning(b *testing.B) {
	fileCA, _, _ := devCA(b)
	hsmCA, _, _ := hsmCA(b, DevCAKeyBits)
	keys := make([]*rsa.PublicKey, 16)
	for i := range keys {
		k, err := GenerateKey(KeyRSA2048)
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = k.Public().(*rsa.PublicKey)
	}
	for _, tc := range []struct {
		name string
		ca   *CA
	}{{"file-key", fileCA}, {"softhsm2", hsmCA}} {
		b.Run(tc.name, func(b *testing.B) {
			var n sync.Mutex
			i := 0
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n.Lock()
					k := keys[i%len(keys)]
					i++
					n.Unlock()
					if _, _, err := tc.ca.IssueWorkstation(WorkstationRequest{Code: testCode, Comune: "Roma", PublicKey: k}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		})
	}
}
