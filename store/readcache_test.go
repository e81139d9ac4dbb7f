package store

import (
	"errors"
	"fmt"
	"testing"

	"anprsec/domain"
)

// A transaction that keeps its reads reads what one without does: its own
// writes and deletes, in a plain and in a pipelined transaction, past the
// bound of what it keeps, and the indexes of a record read before it is
// changed.
func TestCachedReadsSeeTheTransactionsOwnWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	card := func(serial string, st domain.CardState) *domain.SmartCard {
		return &domain.SmartCard{Serial: serial, CF: "RSSMRA80A01H501U", ISTAT: "058091", State: st}
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutCard(card("SC1", domain.CardProduzione)) }); err != nil {
		t.Fatal(err)
	}
	steps := func(tx *Tx) error {
		tx.CacheReads()
		c, err := tx.Card("SC1")
		if err != nil || c.State != domain.CardProduzione {
			return fmt.Errorf("first read: %+v, %v", c, err)
		}
		c.State = domain.CardConsegnata // changed in memory, stored below
		if again, err := tx.Card("SC1"); err != nil || again.State != domain.CardProduzione {
			return fmt.Errorf("read again before the write: %+v, %v", again, err)
		}
		if err := tx.PutCard(c); err != nil {
			return err
		}
		if again, err := tx.Card("SC1"); err != nil || again.State != domain.CardConsegnata {
			return fmt.Errorf("read after the write: %+v, %v", again, err)
		}
		if _, err := tx.Card("SC2"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("absent card: %v", err)
		}
		if err := tx.PutCard(card("SC2", domain.CardRichiesta)); err != nil {
			return err
		}
		if c2, err := tx.Card("SC2"); err != nil || c2.State != domain.CardRichiesta {
			return fmt.Errorf("card written after a read that found none: %+v, %v", c2, err)
		}
		if err := tx.del("s/SC2"); err != nil {
			return err
		}
		if _, err := tx.Card("SC2"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("deleted card: %v", err)
		}
		for i := range maxCachedReads + 10 {
			if _, err := tx.Card(fmt.Sprintf("X%d", i)); !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if c, err := tx.Card("SC1"); err != nil || c.State != domain.CardConsegnata {
			return fmt.Errorf("read past the bound: %+v, %v", c, err)
		}
		return nil
	}
	if err := s.Update(steps); err != nil {
		t.Fatal("plain transaction: ", err)
	}
	checkIndexes := func(want domain.CardState) {
		t.Helper()
		s.View(func(tx *Tx) error {
			for _, st := range []domain.CardState{domain.CardProduzione, domain.CardConsegnata} {
				ok, err := tx.exists("i/s-st/" + string(st) + "/SC1")
				if err != nil || ok != (st == want) {
					t.Errorf("index of state %s: %v, %v (the card is %s)", st, ok, err, want)
				}
			}
			return nil
		})
	}
	checkIndexes(domain.CardConsegnata)

	if err := s.Update(func(tx *Tx) error { return tx.PutCard(card("SC1", domain.CardProduzione)) }); err != nil {
		t.Fatal(err)
	}
	p := s.Pipeline()
	if err := p.Update(steps); err != nil {
		t.Fatal("pipelined transaction: ", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	checkIndexes(domain.CardConsegnata)
}
