package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A CA key file is never overwritten: NewFileKey and WriteNewFile refuse a
// name that exists and leave its content alone.
func TestANewCAKeyNeverReplacesAnExistingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pki", "ca-20270101.key")
	if _, err := NewFileKey(p, 2048); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if _, err := NewFileKey(p, 2048); err == nil || !strings.Contains(err.Error(), "non viene sovrascritto") {
		t.Errorf("second key at the same name: %v", err)
	}
	if err := WriteNewFile(p, []byte("x"), 0o600); err == nil {
		t.Error("WriteNewFile replaced a file")
	}
	after, _ := os.ReadFile(p)
	if string(before) != string(after) {
		t.Fatal("the key file changed")
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*tmp"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// The new CA keeps the old CA's name with its own key, and the cross
// certificate certifies that key under the old CA, no longer than the old
// CA lasts.
func TestTheCrossCertificateCertifiesTheNewKeyUnderTheOldCA(t *testing.T) {
	old, err := generateDevCA(time.Now().AddDate(-5, 0, 0), 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := GenerateKey(KeyRSA2048)
	if err != nil {
		t.Fatal(err)
	}
	next, err := NewRolloverCA(old.Cert, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(next.Cert.RawSubject) != string(old.Cert.RawSubject) || KeyID(next.Cert) == KeyID(old.Cert) {
		t.Fatal("the new CA does not keep the name with another key")
	}
	cross, err := old.CrossSign(next.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCross(cross, next.Cert, old.Cert); err != nil {
		t.Fatal(err)
	}
	if !cross.NotAfter.Equal(old.Cert.NotAfter) || !cross.IsCA {
		t.Errorf("cross certificate until %v (old CA until %v), CA %v", cross.NotAfter, old.Cert.NotAfter, cross.IsCA)
	}
	if err := CheckCross(cross, old.Cert, old.Cert); err == nil {
		t.Error("the cross certificate passes for the old CA's")
	}
	if _, err := NewRolloverCA(old.Cert, old.Signer, time.Now()); err == nil {
		t.Error("a rollover to the same key")
	}
}
