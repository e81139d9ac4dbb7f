package store

import (
	"strings"
	"testing"
)

// Whatever the caller passes, a history entry holds at most the limits of
// its fields: a huge value is recorded cut, with its length, and the chain
// still verifies.
func TestHugeValuesAreRecordedCut(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	huge := strings.Repeat("A", 1<<20)
	err := s.Update(func(tx *Tx) error {
		return tx.Record(Source{Actor: huge, File: huge, Sheet: huge, Row: 2}, huge, huge, huge, huge)
	})
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.History(0, 0, nil)
	if err != nil || len(es) != 1 {
		t.Fatalf("history = %d entries, %v", len(es), err)
	}
	e := es[0]
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"actor", e.Actor, MaxEntryActor}, {"action", e.Action, MaxEntryName}, {"kind", e.Kind, MaxEntryName},
		{"key", e.Key, MaxEntryKey}, {"file", e.File, MaxEntryFile}, {"sheet", e.Sheet, MaxEntrySheet},
		{"detail", e.Detail, MaxEntryDetail},
	} {
		if len(f.v) > f.max || !strings.Contains(f.v, "tagliato: 1048576 byte, sha256 ") {
			t.Errorf("%s: %d bytes (limit %d), %.80q...", f.name, len(f.v), f.max, f.v)
		}
	}
	if _, err := s.VerifyHistory(); err != nil {
		t.Error(err)
	}
}

func TestLongRunErrorIsStoredCut(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	r := &Run{ID: "r", Job: "j", Outcome: "error", Error: strings.Repeat("x", 1<<20)}
	if err := s.Update(func(tx *Tx) error { return tx.PutRun(r) }); err != nil {
		t.Fatal(err)
	}
	var got *Run
	s.View(func(tx *Tx) (err error) { got, err = tx.LastRun("j"); return err })
	if got == nil || len(got.Error) > MaxRunError || !strings.Contains(got.Error, "tagliato") {
		t.Errorf("stored error of %d bytes", len(got.Error))
	}
}
