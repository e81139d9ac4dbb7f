package e2e

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"anprsec/pki"
	"anprsec/store"
)

// TestCARolloverKilledAnywhere: `anprsec ca rinnova` SIGKILLed at random
// moments (an RSA-2048 key is made, then the certificates, then the
// switch: a small key leaves more of the run to the steps after it) never leaves the store naming a CA whose key is missing or is
// not its certificate's, never rewrites a key file once written, records
// the rollover once; run to its end it leaves two CAs, the new one current,
// and the crl job signs with both.
func TestCARolloverKilledAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs ca rinnova many times")
	}
	bin := binary(t)
	w := newWorkdir(t, bin, filepath.Join(t.TempDir(), "w"), nil)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	t.Logf("kill delays drawn with seed %d", seed)
	keys := map[string][32]byte{} // key file -> its content's hash when first seen
	done, hits, midway := false, 0, 0
	for i := 0; i < 40 && !done; i++ {
		// from the start of the process to past the key's generation
		d := time.Duration(15+12*i+rng.IntN(12)) * time.Millisecond
		killed, stderr := w.killRolloverAfter(d)
		if killed {
			hits++
		} else {
			done = true
			t.Logf("ended on its own after %v:\n%s", d, tail(stderr, 2000))
			if !w.rolledOver(t) {
				t.Fatalf("ca rinnova ended on its own without switching:\n%s", stderr)
			}
		}
		w.checkCAs(t, keys)
		if killed && len(keys) > 0 && !w.rolledOver(t) {
			midway++ // killed with the new key made and the switch not done
		}
	}
	if !done {
		w.run("ca", "rinnova")
		w.checkCAs(t, keys)
	}
	t.Logf("%d kills hit a running ca rinnova, %d of them after the new key was made", hits, midway)
	if len(keys) != 1 {
		t.Errorf("%d new key files made, want 1: %v", len(keys), keys)
	}
	if !w.rolledOver(t) {
		t.Fatal("not rolled over")
	}
	w.run("jobs", "run", "crl")
	if m, _ := filepath.Glob(w.path("var/drop/crl/anprsec-????????.crl")); len(m) != 1 {
		t.Errorf("the new CA's CRL: %v", m)
	}
	// The old CA had no certificate: retired at once, with a last CRL.
	if out, _ := w.run("ca", "elenco"); !strings.Contains(out, "ritirata") || !strings.Contains(out, "corrente") {
		t.Errorf("ca elenco:\n%s", out)
	}
}

// rolledOver reports whether the store names a current CA other than the
// first.
func (w *workdir) rolledOver(t *testing.T) bool {
	t.Helper()
	st := w.openStore(false) // the process is gone; the next run opens it just so
	defer st.Close()
	var reg *store.CARegistry
	err := st.View(func(tx *store.Tx) error {
		var err error
		reg, err = tx.CARegistry()
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return reg.Current != reg.CAs[0].KeyID
}

// checkCAs checks the store as a killed `ca rinnova` left it: each CA it
// names has its key, the key of its certificate; ca.rinnovo is recorded
// once when the current CA is not the first, never otherwise; no key file
// changes once written.
func (w *workdir) checkCAs(t *testing.T, keys map[string][32]byte) {
	t.Helper()
	files, _ := filepath.Glob(w.path("var/pki/ca-????????.key"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if prev, ok := keys[f]; ok && prev != sum {
			t.Fatalf("%s was rewritten", f)
		}
		keys[f] = sum
		if _, err := pki.ParsePrivateKeyPEM(data); err != nil {
			t.Fatalf("%s is not a whole key: %v", f, err)
		}
	}
	st := w.openStore(false) // the process is gone; the next run opens it just so
	defer st.Close()
	var reg *store.CARegistry
	if err := st.View(func(tx *store.Tx) error {
		var err error
		reg, err = tx.CARegistry()
		return err
	}); errors.Is(err, store.ErrNotFound) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	current := 0
	for _, c := range reg.CAs {
		if c.KeyID == reg.Current {
			current++
		}
		cert, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			t.Fatal(err)
		}
		keyFile := w.path("var/pki/ca.key")
		if c.Tag != "" {
			keyFile = w.path("var/pki/ca-" + c.Tag + ".key")
		}
		data, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatalf("CA %s in the store without its key: %v", c.KeyID, err)
		}
		key, err := pki.ParsePrivateKeyPEM(data)
		if err != nil {
			t.Fatal(err)
		}
		if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
			t.Fatalf("CA %s: %s is not its key", c.KeyID, keyFile)
		}
	}
	if current != 1 {
		t.Fatalf("%d current CAs among %d", current, len(reg.CAs))
	}
	entries, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "ca.rinnovo" })
	if err != nil {
		t.Fatal(err)
	}
	switched := reg.Current != reg.CAs[0].KeyID
	if (switched && len(entries) != 1) || (!switched && len(entries) != 0) {
		t.Fatalf("switched %v with %d ca.rinnovo entries", switched, len(entries))
	}
}

// killRolloverAfter starts `ca rinnova` with an RSA-2048 key, SIGKILLs it
// after d and reports whether the kill hit the running process.
func (w *workdir) killRolloverAfter(d time.Duration) (killed bool, stderr string) {
	w.t.Helper()
	var errb bytes.Buffer
	cmd := w.command([]string{"ANPRSEC_DEV_CA_BITS=2048"}, "ca", "rinnova")
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, errb.String()
}
