package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// TestHistoryHeadIsTheLastEntry: the head read is the number, hash and
// time of the last entry, and the hash is the one verify ends with; an
// empty history has number 0 and the zero hash.
func TestHistoryHeadIsTheLastEntry(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 45, 0, 0, time.UTC)
	s, err := Open(Options{Dir: t.TempDir(), Key: testKey(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	head, err := s.HistoryHead()
	if err != nil || head.Seq != 0 || !bytes.Equal(head.Hash, make([]byte, 32)) || !head.Time.IsZero() {
		t.Fatalf("empty history: head %+v, %v", head, err)
	}
	for i := 0; i < 3; i++ { // blocks start at entries 1, 3, 5
		now = now.Add(time.Hour)
		must(t, s.Update(func(tx *Tx) error {
			tx.Record(Source{Actor: "t"}, "a", "k", "1", "")
			return tx.Record(Source{Actor: "t"}, "b", "k", "1", "")
		}))
	}
	head, err = s.HistoryHead()
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.VerifyHistory()
	if err != nil {
		t.Fatal(err)
	}
	if head.Seq != 6 || hex.EncodeToString(head.Hash) != res.Head || !head.Time.Equal(now) {
		t.Errorf("head %d %x %s; want 6 %s %s", head.Seq, head.Hash, head.Time, res.Head, now)
	}
}

// TestHistoryHeadRefusesAMissingLastBlock: a head that names an entry
// whose block is gone is a broken chain, not an earlier head.
func TestHistoryHeadRefusesAMissingLastBlock(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	for i := 0; i < 2; i++ {
		must(t, s.Update(func(tx *Tx) error { return tx.Record(Source{Actor: "t"}, "a", "k", "1", "") }))
	}
	must(t, s.deleteBlockForTest(2))
	if head, err := s.HistoryHead(); !errors.Is(err, ErrChainBroken) {
		t.Errorf("head %+v, %v; want ErrChainBroken", head, err)
	}
}

// TestHistoryHashesAtNumbers: the hashes returned are those of the chain
// at each number asked (the last one is the head), 0 is the zero hash, a
// number past the end is absent; a tampered chain is an error.
func TestHistoryHashesAtNumbers(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	var heads []string
	for i := 0; i < 4; i++ {
		must(t, s.Update(func(tx *Tx) error { return tx.Record(Source{Actor: "t"}, "a", "k", "1", "") }))
		h, err := s.HistoryHead()
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, hex.EncodeToString(h.Hash))
	}
	res, got, err := s.HistoryHashes(0, 2, 4, 9)
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 4 || got[2] != heads[1] || got[4] != heads[3] || got[0] != hex.EncodeToString(make([]byte, 32)) {
		t.Errorf("hashes %v, want 2:%s 4:%s", got, heads[1], heads[3])
	}
	if _, ok := got[9]; ok || len(got) != 3 {
		t.Errorf("hashes %v: want only 0, 2 and 4", got)
	}
	must(t, s.tamperForTest(3, "altered"))
	if _, _, err := s.HistoryHashes(2); !errors.Is(err, ErrChainBroken) {
		t.Errorf("tampered chain: %v, want ErrChainBroken", err)
	}
}
