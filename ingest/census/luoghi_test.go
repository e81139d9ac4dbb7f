package census_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// luoghi: the verdict expected for every row of testdata/luoghi.fods, a
// census of Misiliscemi (created in 2021) whose people were born in ceased
// comuni of several eras, in current and former foreign states and in
// comuni created after 2020, next to rows that must be refused. The codici
// fiscali of the rows that pass were computed for their names with
// censusgen.MakeCF.
var luoghi = []struct {
	key, outcome, code, inMessage string
}{
	{"Utenti:2", "OK", "CREATA", "ASC"},                     // born in Rossano (H579), merged in 2018
	{"Utenti:3", "OK", "CREATA", "ALS"},                     // born in Acquacanina (A031), merged in 2017
	{"Utenti:4", "OK", "CREATA", "ALP"},                     // born in San Pelagio (I078), a comune of 1921-1928
	{"Utenti:5", "OK", "CREATA", "OPERATORE"},               // born in Gambugliano (D902), merged in 2024
	{"Utenti:6", "OK", "CREATA", "OPERATORE"},               // born in Morocco (Z330)
	{"Utenti:7", "OK", "CREATA", "OPERATORE"},               // born in Yugoslavia (Z118) in 1975; a foreign surname
	{"Utenti:8", "OK", "CREATA", "OPERATORE"},               // born in Czechoslovakia (Z105) in 1980
	{"Utenti:9", "OK", "CREATA", "OPERATORE"},               // born in Misiliscemi (M432), created in 2021
	{"Utenti:10", "OK", "CREATA", "OPERATORE"},              // born in Bardello con Malgesso e Bregano (M433), 2023
	{"Utenti:11", "SCARTATO", "CF_LUOGO", "Z854"},           // no state has Z854
	{"Utenti:12", "SCARTATO", "CF_LUOGO", "Z118"},           // Yugoslavia no longer existed in 2006
	{"Utenti:13", "SCARTATO", "CF_LUOGO", "H579"},           // Rossano no longer existed in 2019
	{"Utenti:14", "SCARTATO", "CF_NOMINATIVO", `"Cognome"`}, // Esposito Maria with the code of Rossi Maria
	{"Utenti:15", "SCARTATO", "DATA_NASCITA", "1900"},       // 29/02/1900: 1900 was not a leap year
	{"Utenti:16", "SCARTATO", "COMUNE_CESSATO", "078157"},   // Rossano is no longer a comune
	{"Postazioni:2", "OK", "AGGIORNATA", "081025-PC-0002"},  // Misiliscemi was censused
}

func checkLuoghi(t *testing.T, h *harness, name string) {
	t.Helper()
	got := h.esito(name)
	if len(got) != len(luoghi) {
		t.Errorf("receipt has %d lines, want %d: %v", len(got), len(luoghi), got)
	}
	for _, c := range luoghi {
		g, ok := got[c.key]
		if !ok {
			t.Errorf("%s: no receipt line", c.key)
			continue
		}
		if g[0] != c.outcome || g[1] != c.code || !strings.Contains(g[2], c.inMessage) {
			t.Errorf("%s = %q, want %s %s containing %q", c.key, g, c.outcome, c.code, c.inMessage)
		}
	}
}

// TestBirthplacesThroughHistoryInALibreOfficeWorkbook ingests the
// committed testdata/luoghi.xlsx, written by LibreOffice from luoghi.fods.
func TestBirthplacesThroughHistoryInALibreOfficeWorkbook(t *testing.T) {
	h := newHarness(t)
	h.drop("testdata/luoghi.xlsx", "luoghi.xlsx")
	st := h.run()
	if st.Files != 1 || st.RowsOK != 10 || st.RowsRefused != 6 {
		t.Errorf("stats = %+v, want 1 file, 10 rows OK, 6 refused", st)
	}
	checkLuoghi(t, h, "luoghi.xlsx")
}

// TestBirthplacesThroughHistoryInAFreshLibreOfficeWorkbook converts
// testdata/luoghi.fods with the LibreOffice installed here (CI installs
// it), so the fixture is not only the committed one.
func TestBirthplacesThroughHistoryInAFreshLibreOfficeWorkbook(t *testing.T) {
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		t.Skip("LibreOffice (soffice) not installed")
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, soffice, "--headless", "-env:UserInstallation=file://"+out+"/profile", "--convert-to", "xlsx", "--outdir", out, "testdata/luoghi.fods")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, b)
	}
	h := newHarness(t)
	h.drop(filepath.Join(out, "luoghi.xlsx"), "fresh.xlsx")
	h.run()
	checkLuoghi(t, h, "fresh.xlsx")
}
