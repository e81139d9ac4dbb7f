package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/secret"
	"anprsec/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir(), Key: bytes.Repeat([]byte{1}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestTransitions: each operation from each state: allowed ones reach
// their state, the others give a *StateError and change nothing.
func TestTransitions(t *testing.T) {
	all := []domain.CardState{domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata, domain.CardRevocata}
	ops := []struct {
		name string
		from domain.CardState
		to   domain.CardState
		do   func(tx *store.Tx, c *domain.SmartCard) error
	}{
		{"deliver", domain.CardProduzione, domain.CardConsegnata, func(tx *store.Tx, c *domain.SmartCard) error {
			return DeliverCard(tx, store.Source{Actor: "t"}, c, time.Time{}, "X", false)
		}},
		{"deliver to the ASC", domain.CardProduzione, domain.CardAttiva, func(tx *store.Tx, c *domain.SmartCard) error {
			return DeliverCard(tx, store.Source{Actor: "t"}, c, time.Time{}, "X", true)
		}},
		{"activate", domain.CardConsegnata, domain.CardAttiva, func(tx *store.Tx, c *domain.SmartCard) error { return ActivateCard(tx, store.Source{Actor: "t"}, c) }},
		{"block", domain.CardAttiva, domain.CardBloccata, func(tx *store.Tx, c *domain.SmartCard) error { return BlockCard(tx, store.Source{Actor: "t"}, c, "m") }},
		{"unblock", domain.CardBloccata, domain.CardAttiva, func(tx *store.Tx, c *domain.SmartCard) error {
			return UnblockCard(tx, store.Source{Actor: "t"}, c, "m")
		}},
	}
	st := openStore(t)
	n := 0
	for _, op := range ops {
		for _, from := range all {
			n++
			serial := fmt.Sprintf("SC%04d", n)
			err := st.Update(func(tx *store.Tx) error {
				c := &domain.SmartCard{Serial: serial, CF: "CF", ISTAT: "058091", State: from, SecondSealed: []byte("s")}
				if err := tx.InsertCard(c); err != nil {
					return err
				}
				return op.do(tx, c)
			})
			var se *StateError
			if from == op.from {
				if err != nil {
					t.Errorf("%s from %s: %v", op.name, from, err)
				}
			} else if !errors.As(err, &se) {
				t.Errorf("%s from %s: %v, want a StateError", op.name, from, err)
			}
			st.View(func(tx *store.Tx) error {
				c, err := tx.Card(serial)
				if from == op.from && (err != nil || c.State != op.to) {
					t.Errorf("%s from %s: state %s, want %s", op.name, from, c.State, op.to)
				}
				if from == op.from && op.to == domain.CardAttiva && op.name != "unblock" {
					if m, err := tx.Mail(store.PINMailID(serial)); err != nil || m.State != store.MailQueued {
						t.Errorf("%s: no mail queued (%v)", op.name, err)
					}
				}
				return nil
			})
		}
	}
	// Block and unblock need a motivo.
	err := st.Update(func(tx *store.Tx) error {
		c := &domain.SmartCard{Serial: "SCM", CF: "CF", State: domain.CardAttiva}
		tx.InsertCard(c)
		return BlockCard(tx, store.Source{Actor: "t"}, c, " ")
	})
	if !errors.Is(err, ErrMotivo) {
		t.Errorf("block without motivo: %v", err)
	}
}

// TestReplace: the current card is revoked at once (its queued mail set
// aside, its secrets erased) and a new one requested in the same comune.
func TestReplace(t *testing.T) {
	st := openStore(t)
	err := st.Update(func(tx *store.Tx) error {
		p := &domain.Person{CF: "RSSMRA68A01H501Y"}
		if _, err := RequestCard(tx, store.Source{Actor: "t"}, p, "058091", "SC"); err != nil {
			return err
		}
		if err := tx.PutPerson(p); err != nil {
			return err
		}
		c, err := tx.Card(p.Card)
		if err != nil {
			return err
		}
		c.State, c.SecondSealed = domain.CardConsegnata, []byte("sealed")
		if err := ActivateCard(tx, store.Source{Actor: "t"}, c); err != nil {
			return err
		}
		old, nw, err := ReplaceCard(tx, store.Source{Actor: "t"}, "rssmra68a01h501y", "furto", "SC", "")
		if err != nil {
			return err
		}
		if old != "SC0000000001" || nw != "SC0000000002" {
			t.Errorf("replace: old %s, new %s", old, nw)
		}
		oc, _ := tx.Card(old)
		nc, _ := tx.Card(nw)
		m, _ := tx.Mail(store.PINMailID(old))
		pe, _ := tx.Person("RSSMRA68A01H501Y")
		if oc.State != domain.CardRevocata || len(oc.SecondSealed) != 0 || m.State != store.MailFailed ||
			nc.State != domain.CardRichiesta || nc.ISTAT != "058091" || pe.Card != nw {
			t.Errorf("after replace: old %+v, mail %+v, new %+v, person card %s", oc, m, nc, pe.Card)
		}
		if _, _, err := ReplaceCard(tx, store.Source{Actor: "t"}, "RSSMRA68A01H501Y", "", "SC", ""); !errors.Is(err, ErrMotivo) {
			t.Errorf("replace without motivo: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestResend: a failed message of an ATTIVA card is queued again while
// its halves are held; not a queued one, not once the halves are gone.
func TestResend(t *testing.T) {
	st := openStore(t)
	src := store.Source{Actor: "t"}
	err := st.Update(func(tx *store.Tx) error {
		c := &domain.SmartCard{Serial: "SC1", CF: "CF", State: domain.CardConsegnata, SecondSealed: []byte("s")}
		tx.InsertCard(c)
		if err := ActivateCard(tx, src, c); err != nil {
			return err
		}
		if err := ResendCard(tx, src, c, "x"); !errors.Is(err, ErrNothingToResend) {
			t.Errorf("resend of a queued message: %v", err)
		}
		m, _ := tx.Mail(store.PINMailID("SC1"))
		m.State = store.MailFailed
		tx.PutMail(m)
		if err := ResendCard(tx, src, c, "indirizzo corretto"); err != nil {
			t.Errorf("resend after a failure: %v", err)
		}
		if m, _ := tx.Mail(store.PINMailID("SC1")); m.State != store.MailQueued || m.Attempts != 0 {
			t.Errorf("after resend: %+v", m)
		}
		c.SecondSealed = nil
		if err := ResendCard(tx, src, c, "x"); !errors.Is(err, ErrNothingToResend) {
			t.Errorf("resend without halves: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
