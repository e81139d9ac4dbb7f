package jobs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/secret"
	"anprsec/store"
)

// A record that cannot be read back (a flipped byte in a value log of the
// closed store, as a failing disk leaves it) fails every job that reads
// it, naming the record and history verify, instead of reporting ok.
func TestDamagedRecordFailsTheJobsThatReadIt(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	code := comA + "-PC-0001"
	err := c.env.Store.Update(func(tx *store.Tx) error {
		p, err := tx.Postazione(code)
		if err != nil {
			return err
		}
		p.P12Sealed = bytes.Repeat([]byte{0xAB}, 4096) // over the value threshold: in the value log
		return tx.PutPostazione(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(c.root), "data")
	key := bytes.Repeat([]byte{1}, secret.KeySize)
	open := func() *store.Store {
		st, err := store.Open(store.Options{Dir: dir, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	c.env.Store.Close()
	open().Close() // a later session: the damaged log is not the newest
	flipMiddleOfLargestValueLog(t, dir)
	c.env.Store = open()
	t.Cleanup(func() { c.env.Store.Close() })

	for _, job := range []Job{scadenzeJob, exportJob} {
		_, err := c.run(job)
		if !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), "postazione "+code) || !strings.Contains(err.Error(), "history verify") {
			t.Errorf("%s = %v, want a failure naming the damaged postazione", job.Name, err)
		}
	}
}

func flipMiddleOfLargestValueLog(t *testing.T, dir string) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	var big string
	var size int64
	for _, n := range names {
		if fi, err := os.Stat(n); err == nil && fi.Size() > size {
			big, size = n, fi.Size()
		}
	}
	b, err := os.ReadFile(big)
	if err != nil || size < 2048 {
		t.Fatalf("value logs %v: %v", names, err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(big, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
