package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"anprsec/domain"
)

// putTestCards stores n requested cards SC0000... with one person each.
func putTestCards(t *testing.T, s *Store, n int) {
	t.Helper()
	must(t, s.Update(func(tx *Tx) error {
		for i := range n {
			cf := fmt.Sprintf("RSSMRA68A01H%03dY", i)
			c := &domain.SmartCard{Serial: fmt.Sprintf("SC%04d", i), CF: cf, ISTAT: "058091", State: domain.CardRichiesta}
			if err := tx.InsertCard(c); err != nil {
				return err
			}
			if err := tx.PutPerson(&domain.Person{CF: cf, Surname: fmt.Sprintf("ROSSI%d", i), Name: "MARIO", BirthDate: "1968-01-01"}); err != nil {
				return err
			}
		}
		return tx.PutComune(&domain.Comune{ISTAT: "058091", Name: "Roma"})
	}))
}

func TestReadCardsReturnsEveryCardAskedInTheOrderAsked(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	putTestCards(t, s, 300)
	// Neighbours, gaps longer than seekGap, a step back and a serial asked twice.
	ask := []string{"SC0001", "SC0002", "SC0150", "SC0003", "SC0299", "SC0002", "SC0100", "SC0101"}
	must(t, s.View(func(tx *Tx) error {
		got, err := tx.ReadCards(ask, NewCardCache())
		if err != nil {
			return err
		}
		if len(got) != len(ask) {
			t.Fatalf("%d cards for %d serials", len(got), len(ask))
		}
		for i, c := range got {
			if c.Serial != ask[i] || c.State != domain.CardRichiesta {
				t.Errorf("card %d = %s %s, want %s", i, c.Serial, c.State, ask[i])
			}
		}
		if got[1] == got[5] {
			t.Error("a serial asked twice shares one card")
		}
		if _, err := tx.ReadCards([]string{"SC0001", "SC9999"}, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("reading a serial without a card: %v, want ErrNotFound", err)
		}
		return nil
	}))
}

func TestReadCardsSeesACardChangedSinceItsCacheReadIt(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	putTestCards(t, s, 3)
	cache := NewCardCache()
	read := func() *domain.SmartCard {
		t.Helper()
		var c *domain.SmartCard
		must(t, s.View(func(tx *Tx) error {
			cs, err := tx.ReadCards([]string{"SC0001"}, cache)
			if err == nil {
				c = cs[0]
			}
			return err
		}))
		return c
	}
	c := read()
	c.State = domain.CardBloccata // the caller's copy, not the cache's
	if got := read(); got.State != domain.CardRichiesta {
		t.Fatalf("after a change to the returned copy the card reads %s", got.State)
	}
	must(t, s.Update(func(tx *Tx) error {
		c, err := tx.Card("SC0001")
		if err != nil {
			return err
		}
		c.Order = "ordine-x"
		return tx.PutCard(c)
	}))
	if got := read(); got.Order != "ordine-x" {
		t.Errorf("a card changed since the cache read it reads order %q, want ordine-x", got.Order)
	}
}

func TestPutReadCardKeepsTheIndexesAsPutCardDoes(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	putTestCards(t, s, 3)
	cache := NewCardCache()
	must(t, s.Update(func(tx *Tx) error {
		cs, err := tx.ReadCards([]string{"SC0000", "SC0002"}, cache)
		if err != nil {
			return err
		}
		for _, c := range cs {
			next := *c
			next.State = domain.CardProduzione
			if err := tx.PutReadCard(c, &next, cache); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, s.View(func(tx *Tx) error {
		req, _ := tx.CardsInState(domain.CardRichiesta)
		prod, _ := tx.CardsInState(domain.CardProduzione)
		if fmt.Sprint(req) != "[SC0001]" || fmt.Sprint(prod) != "[SC0000 SC0002]" {
			t.Errorf("RICHIESTA %v, IN PRODUZIONE %v", req, prod)
		}
		if got, _ := tx.CardsOfPerson("RSSMRA68A01H002Y"); fmt.Sprint(got) != "[SC0002]" {
			t.Errorf("cards of the holder = %v", got)
		}
		c, err := tx.Card("SC0002")
		if err != nil || c.State != domain.CardProduzione {
			t.Errorf("stored card = %+v, %v", c, err)
		}
		cs, err := tx.ReadCards([]string{"SC0002"}, cache)
		if err != nil || cs[0].State != domain.CardProduzione {
			t.Errorf("card read through the cache = %+v, %v", cs, err)
		}
		return nil
	}))
}

func TestACardReadByReadCardsAndChangedBeforeTheCommitMakesTheUpdateRetry(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	putTestCards(t, s, 100)
	attempts := 0
	var seen domain.CardState
	must(t, s.Update(func(tx *Tx) error {
		attempts++
		cs, err := tx.ReadCards([]string{"SC0010", "SC0090"}, NewCardCache())
		if err != nil {
			return err
		}
		seen = cs[1].State
		if attempts == 1 {
			// Another writer commits a change to a card read here.
			changed := *cs[1]
			changed.State = domain.CardBloccata
			b, _ := json.Marshal(&changed)
			if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("s/SC0090"), b) }); err != nil {
				return err
			}
		}
		next := *cs[0]
		next.Order = "ordine-x"
		return tx.PutReadCard(cs[0], &next, nil)
	}))
	if attempts != 2 || seen != domain.CardBloccata {
		t.Errorf("%d attempts, the last read the card %s; want 2, the second reading it BLOCCATA", attempts, seen)
	}
}

func TestHoldersPersonsAndComuniByKeyLeaveOutTheMissing(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	putTestCards(t, s, 50)
	must(t, s.View(func(tx *Tx) error {
		for _, dense := range []bool{false, true} {
			ps, err := tx.PersonNamesByCF([]string{"RSSMRA68A01H040Y", "RSSMRA68A01H002Y", "XXXXXX00X00X000X", "RSSMRA68A01H002Y"}, dense)
			if err != nil {
				return err
			}
			if len(ps) != 2 || ps["RSSMRA68A01H040Y"].Surname != "ROSSI40" || ps["RSSMRA68A01H002Y"].Surname != "ROSSI2" || ps["RSSMRA68A01H002Y"].Name != "MARIO" {
				t.Errorf("persons (dense %v) = %v", dense, ps)
			}
		}
		hs, err := tx.CardHolders([]string{"SC0007", "SC0042", "SC9999"})
		if err != nil {
			return err
		}
		if len(hs) != 2 || hs["SC0007"] != "RSSMRA68A01H007Y" || hs["SC0042"] != "RSSMRA68A01H042Y" {
			t.Errorf("holders = %v", hs)
		}
		cs, err := tx.ComuniByISTAT([]string{"058091", "001001", "058091"})
		if err != nil {
			return err
		}
		if len(cs) != 1 || cs["058091"].Name != "Roma" {
			t.Errorf("comuni = %v", cs)
		}
		return nil
	}))
}

func TestPutReadCardOrderKeepsThePendingIndexAsPutCardOrderDoes(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	var name string
	must(t, s.Update(func(tx *Tx) error {
		o, err := tx.NewCardOrder(tx.Now, nil, []string{"SC0001"})
		name = o.Name
		return err
	}))
	must(t, s.Update(func(tx *Tx) error {
		prev, err := tx.CardOrder(name)
		if err != nil {
			return err
		}
		o := *prev
		o.State, o.Data = OrderPublished, nil
		return tx.PutReadCardOrder(prev, &o)
	}))
	must(t, s.View(func(tx *Tx) error {
		if p, err := tx.PendingCardOrders(); err != nil || len(p) != 0 {
			t.Errorf("pending orders after publication: %v, %v", p, err)
		}
		if o, err := tx.CardOrder(name); err != nil || o.State != OrderPublished || fmt.Sprint(o.Serials) != "[SC0001]" {
			t.Errorf("stored order = %+v, %v", o, err)
		}
		return nil
	}))
}
