package store

import (
	"errors"
	"fmt"
	"testing"

	"anprsec/domain"
)

// A pipeline that tracks absent keys still finds every key the store held
// before it and every key it wrote itself, in the transaction that wrote it
// and in all later ones, and reports the others as not found.
func TestTrackedPipelineFindsStoredAndWrittenKeys(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	must(t, s.Update(func(tx *Tx) error {
		for i := range 100 {
			if err := tx.PutPerson(&domain.Person{CF: fmt.Sprintf("OLD%03d", i), Surname: "X"}); err != nil {
				return err
			}
		}
		return nil
	}))
	p := s.Pipeline()
	must(t, p.TrackAbsent(1000, "p/"))
	if p.absent == nil {
		t.Fatal("no filter kept for a store with fewer keys than the pipeline writes")
	}
	for k := range 10 {
		must(t, p.Update(func(tx *Tx) error {
			for i := range 20 {
				if err := tx.PutPerson(&domain.Person{CF: fmt.Sprintf("NEW%03d", k*20+i), Surname: "Y"}); err != nil {
					return err
				}
			}
			for i := range 100 {
				if _, err := tx.Person(fmt.Sprintf("OLD%03d", i)); err != nil {
					t.Errorf("transaction %d: stored person %d: %v", k, i, err)
				}
			}
			for i := range (k + 1) * 20 {
				if _, err := tx.Person(fmt.Sprintf("NEW%03d", i)); err != nil {
					t.Errorf("transaction %d: person %d written by the pipeline: %v", k, i, err)
				}
			}
			for i := range 50 {
				if _, err := tx.Person(fmt.Sprintf("NONE%03d", i)); !errors.Is(err, ErrNotFound) {
					t.Errorf("transaction %d: absent person %d: %v", k, i, err)
				}
			}
			return nil
		}))
	}
	lacked := 0
	for i := range 1000 {
		if p.absent.lacks(fmt.Sprintf("p/NONE%04d", i)) {
			lacked++
		}
	}
	if lacked < 900 {
		t.Errorf("the filter answers %d of 1000 absent keys, want most", lacked)
	}
	for _, k := range []string{"p/OLD000", "p/NEW199"} {
		if p.absent.lacks(k) {
			t.Errorf("the filter says %s is absent", k)
		}
	}
	must(t, p.Close())
}

// A key written by the transaction in flight when the tracking starts is
// found: the tracking waits for it and reads a snapshot with it.
func TestTrackAbsentAfterATransactionSeesIt(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	p := s.Pipeline()
	must(t, p.Update(func(tx *Tx) error { return tx.PutPerson(&domain.Person{CF: "FIRST"}) }))
	must(t, p.TrackAbsent(10, "p/"))
	must(t, p.Update(func(tx *Tx) error {
		if _, err := tx.Person("FIRST"); err != nil {
			t.Errorf("person of the first transaction: %v", err)
		}
		return nil
	}))
	must(t, p.Close())
}

// A store that holds more keys under the prefixes than the pipeline will
// write keeps no filter (most reads find their key); the reads are right.
func TestTrackAbsentKeepsNoFilterForAFullStore(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	must(t, s.Update(func(tx *Tx) error {
		for i := range 30 {
			if err := tx.PutPerson(&domain.Person{CF: fmt.Sprintf("OLD%03d", i)}); err != nil {
				return err
			}
		}
		return nil
	}))
	p := s.Pipeline()
	must(t, p.TrackAbsent(10, "p/"))
	if p.absent != nil {
		t.Error("filter kept for a store with more keys than the pipeline writes")
	}
	must(t, p.Update(func(tx *Tx) error {
		if _, err := tx.Person("OLD029"); err != nil {
			t.Errorf("stored person: %v", err)
		}
		if _, err := tx.Person("NONE"); !errors.Is(err, ErrNotFound) {
			t.Errorf("absent person: %v", err)
		}
		return nil
	}))
	must(t, p.Close())
}
