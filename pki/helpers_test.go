package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/pki/hsm/softhsmtest"
)

// The RSA-4096 development CA takes about half a second to make: the tests
// share one, made once by CreateDevCA in a temporary folder.
var shared struct {
	once     sync.Once
	dir      string
	certPath string
	keyPath  string
	created  bool
	ca       *CA
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	softhsmtest.Cleanup()
	os.Exit(code)
}

// devCA returns the shared development CA (RSA-4096, from CreateDevCA and
// LoadCA) and the paths of its files.
func devCA(t testing.TB) (*CA, string, string) {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "pki-test-")
		if shared.err != nil {
			return
		}
		shared.certPath = filepath.Join(shared.dir, "pki", "ca.crt")
		shared.keyPath = filepath.Join(shared.dir, "pki", "ca.key")
		shared.created, shared.err = CreateDevCA(shared.certPath, shared.keyPath, time.Now())
		if shared.err != nil {
			return
		}
		shared.ca, shared.err = LoadCA(shared.certPath, shared.keyPath)
	})
	if shared.err != nil {
		t.Fatalf("development CA: %v", shared.err)
	}
	return shared.ca, shared.certPath, shared.keyPath
}

// ecCA makes a small ECDSA P-256 CA (fast: for fuzz seeds and EC cases).
func ecCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return selfSignedCA(t, key, "anprsec test EC CA")
}

func selfSignedCA(t testing.TB, key crypto.Signer, cn string) *CA {
	t.Helper()
	serial, err := NewSerial()
	if err != nil {
		t.Fatal(err)
	}
	ski, err := SubjectKeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewCA(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue makes a key and a certificate for code with ca.
func issue(t testing.TB, ca *CA, alg, code string) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	key, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := ca.IssueWorkstation(WorkstationRequest{Code: code, Comune: "Roma", PublicKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeFile(t testing.TB, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tool returns the path of an external program, or skips the test when it
// is not installed.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (%s): skipping the check with the real tool", name, pkg)
	}
	return p
}

// run runs a program and returns its stdout and stderr and whether it
// exited 0; a program that cannot start fails the test.
func run(t testing.TB, dir, prog string, args ...string) (string, string, bool) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %s: %v", prog, strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), err == nil
}

// mustRun is run that fails the test on a non-zero exit.
func mustRun(t testing.TB, dir, prog string, args ...string) string {
	t.Helper()
	out, errs, ok := run(t, dir, prog, args...)
	if !ok {
		t.Fatalf("%s %s failed:\n%s%s", filepath.Base(prog), strings.Join(args, " "), out, errs)
	}
	return out + errs
}
