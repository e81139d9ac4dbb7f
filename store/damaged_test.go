package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/domain"
)

// flipInValueLog flips one byte in the middle of the largest value log
// file of the closed store in dir, the way a failing disk would.
func flipInValueLog(t *testing.T, dir string) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	var big string
	var size int64
	for _, n := range names {
		if fi, err := os.Stat(n); err == nil && fi.Size() > size {
			big, size = n, fi.Size()
		}
	}
	if size < 2048 {
		t.Fatalf("no value log holds the test's values (%v)", names)
	}
	b, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(big, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// putBigPostazione stores a workstation whose record goes to the value log
// (over the 1 KB value threshold).
func putBigPostazione(t *testing.T, s *Store, code string) {
	t.Helper()
	err := s.Update(func(tx *Tx) error {
		return tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: code[:6], State: domain.CertAttivo,
			P12Sealed: bytes.Repeat([]byte{0xAB}, 4096)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A damaged value in an older value log (the store opened since it was
// written): every read of the record fails with ErrDamaged, naming the
// record and history verify, instead of decoding garbage or nothing.
func TestDamagedRecordIsNamed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	putBigPostazione(t, s, "058091-PC-0001")
	s.Close()
	openTest(t, dir).Close() // a later session: the log is no longer the newest
	flipInValueLog(t, dir)

	s = openTest(t, dir)
	defer s.Close()
	err := s.View(func(tx *Tx) error { _, err := tx.Postazione("058091-PC-0001"); return err })
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "postazione 058091-PC-0001") || !strings.Contains(err.Error(), "history verify") {
		t.Errorf("get = %v, want ErrDamaged naming the postazione and history verify", err)
	}
	err = s.View(func(tx *Tx) error {
		return tx.AllPostazioni(func(*domain.Postazione) error { return nil })
	})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "postazione 058091-PC-0001") {
		t.Errorf("scan = %v, want ErrDamaged naming the postazione", err)
	}
}

// A damaged history block is not read as an empty one: listing the
// history fails naming the block, and verify reports the chain broken.
func TestDamagedHistoryBlockIsNamed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	err := s.Update(func(tx *Tx) error {
		for i := 0; i < 40; i++ {
			if err := tx.Record(Source{Actor: "test"}, "prova", "comune", "058091", strings.Repeat("x", 100)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	openTest(t, dir).Close()
	flipInValueLog(t, dir)

	s = openTest(t, dir)
	defer s.Close()
	if _, err := s.History(0, 0, nil); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "history block from entry 1") {
		t.Errorf("History = %v, want ErrDamaged naming the block", err)
	}
	err = s.View(func(tx *Tx) error { return tx.EachHistory(0, func(*Entry) (bool, error) { return true, nil }) })
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "history block from entry 1") {
		t.Errorf("EachHistory = %v, want ErrDamaged naming the block", err)
	}
	if _, err := s.VerifyHistory(); !errors.Is(err, ErrChainBroken) {
		t.Errorf("VerifyHistory = %v, want ErrChainBroken", err)
	}
}

// Badger cuts the newest value log at a damaged entry when it opens the
// store, silently: a store closed cleanly has nothing to cut, so the open
// fails, saying what was lost; the next open gives what is left, and the
// lost record is named when read.
func TestValueLogCutAtOpenIsReported(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	putBigPostazione(t, s, "058091-PC-0001")
	s.Close()
	flipInValueLog(t, dir)

	_, err := Open(Options{Dir: dir, Key: testKey()})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), ".vlog") || !strings.Contains(err.Error(), "restore") {
		t.Fatalf("Open = %v, want ErrDamaged naming the value log", err)
	}
	s = openTest(t, dir)
	defer s.Close()
	err = s.View(func(tx *Tx) error { _, err := tx.Postazione("058091-PC-0001"); return err })
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("get after the cut = %v, want ErrDamaged", err)
	}
}

// After a crash the newest value log keeps its preallocated size and its
// half-written tail is cut at the next open: that is no damage.
func TestCrashTailIsNotDamage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "000002.vlog")
	const fileSize = 64 << 20
	if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkValueLogCut(p, 2*fileSize, fileSize); err != nil {
		t.Errorf("cut of a preallocated log = %v", err)
	}
	if err := checkValueLogCut(p, 100, fileSize); err != nil {
		t.Errorf("log not cut = %v", err)
	}
	if err := checkValueLogCut(p, 5000, fileSize); !errors.Is(err, ErrDamaged) {
		t.Errorf("cut of a log closed cleanly = %v, want ErrDamaged", err)
	}
}
