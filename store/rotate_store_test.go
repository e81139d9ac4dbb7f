package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/secret"
)

// storeFixture is a closed store with sealed values and history entries,
// its store key file and its seal key file.
type storeFixture struct {
	dir, keyPath, sealPath string
	key, seal              []byte
	fx                     *sealedFixture
	entries                uint64
}

func newStoreFixture(t *testing.T) *storeFixture {
	t.Helper()
	root := t.TempDir()
	f := &storeFixture{dir: filepath.Join(root, "data"), key: testKey(), seal: bytes.Repeat([]byte{1}, secret.KeySize)}
	f.keyPath = filepath.Join(root, "store.key")
	must(t, os.WriteFile(f.keyPath, f.key, 0o600))
	f.sealPath = writeSealKey(t, root, f.seal)
	st := openTest(t, f.dir)
	f.fx = fillSealed(t, st, sealerOf(t, 1))
	for i := 0; i < 20; i++ {
		must(t, st.Update(func(tx *Tx) error {
			return tx.Record(Source{Actor: "test"}, "prova", "meta", fmt.Sprint(i), "")
		}))
	}
	res, err := st.VerifyHistory()
	must(t, err)
	f.entries = res.Entries
	must(t, st.Close())
	return f
}

// checkStoreRotated asserts that the store opens with the new key only,
// holds every sealed value as before, its history verifies with one more
// entry (chiavi.rotazione), and that the old key and store are archived.
func (f *storeFixture) checkStoreRotated(t *testing.T) {
	t.Helper()
	if err := StoreRotationPending(f.dir); err != nil {
		t.Errorf("after the rotation: %v", err)
	}
	cur, err := secret.ReadKey(f.keyPath)
	must(t, err)
	if bytes.Equal(cur, f.key) {
		t.Fatal("the store key file still holds the old key")
	}
	if st, err := Open(Options{Dir: f.dir, Key: f.key}); err == nil {
		st.Close()
		t.Fatal("the old key still opens the store")
	}
	st, err := Open(Options{Dir: f.dir, Key: cur})
	if err != nil {
		t.Fatalf("the new key: %v", err)
	}
	defer st.Close()
	vals := sealedValues(t, st)
	s := sealerOf(t, 1)
	for context, want := range f.fx.plain {
		got, err := s.Open(vals[context], context)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, %v; want %q", context, got, err, want)
		}
	}
	res, err := st.VerifyHistory()
	if err != nil || res.Entries != f.entries+1 {
		t.Errorf("history: %d entries, %v; want %d", res.Entries, err, f.entries+1)
	}
	es, err := st.History(0, 0, func(e *Entry) bool { return e.Action == "chiavi.rotazione" && e.Key == "store" })
	if err != nil || len(es) != 1 {
		t.Errorf("chiavi.rotazione entries %v, %v; want one", es, err)
	}
	archives, _ := filepath.Glob(f.keyPath + ".*.old")
	if len(archives) != 1 {
		t.Fatalf("archived keys %v, want one", archives)
	}
	if a, _ := os.ReadFile(archives[0]); !bytes.Equal(a, f.key) {
		t.Error("the archive does not hold the old key")
	}
	if fi, _ := os.Stat(archives[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %04o, want 0600", fi.Mode().Perm())
	}
	stamp := strings.TrimSuffix(strings.TrimPrefix(archives[0], f.keyPath+"."), ".old")
	old, err := Open(Options{Dir: f.dir + "." + stamp + ".old", Key: f.key})
	if err != nil {
		t.Fatalf("the old store with the archived key: %v", err)
	}
	if r, err := old.VerifyHistory(); err != nil || r.Entries != f.entries {
		t.Errorf("old store history: %d, %v", r.Entries, err)
	}
	old.Close()
	for _, p := range []string{f.dir + ".new", f.keyPath + ".new", f.dir + ".rotate"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
}

func TestStoreKeyRotationRebuildsTheStoreUnderTheNewKey(t *testing.T) {
	f := newStoreFixture(t)
	res, err := RotateStoreKey(f.dir, f.keyPath, Source{Actor: "test"}, StoreRotationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed || res.Records == 0 {
		t.Errorf("result %+v", res)
	}
	f.checkStoreRotated(t)
}

// A store with no history yet (just set up) gets a history head and the
// rotation's entry in the new store.
func TestStoreKeyRotationOfAStoreWithoutHistory(t *testing.T) {
	root := t.TempDir()
	dir, keyPath := filepath.Join(root, "data"), filepath.Join(root, "store.key")
	must(t, os.WriteFile(keyPath, testKey(), 0o600))
	st := openTest(t, dir)
	must(t, st.Update(func(tx *Tx) error { return tx.SetMeta("prova", "valore") }))
	must(t, st.Close())
	if _, err := RotateStoreKey(dir, keyPath, Source{Actor: "test"}, StoreRotationOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := Open(Options{Dir: dir, Key: mustRead(t, keyPath)})
	must(t, err)
	defer st.Close()
	var v string
	if err := st.View(func(tx *Tx) error { return tx.Meta("prova", &v) }); err != nil || v != "valore" {
		t.Errorf("record after the rotation: %q, %v", v, err)
	}
	if r, err := st.VerifyHistory(); err != nil || r.Entries != 1 {
		t.Errorf("history: %d entries, %v; want the rotation's", r.Entries, err)
	}
}

// The store is held by another process (the daemon): the rotation refuses
// to start and changes nothing.
func TestStoreKeyRotationRefusesAStoreInUse(t *testing.T) {
	f := newStoreFixture(t)
	st := openTest(t, f.dir)
	defer st.Close()
	if _, err := RotateStoreKey(f.dir, f.keyPath, Source{Actor: "test"}, StoreRotationOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("rotation of a store in use = %v, want ErrLocked", err)
	}
	for _, p := range []string{f.dir + ".rotate", f.dir + ".new"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s made by a refused rotation", p)
		}
	}
}

// A rotation stopped after any of its steps leaves StoreRotationPending
// saying to run it again; the next run completes it, nothing lost.
func TestStoreKeyRotationStoppedAtEachStepResumes(t *testing.T) {
	for _, step := range []string{"built", "moved-old", "moved-new", "key-swapped"} {
		t.Run(step, func(t *testing.T) {
			f := newStoreFixture(t)
			stop := errors.New("stopped")
			_, err := RotateStoreKey(f.dir, f.keyPath, Source{Actor: "test"}, StoreRotationOptions{Stop: func(s string) error {
				if s == step {
					return stop
				}
				return nil
			}})
			if !errors.Is(err, stop) {
				t.Fatalf("first run = %v, want stopped", err)
			}
			if err := StoreRotationPending(f.dir); !errors.Is(err, ErrStoreRotationPending) || !strings.Contains(err.Error(), "keys rotate store") {
				t.Errorf("while stopped = %v, want ErrStoreRotationPending saying to run it again", err)
			}
			res, err := RotateStoreKey(f.dir, f.keyPath, Source{Actor: "test"}, StoreRotationOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Resumed {
				t.Error("the second run did not resume")
			}
			f.checkStoreRotated(t)
		})
	}
}

// A build stopped half way (the new store dir partly written) is thrown
// away and made again.
func TestStoreKeyRotationRebuildsAHalfBuiltStore(t *testing.T) {
	f := newStoreFixture(t)
	newKey := bytes.Repeat([]byte{5}, secret.KeySize)
	must(t, os.WriteFile(f.keyPath+".new", newKey, 0o600))
	must(t, writeState(f.dir+".rotate", &storeRotation{Old: KeyFingerprint(f.key), New: KeyFingerprint(newKey), Stamp: "20261207080000"}))
	must(t, os.MkdirAll(f.dir+".new", 0o700))
	must(t, os.WriteFile(filepath.Join(f.dir+".new", "000001.vlog"), []byte("half"), 0o600))
	if _, err := RotateStoreKey(f.dir, f.keyPath, Source{Actor: "test"}, StoreRotationOptions{}); err != nil {
		t.Fatal(err)
	}
	f.checkStoreRotated(t)
}

// The child process of the kill -9 tests: it runs a rotation and, at the
// step it is told, says so on stdout and waits to be killed.
func TestRotationChildProcess(t *testing.T) {
	what := os.Getenv("ANPRSEC_ROTATION_CHILD")
	if what == "" {
		t.Skip("run by the kill -9 tests")
	}
	kind, at, _ := strings.Cut(what, ":")
	dir, keyPath, sealPath := os.Getenv("ANPRSEC_DIR"), os.Getenv("ANPRSEC_KEY"), os.Getenv("ANPRSEC_SEAL")
	park := func(step string) error {
		if step == at {
			fmt.Printf("AT %s\n", step)
			os.Stdout.Sync()
			time.Sleep(time.Minute)
		}
		return nil
	}
	var err error
	switch kind {
	case "seal":
		var st *Store
		if st, err = Open(Options{Dir: dir, Key: testKey()}); err == nil {
			_, err = st.RotateSealKey(sealPath, Source{Actor: "child"}, SealRotationOptions{Batch: 64,
				AfterBatch: func(n int) error { return park(fmt.Sprint("batch", n)) },
				AfterSwap:  func() error { return park("swapped") }})
		}
	case "store":
		_, err = RotateStoreKey(dir, keyPath, Source{Actor: "child"}, StoreRotationOptions{Stop: park})
	}
	fmt.Printf("DONE %v\n", err)
}

// killAt runs the child rotation kind and kills it with SIGKILL at step.
func killAt(t *testing.T, f *storeFixture, kind, step string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRotationChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ANPRSEC_ROTATION_CHILD="+kind+":"+step,
		"ANPRSEC_DIR="+f.dir, "ANPRSEC_KEY="+f.keyPath, "ANPRSEC_SEAL="+f.sealPath)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "AT "+step {
			must(t, cmd.Process.Kill())
			cmd.Wait()
			return
		}
		if strings.HasPrefix(line, "DONE") {
			cmd.Wait()
			t.Fatalf("the child ended before %s: %s", step, line)
		}
	}
	cmd.Wait()
	t.Fatalf("the child ended before %s", step)
}

func TestSealKeyRotationKilledResumes(t *testing.T) {
	for _, step := range []string{"batch1", "batch4", "swapped"} {
		t.Run(step, func(t *testing.T) {
			f := newStoreFixture(t)
			killAt(t, f, "seal", step)
			st := openTest(t, f.dir)
			defer st.Close()
			if _, err := st.CheckSealKey(sealerOf(t, 1)); !errors.Is(err, ErrSealRotationPending) {
				t.Errorf("after kill -9 = %v, want ErrSealRotationPending", err)
			}
			if _, err := st.RotateSealKey(f.sealPath, Source{Actor: "test"}, SealRotationOptions{}); err != nil {
				t.Fatal(err)
			}
			checkRotated(t, st, f.fx, f.sealPath, f.seal)
		})
	}
}

func TestStoreKeyRotationKilledResumes(t *testing.T) {
	for _, step := range []string{"built", "moved-old", "moved-new"} {
		t.Run(step, func(t *testing.T) {
			f := newStoreFixture(t)
			killAt(t, f, "store", step)
			if err := StoreRotationPending(f.dir); !errors.Is(err, ErrStoreRotationPending) {
				t.Errorf("after kill -9 = %v, want ErrStoreRotationPending", err)
			}
			if _, err := RotateStoreKey(f.dir, f.keyPath, Source{Actor: "test"}, StoreRotationOptions{}); err != nil {
				t.Fatal(err)
			}
			f.checkStoreRotated(t)
		})
	}
}
