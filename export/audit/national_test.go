package audit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/export/audit"
	"anprsec/secret"
	"anprsec/store"
)

// TestManyComuniIgnoresCancelledUtenze: a person is listed as "Persona con
// utenze in molti comuni" by the comuni where they hold an utenza that is
// not cancelled: CANCELLA_UTENTE keeps the utenza as CANCELLATA
// (docs/rules.md#utenza-lifecycle), and a person with one active utenza
// and two cancelled ones works in one comune only (docs/rules.md#audit).
func TestManyComuniIgnoresCancelledUtenze(t *testing.T) {
	fx := newFixture(t)
	const cf = "CNCPLA70A01H501Q"
	oct := time.Date(2026, 10, 15, 9, 30, 0, 0, rome)
	err := fx.st.Update(func(tx *store.Tx) error {
		if err := tx.PutPerson(&domain.Person{CF: cf, Surname: "CANCELLI", Name: "PAOLO", Updated: oct}); err != nil {
			return err
		}
		for _, u := range []struct {
			istat string
			state domain.UtenzaState
		}{{"058091", domain.UtenzaAttiva}, {"001272", domain.UtenzaCancellata}, {"015146", domain.UtenzaCancellata}} {
			if err := tx.PutUtenza(&domain.Utenza{ISTAT: u.istat, CF: cf, Email: "paolo@example.it",
				Profiles: []domain.Profile{domain.Consultazione}, Environments: []domain.Environment{domain.Produzione},
				State: u.state, Created: oct, Updated: oct}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := fx.exporter(t).National(context.Background(), audit.DefaultPeriod(now, rome))
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(fx.read(t, res.XLSX)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(audit.AnomaliesSheet)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[1:] {
		if len(r) > 3 && r[0] == audit.AnomalyManyComuni && r[3] == cf {
			t.Errorf("a person with one active utenza (two cancelled) is listed as in many comuni: %q", r)
		}
	}
}

// TestExportOfEmptyStore: an empty store (before the first census) exports
// without error, nationally and per comune.
func TestExportOfEmptyStore(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{3}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fx := newFixture(t)
	e := fx.exporter(t)
	e.Store = st
	if _, err := e.National(context.Background(), audit.DefaultPeriod(now, rome)); err != nil {
		t.Errorf("National on an empty store: %v", err)
	}
	if res, err := e.Comuni(context.Background()); err != nil || res.Failed != 0 {
		t.Errorf("Comuni on an empty store: %+v, %v", res, err)
	}
}

// TestCensusedComuneThatCeasedIsAnAnomaly: a comune in the store that is no
// longer in force (Rossano, merged into Corigliano-Rossano in 2018) is
// listed among the anomalies with its successor; comuni in force are not.
func TestCensusedComuneThatCeasedIsAnAnomaly(t *testing.T) {
	fx := newFixture(t)
	if err := fx.st.Update(func(tx *store.Tx) error {
		return tx.PutComune(&domain.Comune{ISTAT: "078108", Name: "Rossano", Province: "078"})
	}); err != nil {
		t.Fatal(err)
	}
	res, err := fx.exporter(t).National(context.Background(), audit.DefaultPeriod(now, rome))
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(fx.read(t, res.XLSX)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(audit.AnomaliesSheet)
	if err != nil {
		t.Fatal(err)
	}
	var ceased []string
	for _, r := range rows[1:] {
		if len(r) > 1 && r[0] == audit.AnomalyCeased {
			ceased = append(ceased, strings.Join(r, "|"))
		}
	}
	if len(ceased) != 1 || !strings.Contains(ceased[0], "078108") || !strings.Contains(ceased[0], "ora 078157 Corigliano-Rossano") {
		t.Errorf("ceased comuni anomalies: %q, want one for 078108 naming 078157 Corigliano-Rossano", ceased)
	}
}
