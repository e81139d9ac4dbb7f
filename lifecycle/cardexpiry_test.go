package lifecycle

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/secret"
	"anprsec/store"
)

// clockStore opens a store whose transactions see *now.
func clockStore(t *testing.T, now *time.Time) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{1}, secret.KeySize), Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

const cfHolder = "RSSMRA68A01H501Y"

// activeCardOf gives cfHolder, with an ATTIVA ALS utenza in 058091, an
// ATTIVA card expiring at expires, and returns its serial.
func activeCardOf(t *testing.T, st *store.Store, expires time.Time) string {
	t.Helper()
	var serial string
	err := st.Update(func(tx *store.Tx) error {
		if err := tx.PutUtenza(&domain.Utenza{ISTAT: "058091", CF: cfHolder, Email: "a@example.it", Profiles: []domain.Profile{domain.ALS}, State: domain.UtenzaAttiva}); err != nil {
			return err
		}
		p := &domain.Person{CF: cfHolder}
		s, err := RequestCard(tx, store.Source{Actor: "t"}, p, "058091", "SC")
		if err != nil {
			return err
		}
		if err := tx.PutPerson(p); err != nil {
			return err
		}
		c, err := tx.Card(s)
		if err != nil {
			return err
		}
		c.State, c.Expires = domain.CardConsegnata, expires
		if err := ActivateCard(tx, store.Source{Actor: "t"}, c); err != nil {
			return err
		}
		serial = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return serial
}

// TestExpiringCardStaysInUseUntilItsReplacementIsActivated: NUOVA_SC with
// motivo "scadenza" requests a new card but, unlike a loss, leaves the
// expiring one ATTIVA and current (its holder still signs requests and
// counts as the comune's ALS); a second such request is refused while the
// first is pending; activating the new card makes it current and revokes
// the old one (docs/rules.md#card-lifecycle).
func TestExpiringCardStaysInUseUntilItsReplacementIsActivated(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	st := clockStore(t, &now)
	old := activeCardOf(t, st, now.AddDate(0, 0, 40))
	src := store.Source{Actor: "t"}
	var nw string
	err := st.Update(func(tx *store.Tx) error {
		o, n, err := ReplaceCard(tx, src, cfHolder, "Scadenza il 11/04/2026", "SC", "058091")
		if err != nil {
			return err
		}
		if o != "" || n == "" || n == old {
			t.Errorf("replace by expiry: old %q, new %q", o, n)
		}
		nw = n
		oc, _ := tx.Card(old)
		nc, _ := tx.Card(n)
		pe, _ := tx.Person(cfHolder)
		if oc.State != domain.CardAttiva || nc.State != domain.CardRichiesta || nc.Replaces != old || pe.Card != old || pe.NextCard != n {
			t.Errorf("after the request: old %s, new %s replaces %q, person card %s next %s", oc.State, nc.State, nc.Replaces, pe.Card, pe.NextCard)
		}
		if ok, _, err := ActiveCard(tx, cfHolder); !ok || err != nil {
			t.Errorf("the holder's card is not usable while its replacement is made: %v", err)
		}
		if has, _ := HasActiveALS(tx, "058091"); !has {
			t.Error("the comune lost its ALS while the replacement is made")
		}
		if _, _, err := ReplaceCard(tx, src, cfHolder, "scadenza", "SC", "058091"); !errors.Is(err, ErrReplacementPending) {
			t.Errorf("second replacement by expiry: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	now = now.AddDate(0, 0, 12)
	err = st.Update(func(tx *store.Tx) error {
		nc, _ := tx.Card(nw)
		nc.State, nc.Expires = domain.CardProduzione, now.AddDate(6, 0, 0)
		if err := DeliverCard(tx, src, nc, time.Time{}, "X", false); err != nil {
			return err
		}
		if oc, _ := tx.Card(old); oc.State != domain.CardAttiva {
			t.Errorf("old card %s at the prefettura's delivery of the new one", oc.State)
		}
		return ActivateCard(tx, src, nc)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(tx *store.Tx) error {
		oc, _ := tx.Card(old)
		pe, _ := tx.Person(cfHolder)
		if oc.State != domain.CardRevocata || pe.Card != nw || pe.NextCard != "" {
			t.Errorf("after activation: old %s (%s), person card %s next %q", oc.State, oc.Reason, pe.Card, pe.NextCard)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLossWhileAReplacementIsPendingMakesItCurrent: a loss of the expiring
// card while its replacement is being made revokes it at once and makes
// the pending card current: no third card.
func TestLossWhileAReplacementIsPendingMakesItCurrent(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	st := clockStore(t, &now)
	old := activeCardOf(t, st, now.AddDate(0, 0, 40))
	src := store.Source{Actor: "t"}
	err := st.Update(func(tx *store.Tx) error {
		_, nw, err := ReplaceCard(tx, src, cfHolder, "scadenza", "SC", "")
		if err != nil {
			return err
		}
		o, n, err := ReplaceCard(tx, src, cfHolder, "smarrimento", "SC", "")
		if err != nil {
			return err
		}
		oc, _ := tx.Card(old)
		pe, _ := tx.Person(cfHolder)
		if o != old || n != nw || oc.State != domain.CardRevocata || pe.Card != nw || pe.NextCard != "" {
			t.Errorf("loss: old %q (%s), new %q want %q, person card %s next %q", o, oc.State, n, nw, pe.Card, pe.NextCard)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCardPastItsExpiryIsNotUsable: an ATTIVA card past its expiry no
// longer lets its holder act nor counts as the comune's ALS, even before
// the scadenze job marks it; ExpireCard makes it SCADUTA with a history
// entry, erases its halves and refuses a card not yet expired; a new card
// may then be requested.
func TestCardPastItsExpiryIsNotUsable(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	st := clockStore(t, &now)
	serial := activeCardOf(t, st, now.AddDate(0, 0, 1))
	src := store.Source{Actor: "scadenze"}
	err := st.Update(func(tx *store.Tx) error {
		c, _ := tx.Card(serial)
		var se *StateError
		if err := ExpireCard(tx, src, c); !errors.As(err, &se) {
			t.Errorf("expiry of a card not yet expired: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	now = now.AddDate(0, 0, 2)
	err = st.Update(func(tx *store.Tx) error {
		ok, state, err := ActiveCard(tx, cfHolder)
		if ok || state != domain.CardScaduta || err != nil {
			t.Errorf("expired card: usable %v, state %s, %v", ok, state, err)
		}
		if has, _ := HasActiveALS(tx, "058091"); has {
			t.Error("an expired card counts as the comune's ALS")
		}
		c, _ := tx.Card(serial)
		c.SecondSealed = []byte("s")
		if err := ExpireCard(tx, src, c); err != nil {
			return err
		}
		if c.State != domain.CardScaduta || len(c.SecondSealed) != 0 {
			t.Errorf("after expiry: %s, halves %d bytes", c.State, len(c.SecondSealed))
		}
		var se *StateError
		if err := RevokeCard(tx, src, c, "x"); !errors.As(err, &se) {
			t.Errorf("revocation of an expired card: %v", err)
		}
		p, _ := tx.Person(cfHolder)
		nw, err := RequestCard(tx, src, p, "058091", "SC")
		if err != nil || nw == "" {
			t.Errorf("no new card after expiry: %q %v", nw, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "smartcard.scade" })
	if err != nil || len(es) != 1 || es[0].Key != serial || es[0].Actor != "scadenze" {
		t.Errorf("history: %+v %v", es, err)
	}
}

func TestExpiryMotivo(t *testing.T) {
	for m, want := range map[string]bool{"scadenza": true, " Scadenza ": true, "SCADENZA: 10/03": true, "scadenza-prossima": true,
		"scadenzario": false, "smarrimento": false, "furto dopo la scadenza": false, "": false} {
		if IsExpiryMotivo(m) != want {
			t.Errorf("IsExpiryMotivo(%q) = %v", m, !want)
		}
	}
}

// TestExpiryWhileAReplacementIsPendingMakesItCurrent: the expiring card
// reaches its expiry before its replacement is activated: it is SCADUTA
// and the replacement becomes the current card; no further card is
// requested for the person, and activating the replacement later changes
// nothing else.
func TestExpiryWhileAReplacementIsPendingMakesItCurrent(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	st := clockStore(t, &now)
	old := activeCardOf(t, st, now.AddDate(0, 0, 5))
	src := store.Source{Actor: "t"}
	var nw string
	err := st.Update(func(tx *store.Tx) (err error) {
		_, nw, err = ReplaceCard(tx, src, cfHolder, "scadenza", "SC", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	now = now.AddDate(0, 0, 6)
	err = st.Update(func(tx *store.Tx) error {
		oc, _ := tx.Card(old)
		if err := ExpireCard(tx, src, oc); err != nil {
			return err
		}
		pe, _ := tx.Person(cfHolder)
		if pe.Card != nw || pe.NextCard != "" {
			t.Errorf("after the old card's expiry: card %s next %q, want %s current", pe.Card, pe.NextCard, nw)
		}
		if s, err := RequestCard(tx, src, pe, "058091", "SC"); s != "" || err != nil {
			t.Errorf("a further card requested: %q %v", s, err)
		}
		nc, _ := tx.Card(nw)
		nc.State = domain.CardConsegnata
		if err := ActivateCard(tx, src, nc); err != nil {
			return err
		}
		if oc, _ := tx.Card(old); oc.State != domain.CardScaduta {
			t.Errorf("the expired card became %s", oc.State)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
