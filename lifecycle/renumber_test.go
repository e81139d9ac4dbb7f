package lifecycle

import (
	"slices"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/store"
)

// TestRenumberedComuneMovesWithItsUtenzeCardsAndBundlesButKeepsWorkstationCodes:
// a comune given a new ISTAT code and province moves in one step; its
// workstations keep their codes and are found under the new code; another
// comune and its card are not touched.
func TestRenumberedComuneMovesWithItsUtenzeCardsAndBundlesButKeepsWorkstationCodes(t *testing.T) {
	const (
		from, to, other = "041033", "099030", "058091"
		cf, cfOther     = "RSSMRA80A01H501U", "VRDGPP80A01H501U"
	)
	st := openStore(t)
	src := store.Source{Actor: "test"}
	now := time.Now()
	if err := st.Update(func(tx *store.Tx) error {
		for _, istat := range []string{from, other} {
			if err := tx.PutComune(&domain.Comune{ISTAT: istat, Name: "C" + istat, Province: istat[:3], NextPC: 1}); err != nil {
				return err
			}
			if err := tx.PutPostazione(&domain.Postazione{Code: domain.WorkstationCode(istat, 1), ISTAT: istat, State: domain.CertAttivo, Serial: "0A" + istat}); err != nil {
				return err
			}
		}
		for _, u := range []*domain.Utenza{{ISTAT: from, CF: cf}, {ISTAT: from, CF: cfOther}, {ISTAT: other, CF: cfOther}} {
			u.State, u.Profiles, u.Created = domain.UtenzaAttiva, []domain.Profile{domain.Operatore}, now
			if err := tx.PutUtenza(u); err != nil {
				return err
			}
		}
		if err := tx.InsertCard(&domain.SmartCard{Serial: "SC1", CF: cf, ISTAT: from, State: domain.CardAttiva}); err != nil {
			return err
		}
		if err := tx.InsertCard(&domain.SmartCard{Serial: "SC2", CF: cfOther, ISTAT: other, BlockedBy: from, State: domain.CardBloccata}); err != nil {
			return err
		}
		if _, err := tx.NewBundle(from, now, time.UTC, []string{domain.WorkstationCode(from, 1)}); err != nil {
			return err
		}
		return tx.NewStatusReport(&store.StatusReport{ISTAT: from, Operator: cf, Postazioni: true}, now, time.UTC)
	}); err != nil {
		t.Fatal(err)
	}

	if err := st.Update(func(tx *store.Tx) error {
		moved, err := RenumberComune(tx, src, from, to, "099")
		if !moved || err != nil {
			t.Fatalf("RenumberComune = %v, %v", moved, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	st.View(func(tx *store.Tx) error {
		if _, err := tx.Comune(from); err == nil {
			t.Errorf("comune %s still recorded", from)
		}
		c, err := tx.Comune(to)
		if err != nil || c.Province != "099" || !slices.Equal(c.PrevISTAT, []string{from}) || c.NextPC != 1 {
			t.Errorf("comune %s = %+v, %v; want province 099, earlier code %s, NextPC kept", to, c, err, from)
		}
		var utenze []string
		tx.UtenzeOfComune(to, func(u *domain.Utenza) error { utenze = append(utenze, u.ISTAT+"/"+u.CF); return nil })
		if !slices.Equal(utenze, []string{to + "/" + cf, to + "/" + cfOther}) {
			t.Errorf("utenze of %s = %v", to, utenze)
		}
		if n, _ := tx.Count("u/" + from + "/"); n != 0 {
			t.Errorf("%d utenze left under %s", n, from)
		}
		if got, _ := tx.ComuniOfPerson(cfOther); !slices.Equal(got, []string{other, to}) {
			t.Errorf("comuni of %s = %v, want [%s %s]", cfOther, got, other, to)
		}
		var ws []string
		tx.PostazioniOfComune(to, func(p *domain.Postazione) error { ws = append(ws, p.Code+"@"+p.ISTAT); return nil })
		if want := []string{domain.WorkstationCode(from, 1) + "@" + to}; !slices.Equal(ws, want) {
			t.Errorf("postazioni of %s = %v, want %v (code kept)", to, ws, want)
		}
		if p, err := tx.PostazioneBySerial("0A" + from); err != nil || p.ISTAT != to {
			t.Errorf("postazione by serial = %+v, %v", p, err)
		}
		ws = nil
		tx.PostazioniOfComune(other, func(p *domain.Postazione) error { ws = append(ws, p.Code); return nil })
		if !slices.Equal(ws, []string{domain.WorkstationCode(other, 1)}) {
			t.Errorf("postazioni of %s = %v", other, ws)
		}
		if c, _ := tx.Card("SC1"); c.ISTAT != to {
			t.Errorf("card SC1 home = %s, want %s", c.ISTAT, to)
		}
		if c, _ := tx.Card("SC2"); c.ISTAT != other || c.BlockedBy != to {
			t.Errorf("card SC2 = home %s, blocked by %s; want %s, %s", c.ISTAT, c.BlockedBy, other, to)
		}
		ids, _ := tx.PendingBundles()
		if len(ids) != 1 || ids[0][:7] != to+"/" {
			t.Errorf("pending bundles = %v, want one under %s", ids, to)
		}
		ids, _ = tx.PendingStatusReports()
		if len(ids) != 1 || ids[0][:7] != to+"/" {
			t.Errorf("pending STATO reports = %v, want one under %s", ids, to)
		} else if r, err := tx.StatusReport(ids[0]); err != nil || r.ISTAT != to || !r.Postazioni || r.Operator != cf {
			t.Errorf("STATO report = %+v, %v", r, err)
		}
		return nil
	})
}

// TestRenumberingOntoACensusedComuneIsRefused: the new code already belongs
// to a censused comune, so nothing moves.
func TestRenumberingOntoACensusedComuneIsRefused(t *testing.T) {
	st := openStore(t)
	if err := st.Update(func(tx *store.Tx) error {
		for _, istat := range []string{"041033", "099030"} {
			if err := tx.PutComune(&domain.Comune{ISTAT: istat, Name: "C" + istat}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := st.Update(func(tx *store.Tx) error {
		_, err := RenumberComune(tx, store.Source{Actor: "test"}, "041033", "099030", "099")
		return err
	})
	if err == nil {
		t.Fatal("renumbering onto a censused comune was not refused")
	}
	st.View(func(tx *store.Tx) error {
		if _, err := tx.Comune("041033"); err != nil {
			t.Errorf("comune 041033 gone after the refusal: %v", err)
		}
		return nil
	})
}

// TestRenumberingAComuneNeverCensusedChangesNothing: a comune of the table
// that was never censused has nothing to move.
func TestRenumberingAComuneNeverCensusedChangesNothing(t *testing.T) {
	st := openStore(t)
	if err := st.Update(func(tx *store.Tx) error {
		moved, err := RenumberComune(tx, store.Source{Actor: "test"}, "041033", "099030", "099")
		if moved || err != nil {
			t.Errorf("RenumberComune = %v, %v; want false, nil", moved, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
