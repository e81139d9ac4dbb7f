package audit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/export/audit"
	"anprsec/secret"
	"anprsec/store"
)

// A person whose utenze in two of three comuni were cancelled
// (CANCELLA_UTENTE keeps the utenza as CANCELLATA and its by-CF index,
// jobs/richieste.go) has utenze in one comune only, yet the national
// workbook lists them as "Persona con utenze in molti comuni" (issue 6:
// "persons with utenze in many comuni"): store.ComuniByPerson counts the
// cancelled ones.
func TestReviewManyComuniCountsCancelledUtenze(t *testing.T) {
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

// An empty store (before the first census) exports without error.
func TestReviewNationalEmptyStore(t *testing.T) {
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

// The drop's Write (used for every export) opens the temporary name
// .<name>.tmp with O_CREATE|O_TRUNC through os.Root, which follows a
// symlink that stays inside the drop. The temporary name is predictable,
// so a party that can write its own folder (a comune over SFTP: issue 7
// lists "symlinks inside the drop" among hostile inputs) plants
// comuni/058091/report/.utenti-058091-<day>.csv.tmp -> ../../../crl/<file>
// and the weekly export overwrites the CRL (or another comune's files)
// with Roma's user list.
func TestReviewExportFollowsPlantedTempSymlink(t *testing.T) {
	fx := newFixture(t)
	crl := filepath.Join(fx.out, "crl", "anprsec.crl")
	if err := os.MkdirAll(filepath.Dir(crl), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crl, []byte("CRL"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := filepath.Join(fx.out, "comuni", "058091", "report")
	if err := os.MkdirAll(rep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../crl/anprsec.crl", filepath.Join(rep, ".utenti-058091-20261120.csv.tmp")); err != nil {
		t.Fatal(err)
	}
	_, err := fx.exporter(t).Comune(context.Background(), "058091")
	got, _ := os.ReadFile(crl)
	if string(got) != "CRL" {
		t.Errorf("crl/anprsec.crl overwritten through a symlink planted in comuni/058091/report (export err %v): now %d bytes starting %q",
			err, len(got), got[:min(len(got), 40)])
	}
}
