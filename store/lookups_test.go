package store

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"anprsec/domain"
)

// The indexes of a stored card, read without decoding the whole card, are
// those of the card; a comune is there once censused.
func TestLookupsWithoutDecoding(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	c := &domain.SmartCard{Serial: "SC9", CF: "RSSMRA80A01H501U", ISTAT: "058091", State: domain.CardAttiva,
		Requested: time.Now(), SecondSealed: []byte("sigillato"), DeliveredTo: "VRDLGU70A01H501X"}
	if err := s.Update(func(tx *Tx) error {
		if err := tx.PutComune(&domain.Comune{ISTAT: "058091"}); err != nil {
			return err
		}
		return tx.PutCard(c)
	}); err != nil {
		t.Fatal(err)
	}
	s.View(func(tx *Tx) error {
		got, err := tx.storedCardIndexes("SC9")
		if err != nil || !slices.Equal(got, cardIndexes(c)) {
			t.Errorf("stored indexes %q, %v; want %q", got, err, cardIndexes(c))
		}
		if got, err := tx.storedCardIndexes("SC10"); err != nil || got != nil {
			t.Errorf("indexes of no card: %q, %v", got, err)
		}
		for istat, want := range map[string]bool{"058091": true, "001001": false} {
			if ok, err := tx.HasComune(istat); err != nil || ok != want {
				t.Errorf("HasComune(%s) = %v, %v", istat, ok, err)
			}
		}
		return nil
	})
}

// The roles of a comune's utenze are those of its utenze, and of no other
// comune's.
func TestUtenzeRolesOfComune(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	us := []*domain.Utenza{
		{ISTAT: "058091", CF: "RSSMRA80A01H501U", Profiles: []domain.Profile{domain.ASC}, State: domain.UtenzaAttiva, Created: time.Now()},
		{ISTAT: "058091", CF: "VRDLGU70A01H501X", Profiles: []domain.Profile{domain.ALS, domain.ALP}, State: domain.UtenzaBloccata},
		{ISTAT: "058092", CF: "BNCGNN60A01H501Y", Profiles: []domain.Profile{domain.ALS}, State: domain.UtenzaAttiva},
	}
	if err := s.Update(func(tx *Tx) error {
		for _, u := range us {
			if err := tx.PutUtenza(u); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	s.View(func(tx *Tx) error {
		return tx.UtenzeRolesOfComune("058091", func(cf string, st domain.UtenzaState, ps []domain.Profile) error {
			got = append(got, fmt.Sprint(cf, st, ps))
			return nil
		})
	})
	want := []string{fmt.Sprint(us[0].CF, us[0].State, us[0].Profiles), fmt.Sprint(us[1].CF, us[1].State, us[1].Profiles)}
	if !slices.Equal(got, want) {
		t.Errorf("roles %q, want %q", got, want)
	}
}
