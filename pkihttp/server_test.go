package pkihttp

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/pki"
)

// A relying party follows the CRL distribution point of a certificate to
// the CRL served here: OpenSSL downloads it, verifies it against the CA,
// accepts the good certificate and refuses the revoked one.
func TestOpenSSLDownloadsTheCRLNamedInTheCertificate(t *testing.T) {
	openssl := tool(t, "openssl")
	f := newFixture(t)
	f.serve()
	_, goodPEM := f.issue("058091-PC-0001")
	bad, badPEM := f.issue("058091-PC-0002")

	// before the first CRL there is nothing to download
	if code, _, _ := get(t, f.disc.CRL); code != http.StatusNotFound {
		t.Errorf("CRL before the first: status %d, want 404", code)
	}
	f.putCRL(1, pki.CRLEntry{Serial: bad.SerialNumber, RevokedAt: time.Now().Add(-time.Minute), Reason: pki.ReasonKeyCompromise})

	out, err := run(t, f.dir, openssl, "verify", "-CAfile", f.caPath, "-crl_download", "-crl_check", goodPEM)
	if err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify of the good certificate: %v\n%s", err, out)
	}
	out, err = run(t, f.dir, openssl, "verify", "-CAfile", f.caPath, "-crl_download", "-crl_check", badPEM)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify of the revoked certificate: %v\n%s", err, out)
	}

	// the same by hand: fetch the URL of the certificate, read it with openssl crl
	code, h, der := get(t, bad.CRLDistributionPoints[0])
	if code != http.StatusOK || h.Get("Content-Type") != "application/pkix-crl" || h.Get("Last-Modified") == "" {
		t.Fatalf("GET %s: %d %v", bad.CRLDistributionPoints[0], code, h)
	}
	crlFile := filepath.Join(f.dir, "fetched.crl")
	os.WriteFile(crlFile, der, 0o644)
	out, err = run(t, f.dir, openssl, "crl", "-inform", "DER", "-in", crlFile, "-CAfile", f.caPath, "-noout", "-text")
	if err != nil || !strings.Contains(out, "verify OK") || !strings.Contains(out, "Key Compromise") ||
		!strings.Contains(strings.ReplaceAll(out, ":", ""), strings.ToUpper(bad.SerialNumber.Text(16))) {
		t.Errorf("openssl crl: %v\n%s", err, out)
	}
}

// The CA issuers URL of a certificate gives the CA certificate (DER) that
// verifies it.
func TestCAIssuersURLServesTheCACertificate(t *testing.T) {
	f := newFixture(t)
	f.serve()
	c, _ := f.issue("058091-PC-0001")
	code, h, der := get(t, c.IssuingCertificateURL[0])
	if code != http.StatusOK || h.Get("Content-Type") != "application/pkix-cert" {
		t.Fatalf("GET %s: %d %v", c.IssuingCertificateURL[0], code, h)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca.Raw, f.ca.Cert.Raw) {
		t.Fatal("served a different certificate")
	}
	if err := c.CheckSignatureFrom(ca); err != nil {
		t.Errorf("the served CA does not verify the certificate: %v", err)
	}
}

// A new CRL in the store is served at the server's next read (it reads the
// store again at most once a second).
func TestServedCRLFollowsTheStore(t *testing.T) {
	f := newFixture(t)
	f.serve()
	f.putCRL(1)
	_, _, first := get(t, f.disc.CRL)
	f.putCRL(2)
	// The server reads the store again at most once a second; 10 seconds
	// leave room for a loaded machine.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, cur := get(t, f.disc.CRL)
		crl, err := x509.ParseRevocationList(cur)
		if err != nil {
			t.Fatal(err)
		}
		if crl.Number.Int64() == 2 {
			break
		}
		if !bytes.Equal(cur, first) || time.Now().After(deadline) {
			t.Fatalf("CRL number %d still served after %s", crl.Number, time.Since(deadline.Add(-10*time.Second)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Only GET and HEAD reach the CRL and the CA certificate; other paths are
// not found.
func TestServerRefusesOtherMethodsAndPaths(t *testing.T) {
	f := newFixture(t)
	f.serve()
	f.putCRL(1)
	resp, err := http.Post(f.disc.CRL, "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to the CRL: %d", resp.StatusCode)
	}
	resp, err = http.Head(f.disc.CRL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		t.Errorf("HEAD of the CRL: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	for _, p := range []string{"/", "/metrics", "/crl/anprsec.crl.pem", "/crl/../ca/anprsec.crt"} {
		if code, _, _ := get(t, f.base+p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
}

// Paths come from the configured URLs, the defaults when they are empty.
func TestPathsFollowTheConfiguredURLs(t *testing.T) {
	f := newFixture(t)
	s, err := New(Options{Store: f.st, CACert: f.ca.Cert, CRLURL: "http://pki.example.it/anpr/ca.crl"})
	if err != nil {
		t.Fatal(err)
	}
	crl, ca, ocsp := s.Paths()
	if crl != "/anpr/ca.crl" || ca != DefaultCAPath || ocsp != DefaultOCSPPath {
		t.Errorf("paths %s %s %s", crl, ca, ocsp)
	}
}
