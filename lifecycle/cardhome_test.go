package lifecycle

import (
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/store"
)

// TestCardOperationsByRelationOfTheComune pins the table of who may do
// what to a card (docs/rules.md#card-lifecycle): the card of H's sindaco,
// asked by its home H, by O where the holder has worked for a month, by N
// that inserted him an hour ago, and by U where he has no utenza at all.
func TestCardOperationsByRelationOfTheComune(t *testing.T) {
	const (
		home, old, fresh, unrelated = "000001", "000002", "000003", "000004"
		cf                          = "RSSMRA80A01H501U"
		tenure                      = 7 * 24 * time.Hour
	)
	st := openStore(t)
	now := time.Now()
	if err := st.Update(func(tx *store.Tx) error {
		for istat, created := range map[string]time.Time{home: now.AddDate(-2, 0, 0), old: now.AddDate(0, -1, 0), fresh: now.Add(-time.Hour)} {
			if err := tx.PutUtenza(&domain.Utenza{ISTAT: istat, CF: cf, Profiles: []domain.Profile{domain.Operatore}, State: domain.UtenzaAttiva, Created: created}); err != nil {
				return err
			}
		}
		if err := tx.PutPerson(&domain.Person{CF: cf, Card: "SC1"}); err != nil {
			return err
		}
		return tx.InsertCard(&domain.SmartCard{Serial: "SC1", CF: cf, ISTAT: home, State: domain.CardAttiva})
	}); err != nil {
		t.Fatal(err)
	}
	card := func(blockedBy string) *domain.SmartCard {
		return &domain.SmartCard{Serial: "SC1", CF: cf, ISTAT: home, State: domain.CardAttiva, BlockedBy: blockedBy}
	}
	type want map[string]string // comune -> refusal code ("" = allowed)
	for _, tc := range []struct {
		name      string
		act       CardAct
		blockedBy string
		want      want
	}{
		{"replace", CardReplace, "", want{home: "", old: "SMART_CARD_ALTRO_COMUNE", fresh: "SMART_CARD_ALTRO_COMUNE", unrelated: "SMART_CARD_ALTRO_COMUNE"}},
		{"register delivery", CardRegisterDelivery, "", want{home: "", old: "ALTRO_COMUNE", fresh: "ALTRO_COMUNE", unrelated: "ALTRO_COMUNE"}},
		{"protective block", CardBlock, "", want{home: "", old: "", fresh: "SMART_CARD_UTENZA_RECENTE", unrelated: "SMART_CARD_UTENZA_RECENTE"}},
		{"unblock what home blocked", CardUnblock, "", want{home: "", old: "SMART_CARD_ALTRO_COMUNE", fresh: "SMART_CARD_ALTRO_COMUNE", unrelated: "SMART_CARD_ALTRO_COMUNE"}},
		{"unblock what old blocked", CardUnblock, old, want{home: "", old: "", fresh: "SMART_CARD_ALTRO_COMUNE", unrelated: "SMART_CARD_ALTRO_COMUNE"}},
	} {
		for istat, code := range tc.want {
			var ref *Refusal
			if err := st.View(func(tx *store.Tx) error {
				var err error
				ref, err = MayActOnCard(tx, card(tc.blockedBy), istat, tc.act, tenure)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			got := ""
			if ref != nil {
				got = ref.Code
			}
			if got != code {
				t.Errorf("%s asked by %s: refusal %q, want %q", tc.name, istat, got, code)
			}
		}
	}
}

// TestHomeMovesToTheOldestUtenzaWhenTheHomeCancelsIt: the card follows its
// holder to the comune of his oldest remaining utenza, with a history entry.
func TestHomeMovesToTheOldestUtenzaWhenTheHomeCancelsIt(t *testing.T) {
	const cf = "RSSMRA80A01H501U"
	st := openStore(t)
	now := time.Now()
	if err := st.Update(func(tx *store.Tx) error {
		for istat, created := range map[string]time.Time{"000001": now.AddDate(-3, 0, 0), "000002": now.AddDate(-1, 0, 0), "000003": now.AddDate(-2, 0, 0)} {
			if err := tx.PutUtenza(&domain.Utenza{ISTAT: istat, CF: cf, Profiles: []domain.Profile{domain.Operatore}, State: domain.UtenzaAttiva, Created: created}); err != nil {
				return err
			}
		}
		if err := tx.PutPerson(&domain.Person{CF: cf, Card: "SC1"}); err != nil {
			return err
		}
		return tx.InsertCard(&domain.SmartCard{Serial: "SC1", CF: cf, ISTAT: "000001", State: domain.CardAttiva})
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *store.Tx) error {
		_, _, ref, err := ChangeUtenza(tx, store.Source{Actor: "t"}, OpCancelUtente, "000001", cf, "trasferito")
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var moved bool
	st.View(func(tx *store.Tx) error {
		c, err := tx.Card("SC1")
		if err != nil || c.ISTAT != "000003" || c.State != domain.CardAttiva {
			t.Errorf("card after the home cancelled: %+v, %v; want home 000003 (the oldest utenza left), ATTIVA", c, err)
		}
		return tx.EachHistory(0, func(e *store.Entry) (bool, error) {
			moved = moved || (e.Action == "smartcard.comune" && e.Key == "SC1")
			return true, nil
		})
	})
	if !moved {
		t.Error("no smartcard.comune history entry for the move")
	}
}

// TestSecondHalvesGoOnlyToTheAddressTheHomeRegistered: another comune's
// utenza of the holder, with an address of its choosing, never receives
// them; a home without an address gives none.
func TestSecondHalvesGoOnlyToTheAddressTheHomeRegistered(t *testing.T) {
	const cf = "RSSMRA80A01H501U"
	st := openStore(t)
	put := func(istat, email string) {
		if err := st.Update(func(tx *store.Tx) error {
			return tx.PutUtenza(&domain.Utenza{ISTAT: istat, CF: cf, Email: email, State: domain.UtenzaAttiva, Created: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("000001", "titolare@casa.example")
	put("000002", "attaccante@altro.example")
	c := &domain.SmartCard{Serial: "SC1", CF: cf, ISTAT: "000001", State: domain.CardAttiva}
	address := func() (string, string) {
		var home, email string
		st.View(func(tx *store.Tx) error {
			var err error
			home, email, err = HolderAddress(tx, c)
			return err
		})
		return home, email
	}
	if home, email := address(); home != "000001" || email != "titolare@casa.example" {
		t.Errorf("address = %s %s, want the home's", home, email)
	}
	put("000001", "")
	if home, email := address(); home != "000001" || email != "" {
		t.Errorf("home without an address: %s %q, want no address (never another comune's)", home, email)
	}
}
