package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/domain"
	"anprsec/secret"
)

func testKey() []byte { return bytes.Repeat([]byte{7}, secret.KeySize) }

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, Key: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHistoryChain(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	for i := 0; i < 3; i++ {
		err := s.Update(func(tx *Tx) error {
			for j := 0; j < 4; j++ {
				if err := tx.Record(Source{Actor: "test", File: "f.xlsx", Row: j + 2}, "prova", "comune", "058091", "x"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.VerifyHistory()
	if err != nil || res.Entries != 12 {
		t.Fatalf("verify = %+v, %v; want 12 entries", res, err)
	}
	if err := s.tamperForTest(5, "altered"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyHistory(); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("verify after tamper = %v, want ErrChainBroken", err)
	}
}

func TestHistoryRolledBackWithTxn(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		tx.Record(Source{Actor: "t"}, "a", "k", "1", "")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Record(Source{Actor: "t"}, "a", "k", "2", "") }); err != nil {
		t.Fatal(err)
	}
	res, err := s.VerifyHistory()
	if err != nil || res.Entries != 1 {
		t.Fatalf("verify = %+v, %v; want 1 entry", res, err)
	}
}

func TestCardIndexes(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	c := &domain.SmartCard{Serial: "SC1", CF: "RSSMRA68A01H501Y", State: domain.CardRichiesta}
	must(t, s.Update(func(tx *Tx) error { return tx.PutCard(c) }))
	c.State = domain.CardProduzione
	must(t, s.Update(func(tx *Tx) error { return tx.PutCard(c) }))
	must(t, s.View(func(tx *Tx) error {
		for _, tc := range []struct {
			st   domain.CardState
			want int
		}{{domain.CardRichiesta, 0}, {domain.CardProduzione, 1}} {
			got, err := tx.CardsInState(tc.st)
			if err != nil {
				return err
			}
			if len(got) != tc.want {
				t.Errorf("cards in %s = %v, want %d", tc.st, got, tc.want)
			}
		}
		got, err := tx.CardsOfPerson("RSSMRA68A01H501Y")
		if err != nil || len(got) != 1 || got[0] != "SC1" {
			t.Errorf("cards of person = %v, %v", got, err)
		}
		return nil
	}))
}

func TestBackupSealedAndRestore(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "a"))
	const cf = "RSSMRA68A01H501Y"
	const mail = "mario.rossi@example.it"
	must(t, s.Update(func(tx *Tx) error {
		if err := tx.PutPerson(&domain.Person{CF: cf, Surname: "ROSSI"}); err != nil {
			return err
		}
		if err := tx.PutUtenza(&domain.Utenza{ISTAT: "058091", CF: cf, Email: mail}); err != nil {
			return err
		}
		return tx.Record(Source{Actor: "censimento"}, "utenza.crea", "utenza", "058091/"+cf, "")
	}))
	bkey := bytes.Repeat([]byte{9}, secret.KeySize)
	var buf bytes.Buffer
	must(t, s.Backup(&buf, bkey))
	s.Close()
	for _, secret := range []string{cf, mail, "ROSSI"} {
		if bytes.Contains(buf.Bytes(), []byte(secret)) {
			t.Errorf("backup holds %q in clear", secret)
		}
	}
	r := openTest(t, filepath.Join(dir, "b"))
	defer r.Close()
	if err := r.Restore(bytes.NewReader(buf.Bytes()), bytes.Repeat([]byte{8}, secret.KeySize)); err == nil {
		t.Fatal("restore with the wrong key succeeded")
	}
	trunc := buf.Bytes()[:buf.Len()-10]
	if err := r.Restore(bytes.NewReader(trunc), bkey); err == nil {
		t.Fatal("restore of a truncated backup succeeded")
	}
	must(t, r.Restore(bytes.NewReader(buf.Bytes()), bkey))
	must(t, r.View(func(tx *Tx) error {
		u, err := tx.Utenza("058091", cf)
		if err != nil || u.Email != mail {
			t.Errorf("restored utenza = %+v, %v", u, err)
		}
		return nil
	}))
	if res, err := r.VerifyHistory(); err != nil || res.Entries != 1 {
		t.Errorf("restored history = %+v, %v", res, err)
	}
}

func TestWrongStoreKey(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir).Close()
	if _, err := Open(Options{Dir: dir, Key: bytes.Repeat([]byte{1}, secret.KeySize)}); err == nil {
		t.Fatal("opened with the wrong key")
	}
}

func TestSealer(t *testing.T) {
	s, _ := NewSealer(testKey())
	sealed := s.Seal([]byte("1234"), "card/SC1/pin2")
	if got, err := s.Open(sealed, "card/SC1/pin2"); err != nil || string(got) != "1234" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, "card/SC2/pin2"); err == nil {
		t.Fatal("sealed value opened in another context")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPipelineReadsPreviousWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	p := s.Pipeline()
	for i := 0; i < 50; i++ {
		err := p.Update(func(tx *Tx) error {
			n, err := tx.Sequence("prova") // reads the value written by the transaction in flight
			if err != nil {
				return err
			}
			if n != uint64(i+1) {
				t.Errorf("transaction %d read sequence %d", i, n)
			}
			if err := tx.PutPerson(&domain.Person{CF: fmt.Sprintf("P%03d", i)}); err != nil {
				return err
			}
			return tx.Record(Source{Actor: "t"}, "a", "persona", fmt.Sprint(i), "")
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	must(t, p.Close())
	res, err := s.VerifyHistory()
	if err != nil || res.Entries != 50 {
		t.Fatalf("verify = %+v, %v; want 50 entries", res, err)
	}
	must(t, s.View(func(tx *Tx) error {
		if n, _ := tx.Count("p/"); n != 50 {
			t.Errorf("persons = %d, want 50", n)
		}
		return nil
	}))
	// The writer lock is released: a plain Update works.
	must(t, s.Update(func(tx *Tx) error { return tx.Record(Source{Actor: "t"}, "b", "k", "x", "") }))
}

func TestPipelineErrorStops(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	p := s.Pipeline()
	boom := errors.New("boom")
	must(t, p.Update(func(tx *Tx) error { return tx.PutPerson(&domain.Person{CF: "A"}) }))
	if err := p.Update(func(tx *Tx) error { tx.PutPerson(&domain.Person{CF: "B"}); return boom }); !errors.Is(err, boom) {
		t.Fatalf("update = %v, want boom", err)
	}
	p.Close()
	must(t, s.View(func(tx *Tx) error {
		if _, err := tx.Person("A"); err != nil {
			t.Error("first transaction lost")
		}
		if _, err := tx.Person("B"); err == nil {
			t.Error("failed transaction committed")
		}
		return nil
	}))
}

func TestInMemoryLargeValue(t *testing.T) {
	s, err := Open(Options{InMemory: true, Key: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	big := bytes.Repeat([]byte("x"), 64<<10)
	must(t, s.Update(func(tx *Tx) error { return tx.PutFileChunk("abc", 0, big) }))
	must(t, s.View(func(tx *Tx) error {
		c, err := tx.FileChunks("abc")
		if err != nil || len(c) != 1 || len(c[0]) != len(big) {
			t.Errorf("chunks = %d, %v", len(c), err)
		}
		return nil
	}))
}

func TestHistoryRemovedBlocks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first uint64
	}{{"middle", 3}, {"last", 5}, {"first", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, t.TempDir())
			defer s.Close()
			for i := 0; i < 3; i++ { // blocks start at entries 1, 3, 5
				must(t, s.Update(func(tx *Tx) error {
					tx.Record(Source{Actor: "t"}, "a", "k", "1", "")
					return tx.Record(Source{Actor: "t"}, "b", "k", "1", "")
				}))
			}
			if _, err := s.VerifyHistory(); err != nil {
				t.Fatal(err)
			}
			must(t, s.deleteBlockForTest(tc.first))
			if _, err := s.VerifyHistory(); !errors.Is(err, ErrChainBroken) {
				t.Fatalf("verify after removing block %d = %v, want ErrChainBroken", tc.first, err)
			}
		})
	}
}

// TestOpenAfterKillDuringMemtable: a memtable file of length 0 (a process
// killed while Badger created it) does not keep the store from opening,
// and nothing committed is lost.
func TestOpenAfterKillDuringMemtable(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{3}, secret.KeySize)
	st, err := Open(Options{Dir: dir, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *Tx) error { return tx.SetMeta("k", "v") }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.WriteFile(filepath.Join(dir, "00099.mem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = Open(Options{Dir: dir, Key: key})
	if err != nil {
		t.Fatalf("open with an empty memtable file: %v", err)
	}
	defer st.Close()
	var v string
	if err := st.View(func(tx *Tx) error { return tx.Meta("k", &v) }); err != nil || v != "v" {
		t.Errorf("after reopening: %q %v", v, err)
	}
}

// TestOpenAfterKillDuringValueLogCreation: a value log file of length 0 (a
// process killed between Badger creating it and sizing it) does not keep
// the store from opening, and nothing committed is lost, including values
// kept in the value log file before it.
func TestOpenAfterKillDuringValueLogCreation(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{4}, secret.KeySize)
	st, err := Open(Options{Dir: dir, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 4<<10) // past the value threshold: kept in the value log
	if err := st.Update(func(tx *Tx) error { return tx.SetMeta("k", big) }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if len(logs) != 1 {
		t.Fatalf("value log files: %v", logs)
	}
	if err := os.WriteFile(filepath.Join(dir, "000099.vlog"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = Open(Options{Dir: dir, Key: key})
	if err != nil {
		t.Fatalf("open with an empty value log file: %v", err)
	}
	var v string
	if err := st.View(func(tx *Tx) error { return tx.Meta("k", &v) }); err != nil || v != big {
		t.Errorf("after reopening: %d bytes, %v", len(v), err)
	}
	if err := st.Update(func(tx *Tx) error { return tx.SetMeta("k2", big) }); err != nil {
		t.Errorf("write after reopening: %v", err)
	}
	st.Close()
	if _, err := os.Stat(filepath.Join(dir, "000099.vlog")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the empty value log file is still there: %v", err)
	}
}
