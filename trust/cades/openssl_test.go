package cades

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCF is the codice fiscale of the test operator.
const testCF = "RSSMRA80A01H501U"

// lab is a folder of openssl-made CAs, cards and signatures.
type lab struct {
	t   *testing.T
	dir string
	bin string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	return &lab{t: t, dir: t.TempDir(), bin: bin}
}

func (l *lab) path(name string) string { return filepath.Join(l.dir, name) }

// run runs openssl in the lab folder and fails the test on error.
func (l *lab) run(args ...string) {
	l.t.Helper()
	cmd := exec.Command(l.bin, args...)
	cmd.Dir = l.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// tryRun runs openssl and returns its error and output.
func (l *lab) tryRun(args ...string) (string, error) {
	cmd := exec.Command(l.bin, args...)
	cmd.Dir = l.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *lab) read(name string) []byte {
	l.t.Helper()
	b, err := os.ReadFile(l.path(name))
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

func (l *lab) write(name string, data []byte) {
	l.t.Helper()
	if err := os.WriteFile(l.path(name), data, 0o600); err != nil {
		l.t.Fatal(err)
	}
}

// ca makes a self-signed CA <name>.pem / <name>.key.
func (l *lab) ca(name, cn string) {
	l.t.Helper()
	l.run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name+".key", "-out", name+".pem",
		"-subj", "/C=IT/O=Prova/CN="+cn, "-days", "3650",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
}

// card issues <name>.pem / <name>.key from CA ca, with subject subj, valid days.
func (l *lab) card(name, ca, subj string, days int) {
	l.t.Helper()
	l.write(name+".ext", []byte("keyUsage=critical,digitalSignature,nonRepudiation\nbasicConstraints=CA:FALSE\n"))
	l.run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", name+".key", "-out", name+".csr", "-subj", subj)
	l.run("x509", "-req", "-in", name+".csr", "-CA", ca+".pem", "-CAkey", ca+".key", "-set_serial", "0x"+randomSerial().Text(16),
		"-out", name+".pem", "-days", itoa(days), "-extfile", name+".ext")
}

// sign signs doc with card using openssl cms; extra are further flags
// (-cades, -nodetach, -md …).
func (l *lab) sign(out, doc, card string, extra ...string) []byte {
	l.t.Helper()
	args := append([]string{"cms", "-sign", "-binary", "-in", doc, "-signer", card + ".pem", "-inkey", card + ".key", "-out", out}, extra...)
	if !contains(extra, "-outform") {
		args = append(args, "-outform", "DER")
	}
	l.run(args...)
	return l.read(out)
}

func (l *lab) cert(name string) *x509.Certificate {
	l.t.Helper()
	c, _, err := parsePEMPair(l.read(name+".pem"), false)
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

func (l *lab) key(name string) crypto.Signer {
	l.t.Helper()
	_, k, err := parsePEMPair(l.read(name+".key"), true)
	if err != nil {
		l.t.Fatal(err)
	}
	return k
}

func (l *lab) anchors(cas ...string) *Anchors {
	l.t.Helper()
	var bundle []byte
	for _, c := range cas {
		bundle = append(bundle, l.read(c+".pem")...)
	}
	l.write("anchors.pem", bundle)
	a, err := LoadAnchors(l.path("anchors.pem"))
	if err != nil {
		l.t.Fatal(err)
	}
	return a
}

// crl makes a CRL of CA ca (key and certificate from openssl) listing the
// given certificates, revoked at the given time with the given reason code.
func (l *lab) crl(ca string, reason int, at time.Time, revoked ...*x509.Certificate) []byte {
	l.t.Helper()
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: at, ReasonCode: reason})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.Unix()),
		ThisUpdate:                now.Add(-time.Minute),
		NextUpdate:                now.AddDate(0, 0, 7),
		RevokedCertificateEntries: entries,
	}, l.cert(ca), l.key(ca))
	if err != nil {
		l.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
