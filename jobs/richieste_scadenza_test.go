package jobs

import (
	"strings"
	"testing"

	"anprsec/domain"
	"anprsec/ingest/esito"
	"anprsec/store"
)

// TestNuovaSCForExpiryKeepsTheCardInUse: NUOVA_SC with motivo "scadenza"
// from the home comune's ALS requests a new card while the holder's card
// stays ATTIVA and current; asked again meanwhile it is refused
// SOSTITUZIONE_IN_CORSO; another comune cannot ask it
// (docs/rules.md#card-lifecycle).
func TestNuovaSCForExpiryKeepsTheCardInUse(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		for i := 0; i < 50; i++ { // past the serials matrixStore wrote
			if _, err := tx.Sequence("smartcard"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var before string
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(tgtActive)
		before = p.Card
		return nil
	})
	cols := []string{"Operazione", "Operatore", "Codice Fiscale", "Motivo"}
	if line := applyRow(t, c, comB, cols, []string{"NUOVA_SC", opALSOther, tgtActive, "scadenza"}); line.Code != "ALTRO_COMUNE" {
		t.Errorf("NUOVA_SC scadenza from another comune: %+v", line)
	}
	line := applyRow(t, c, comA, cols, []string{"NUOVA_SC", opALS, tgtActive, "scadenza"})
	if line.Outcome != esito.OK || line.Code != "RICHIESTA" || !strings.Contains(line.Message, "resta attiva") {
		t.Fatalf("NUOVA_SC scadenza: %+v", line)
	}
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(tgtActive)
		old, _ := tx.Card(before)
		if p.Card != before || p.NextCard == "" || old.State != domain.CardAttiva {
			t.Errorf("after NUOVA_SC scadenza: card %s (%s), next %q", p.Card, old.State, p.NextCard)
		}
		return nil
	})
	if line := applyRow(t, c, comA, cols, []string{"NUOVA_SC", opALS, tgtActive, "Scadenza vicina"}); line.Code != "SOSTITUZIONE_IN_CORSO" {
		t.Errorf("second NUOVA_SC scadenza: %+v", line)
	}
}
