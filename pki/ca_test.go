package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"anprsec/secret"
)

func TestDevCA(t *testing.T) {
	ca, certPath, keyPath := devCA(t)
	if !shared.created {
		t.Fatal("CreateDevCA in an empty folder reported created = false")
	}
	c := ca.Cert
	if c.Subject.CommonName != DevCACommonName {
		t.Errorf("CN %q, want %q", c.Subject.CommonName, DevCACommonName)
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Error("not CA:TRUE")
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage %b, want certSign|cRLSign", c.KeyUsage)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("no Subject Key Identifier")
	}
	if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 4096 {
		t.Errorf("key %T, want RSA-4096", c.PublicKey)
	}
	if c.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("signature %v, want SHA256-RSA", c.SignatureAlgorithm)
	}
	if y := c.NotAfter.Sub(c.NotBefore).Hours() / 24 / 365; y < 9.9 || y > 10.1 {
		t.Errorf("validity %.2f years, want 10", y)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("self-signature: %v", err)
	}
	for path, want := range map[string]os.FileMode{keyPath: 0o600, certPath: 0o644, filepath.Dir(keyPath): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", filepath.Base(path), fi.Mode().Perm(), want)
		}
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("key file is not a PKCS#8 PEM")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(keyPath), ".*tmp")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	t.Run("openssl", func(t *testing.T) {
		openssl := tool(t, "openssl", "Debian package openssl")
		out := mustRun(t, "", openssl, "x509", "-noout", "-text", "-in", certPath)
		for _, want := range []string{
			`CA:TRUE`,
			`Certificate Sign, CRL Sign`,
			`X509v3 Subject Key Identifier`,
			`Public-Key: \(4096 bit\)`,
			`Subject: O = anprsec, CN = anprsec development CA`,
			`Signature Algorithm: sha256WithRSAEncryption`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("openssl x509 -text lacks %q:\n%s", want, out)
			}
		}
		// The key file is the CA's key.
		mod1 := mustRun(t, "", openssl, "x509", "-noout", "-modulus", "-in", certPath)
		mod2 := mustRun(t, "", openssl, "rsa", "-noout", "-modulus", "-in", keyPath)
		if mod1 != mod2 {
			t.Error("openssl: the key file's modulus differs from the certificate's")
		}
	})
}

func TestCreateDevCAIdempotent(t *testing.T) {
	_, certPath, keyPath := devCA(t)
	certPEM, _ := os.ReadFile(certPath)
	keyPEM, _ := os.ReadFile(keyPath)

	copyCA := func(t *testing.T, withCert, withKey bool) (string, string) {
		dir := t.TempDir()
		c, k := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
		if withCert {
			writeFile(t, c, certPEM)
		}
		if withKey {
			writeFile(t, k, keyPEM)
		}
		return c, k
	}
	tests := []struct {
		name             string
		withCert, withKy bool
		wantErr          string
	}{
		{"both exist: nothing to do", true, true, ""},
		{"only the key", false, true, "esiste ma il suo certificato"},
		{"only the certificate", true, false, "esiste ma la sua chiave"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, k := copyCA(t, tc.withCert, tc.withKy)
			created, err := CreateDevCA(c, k, time.Now())
			if created {
				t.Error("created = true")
			}
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
			// Nothing was replaced or added.
			for p, want := range map[string][]byte{c: certPEM, k: keyPEM} {
				got, err := os.ReadFile(p)
				if os.IsNotExist(err) {
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s was rewritten", filepath.Base(p))
				}
			}
			if !tc.withCert {
				if _, err := os.Stat(c); err == nil {
					t.Error("a certificate was made next to an orphan key")
				}
			}
		})
	}
}

func TestLoadCA(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaCA := selfSignedCA(t, rsaKey, "RSA CA")
	ecCA := selfSignedCA(t, ecKey, "EC CA")
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, leaf := issue(t, ecCA, KeyECDSAP256, "058091-PC-0001")

	pemOf := func(typ string, der []byte, headers map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der, Headers: headers})
	}
	pkcs8 := func(k crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PRIVATE KEY", der, nil)
	}
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	ecParams := pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, nil)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	tests := []struct {
		name    string
		cert    *x509.Certificate
		key     []byte
		mode    os.FileMode
		wantErr string
	}{
		{"RSA PKCS#8", rsaCA.Cert, pkcs8(rsaKey), 0o600, ""},
		{"RSA PKCS#1", rsaCA.Cert, pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil), 0o600, ""},
		{"EC PKCS#8", ecCA.Cert, pkcs8(ecKey), 0o600, ""},
		{"EC SEC 1 after EC PARAMETERS", ecCA.Cert, append(ecParams, pemOf("EC PRIVATE KEY", sec1, nil)...), 0o400, ""},
		{"key readable by group", rsaCA.Cert, pkcs8(rsaKey), 0o640, "leggibile dal gruppo o da altri"},
		{"key readable by others", rsaCA.Cert, pkcs8(rsaKey), 0o604, "chmod 600"},
		{"key of another CA", ecCA.Cert, pkcs8(otherKey), 0o600, "non corrisponde"},
		{"not a CA certificate", leaf, pkcs8(ecKey), 0o600, "non è di una CA"},
		{"encrypted PEM", rsaCA.Cert, pemOf("RSA PRIVATE KEY", []byte{1, 2, 3}, map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}), 0o600, "le chiavi private cifrate non sono supportate"},
		{"encrypted PKCS#8", rsaCA.Cert, pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}, nil), 0o600, "le chiavi private cifrate non sono supportate"},
		{"no key in the file", rsaCA.Cert, certPEM(rsaCA.Cert), 0o600, "nessun blocco PEM di chiave privata"},
		{"damaged key", rsaCA.Cert, pemOf("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}, nil), 0o600, "PRIVATE KEY"},
		{"Ed25519 key", rsaCA.Cert, pkcs8(edKey), 0o600, "non supportata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cp := writeFile(t, filepath.Join(dir, "ca.crt"), certPEM(tc.cert))
			kp := writeFile(t, filepath.Join(dir, "ca.key"), tc.key)
			if err := os.Chmod(kp, tc.mode); err != nil {
				t.Fatal(err)
			}
			ca, err := LoadCA(cp, kp)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The loaded CA issues a certificate that chains to it.
			_, c := issue(t, ca, "", "058091-PC-0002")
			if err := c.CheckSignatureFrom(ca.Cert); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("permission error is secret.ErrPermissions", func(t *testing.T) {
		dir := t.TempDir()
		cp := writeFile(t, filepath.Join(dir, "ca.crt"), certPEM(rsaCA.Cert))
		kp := writeFile(t, filepath.Join(dir, "ca.key"), pkcs8(rsaKey))
		os.Chmod(kp, 0o644)
		if _, err := LoadCA(cp, kp); !errors.Is(err, secret.ErrPermissions) {
			t.Fatalf("err %v, want secret.ErrPermissions", err)
		}
	})
	t.Run("missing files", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")); err == nil {
			t.Fatal("no error")
		}
	})
}

// TestLoadCAOpenSSLKeys loads CA keys written by OpenSSL in each format it
// commonly writes.
func TestLoadCAOpenSSLKeys(t *testing.T) {
	openssl := tool(t, "openssl", "Debian package openssl")
	tests := []struct {
		name   string
		genkey []string
		header string
	}{
		{"genpkey RSA (PKCS#8)", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "ca.key"}, "-----BEGIN PRIVATE KEY-----"},
		{"genrsa -traditional (PKCS#1)", []string{"genrsa", "-traditional", "-out", "ca.key", "2048"}, "-----BEGIN RSA PRIVATE KEY-----"},
		{"ecparam -genkey (SEC 1)", []string{"ecparam", "-name", "prime256v1", "-genkey", "-out", "ca.key"}, "-----BEGIN EC PRIVATE KEY-----"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustRun(t, dir, openssl, tc.genkey...)
			mustRun(t, dir, openssl, "req", "-x509", "-new", "-key", "ca.key", "-out", "ca.crt", "-days", "3700",
				"-subj", "/CN=OpenSSL CA", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
			os.Chmod(filepath.Join(dir, "ca.key"), 0o600)
			data, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
			if !strings.Contains(string(data), tc.header) {
				t.Fatalf("openssl wrote no %s:\n%s", tc.header, data)
			}
			ca, err := LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
			if err != nil {
				t.Fatal(err)
			}
			_, c := issue(t, ca, "", "058091-PC-0003")
			writeFile(t, filepath.Join(dir, "leaf.pem"), certPEM(c))
			if out := mustRun(t, dir, openssl, "verify", "-CAfile", "ca.crt", "leaf.pem"); !strings.Contains(out, "leaf.pem: OK") {
				t.Fatalf("openssl verify: %s", out)
			}
		})
	}
}

func TestCreateDevCABits(t *testing.T) {
	tests := []struct {
		bits    int
		wantErr bool
	}{
		{2048, false},
		{1024, true},
		{8192, true},
		{0, true},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.bits), func(t *testing.T) {
			dir := t.TempDir()
			c, k := filepath.Join(dir, "pki", "ca.crt"), filepath.Join(dir, "pki", "ca.key")
			created, err := CreateDevCABits(c, k, time.Now(), tc.bits)
			if tc.wantErr {
				if err == nil || created {
					t.Fatalf("created %v, err %v: want an error", created, err)
				}
				if _, err := os.Stat(filepath.Dir(c)); err == nil {
					t.Error("a refused key size left a folder behind")
				}
				return
			}
			if err != nil || !created {
				t.Fatalf("created %v, err %v", created, err)
			}
			ca, err := LoadCA(c, k)
			if err != nil {
				t.Fatal(err)
			}
			if n := ca.Cert.PublicKey.(*rsa.PublicKey).N.BitLen(); n != tc.bits {
				t.Fatalf("%d bits, want %d", n, tc.bits)
			}
		})
	}
}
