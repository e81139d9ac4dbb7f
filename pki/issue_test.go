package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		alg     string
		check   func(any) bool
		wantErr bool
	}{
		{"", func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }, false},
		{"rsa2048", func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }, false},
		{"ecdsa-p256", func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P256() }, false},
		{"ECDSA-P256", func(k any) bool { _, ok := k.(*ecdsa.PrivateKey); return ok }, false},
		{"rsa4096", nil, true},
		{"ed25519", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			k, err := GenerateKey(tc.alg)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(k) {
				t.Fatalf("key %T", k)
			}
		})
	}
}

func TestNewSerial(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s, err := NewSerial()
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 || s.BitLen() != 159 {
			t.Fatalf("serial %x: sign %d, %d bits; want positive, 159 bits", s, s.Sign(), s.BitLen())
		}
		if seen[s.String()] {
			t.Fatalf("serial %x drawn twice", s)
		}
		seen[s.String()] = true
	}
}

func TestIssueWorkstation(t *testing.T) {
	rsaCA, rsaCAPath, _ := devCA(t)
	ec := ecCA(t)
	tests := []struct {
		name    string
		ca      *CA
		caPath  string
		keyAlg  string
		code    string
		comune  string
		sigAlg  x509.SignatureAlgorithm
		days    int
		wantDay int
	}{
		{"RSA CA, RSA-2048 workstation", rsaCA, rsaCAPath, "", "058091-PC-0001", "Roma", x509.SHA256WithRSA, 0, 1825},
		{"RSA CA, P-256 workstation", rsaCA, rsaCAPath, KeyECDSAP256, "058091-PC-0002", "Roma", x509.SHA256WithRSA, 0, 1825},
		{"RSA CA, server certificate", rsaCA, rsaCAPath, KeyRSA2048, "058091-CO-9999", "Roma", x509.SHA256WithRSA, 0, 1825},
		{"RSA CA, comune with accents and apostrophe", rsaCA, rsaCAPath, "", "001004-PC-0001", "Sant'Antonino di Susa – Forlì", x509.SHA256WithRSA, 365, 365},
		{"RSA CA, five-digit workstation number", rsaCA, rsaCAPath, "", "058091-PC-12345", "Roma", x509.SHA256WithRSA, 30, 30},
		{"EC CA, RSA-2048 workstation", ec, "", "", "015146-PC-0001", "Milano", x509.ECDSAWithSHA256, 0, 1825},
		{"EC CA, P-256 workstation", ec, "", KeyECDSAP256, "015146-CO-9999", "Milano", x509.ECDSAWithSHA256, 0, 1825},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := GenerateKey(tc.keyAlg)
			if err != nil {
				t.Fatal(err)
			}
			nb := time.Now().Add(time.Minute).In(time.FixedZone("CEST", 2*3600)) // with nanoseconds, not UTC
			c, der, err := tc.ca.IssueWorkstation(WorkstationRequest{
				Code: tc.code, Comune: tc.comune, PublicKey: key.Public(), NotBefore: nb, ValidityDays: tc.days,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.Raw, der) {
				t.Fatal("returned certificate and DER differ")
			}
			if c.Subject.CommonName != tc.code || !slices.Equal(c.Subject.Organization, []string{tc.comune}) {
				t.Errorf("subject %v, want CN=%s, O=%s", c.Subject, tc.code, tc.comune)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 128 || len(c.SerialNumber.Bytes()) > 20 {
				t.Errorf("serial %x: want positive, at least 128 bits, at most 20 octets", c.SerialNumber)
			}
			if c.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
				t.Errorf("key usage %b", c.KeyUsage)
			}
			if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(c.UnknownExtKeyUsage) > 0 {
				t.Errorf("extended key usage %v, want clientAuth only", c.ExtKeyUsage)
			}
			if c.IsCA || !c.BasicConstraintsValid {
				t.Error("want basicConstraints CA:FALSE")
			}
			if len(c.SubjectKeyId) == 0 || !bytes.Equal(c.AuthorityKeyId, tc.ca.Cert.SubjectKeyId) {
				t.Errorf("SKI %x, AKI %x (CA SKI %x)", c.SubjectKeyId, c.AuthorityKeyId, tc.ca.Cert.SubjectKeyId)
			}
			if c.SignatureAlgorithm != tc.sigAlg {
				t.Errorf("signature %v, want %v", c.SignatureAlgorithm, tc.sigAlg)
			}
			if !c.NotBefore.Equal(nb.Truncate(time.Second)) {
				t.Errorf("notBefore %v, want %v", c.NotBefore, nb)
			}
			if got := c.NotAfter.Sub(c.NotBefore); got != time.Duration(tc.wantDay)*24*time.Hour {
				t.Errorf("validity %v, want %d days", got, tc.wantDay)
			}
			roots := x509.NewCertPool()
			roots.AddCert(tc.ca.Cert)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: nb.Add(time.Hour)}); err != nil {
				t.Errorf("Go verify: %v", err)
			}
			if tc.caPath == "" {
				return
			}
			openssl := tool(t, "openssl", "Debian package openssl")
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "leaf.pem"), certPEM(c))
			out := mustRun(t, dir, openssl, "verify", "-CAfile", tc.caPath, "-purpose", "sslclient",
				"-attime", strconv.FormatInt(nb.Add(time.Hour).Unix(), 10), "leaf.pem")
			if !strings.Contains(out, "leaf.pem: OK") {
				t.Errorf("openssl verify: %s", out)
			}
			text := mustRun(t, dir, openssl, "x509", "-noout", "-text", "-nameopt", "RFC2253,-esc_msb", "-in", "leaf.pem")
			for _, want := range []string{
				"TLS Web Client Authentication",
				"Digital Signature, Key Encipherment",
				"CA:FALSE",
				"X509v3 Subject Key Identifier",
				"X509v3 Authority Key Identifier",
				"Subject: CN=" + tc.code + ",O=" + tc.comune,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, "TLS Web Server Authentication") {
				t.Error("serverAuth present")
			}
		})
	}
}

func TestIssueWorkstationRefuses(t *testing.T) {
	ca := ecCA(t)
	key, _ := GenerateKey(KeyECDSAP256)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	ok := WorkstationRequest{Code: "058091-PC-0001", Comune: "Roma", PublicKey: key.Public()}
	tests := []struct {
		name    string
		edit    func(*WorkstationRequest)
		wantErr string
	}{
		{"bad code", func(r *WorkstationRequest) { r.Code = "58091-PC-0001" }, "atteso <ISTAT>-PC-<NNNN>"},
		{"code with a slash", func(r *WorkstationRequest) { r.Code = "058091-PC-0001/x" }, "atteso <ISTAT>-PC-<NNNN>"},
		{"lower-case code", func(r *WorkstationRequest) { r.Code = "058091-pc-0001" }, "atteso <ISTAT>-PC-<NNNN>"},
		{"other server number", func(r *WorkstationRequest) { r.Code = "058091-CO-0001" }, "atteso <ISTAT>-PC-<NNNN>"},
		{"no comune", func(r *WorkstationRequest) { r.Comune = "  " }, "comune"},
		{"no key", func(r *WorkstationRequest) { r.PublicKey = nil }, "manca la chiave pubblica"},
		{"RSA-1024", func(r *WorkstationRequest) { r.PublicKey = weak.Public() }, "almeno 2048"},
		{"Ed25519", func(r *WorkstationRequest) { r.PublicKey = edPub }, "non supportata"},
		{"P-224", func(r *WorkstationRequest) { r.PublicKey = p224.Public() }, "P-224"},
		{"negative validity", func(r *WorkstationRequest) { r.ValidityDays = -1 }, "validità"},
		{"outlives the CA", func(r *WorkstationRequest) { r.ValidityDays = 3660 }, "scadrebbe dopo il certificato della CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := ok
			tc.edit(&req)
			_, _, err := ca.IssueWorkstation(req)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	_, _, err := ca.IssueWorkstation(WorkstationRequest{Code: "058091-PC-0001", Comune: "Roma", PublicKey: key.Public(), ValidityDays: 4000})
	if !errors.Is(err, ErrBeyondCA) {
		t.Fatalf("err %v, want ErrBeyondCA", err)
	}
	if _, _, err := ca.IssueWorkstation(ok); err != nil {
		t.Fatalf("the unchanged request fails: %v", err)
	}
}

// A relying party finds the CRL, the CA certificate and the OCSP responder
// from the certificate alone; an empty URL is left out, and without any
// URL neither extension is written.
func TestIssuedCertificateCarriesTheDiscoveryURLs(t *testing.T) {
	ca, caPath, _ := devCA(t)
	key, err := GenerateKey(KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	full := Discovery{CRL: "http://pki.example.it/crl/anprsec.crl", OCSP: "http://pki.example.it/ocsp", CAIssuers: "http://pki.example.it/ca/anprsec.crt"}
	tests := []struct {
		name      string
		disc      Discovery
		want, not []string
	}{
		{"all three", full,
			[]string{"X509v3 CRL Distribution Points", "URI:" + full.CRL, "Authority Information Access", "OCSP - URI:" + full.OCSP, "CA Issuers - URI:" + full.CAIssuers}, nil},
		{"OCSP only", Discovery{OCSP: full.OCSP},
			[]string{"Authority Information Access", "OCSP - URI:" + full.OCSP}, []string{"CRL Distribution Points", "CA Issuers"}},
		{"CRL only", Discovery{CRL: full.CRL},
			[]string{"X509v3 CRL Distribution Points", "URI:" + full.CRL}, []string{"Authority Information Access"}},
		{"none", Discovery{}, nil, []string{"CRL Distribution Points", "Authority Information Access"}},
	}
	openssl := tool(t, "openssl", "Debian package openssl")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := ca.IssueWorkstation(WorkstationRequest{Code: "058091-PC-0001", Comune: "Roma", PublicKey: key.Public(), Discovery: tc.disc})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.CRLDistributionPoints, nonEmpty(tc.disc.CRL)) || !slices.Equal(c.OCSPServer, nonEmpty(tc.disc.OCSP)) ||
				!slices.Equal(c.IssuingCertificateURL, nonEmpty(tc.disc.CAIssuers)) {
				t.Errorf("parsed back: CDP %v, OCSP %v, CA issuers %v", c.CRLDistributionPoints, c.OCSPServer, c.IssuingCertificateURL)
			}
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "leaf.pem"), certPEM(c))
			text := mustRun(t, dir, openssl, "x509", "-noout", "-text", "-in", "leaf.pem")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("openssl x509 -text lacks %q:\n%s", w, text)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(text, n) {
					t.Errorf("openssl x509 -text shows %q:\n%s", n, text)
				}
			}
			if out := mustRun(t, dir, openssl, "verify", "-CAfile", caPath, "leaf.pem"); !strings.Contains(out, "leaf.pem: OK") {
				t.Errorf("openssl verify: %s", out)
			}
		})
	}
}
