package audit_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/export/audit"
	"anprsec/internal/cellsafe"
)

func TestMonthsOfDefaultPeriod(t *testing.T) {
	for _, tc := range []struct {
		now  time.Time
		from time.Time
	}{
		{now, time.Date(2026, 10, 1, 0, 0, 0, 0, rome)},
		{time.Date(2026, 1, 5, 0, 30, 0, 0, rome), time.Date(2025, 12, 1, 0, 0, 0, 0, rome)},
		{time.Date(2026, 3, 31, 23, 0, 0, 0, rome), time.Date(2026, 2, 1, 0, 0, 0, 0, rome)},
	} {
		p := audit.DefaultPeriod(tc.now, rome)
		if !p.From.Equal(tc.from) || !p.To.Equal(tc.now) {
			t.Errorf("DefaultPeriod(%v) = %v..%v, want %v..%v", tc.now, p.From, p.To, tc.from, tc.now)
		}
	}
}

// readCSV checks the BOM and the separator and returns the records.
func readCSV(t *testing.T, data []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(audit.BOM)) {
		t.Fatalf("CSV does not start with a UTF-8 BOM: %q", data[:min(len(data), 10)])
	}
	r := csv.NewReader(bytes.NewReader(data[len(audit.BOM):]))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestComuneCSV(t *testing.T) {
	fx := newFixture(t)
	files, err := fx.exporter(t).Comune(context.Background(), "058091")
	if err != nil {
		t.Fatal(err)
	}
	want := audit.ComuneFiles{
		XLSX:             "comuni/058091/report/utenti-058091-20261120.xlsx",
		UsersCSV:         "comuni/058091/report/utenti-058091-20261120.csv",
		WorkstationsCSV:  "comuni/058091/report/postazioni-058091-20261120.csv",
		InstallationsCSV: "comuni/058091/report/installazioni-058091-20261120.csv",
		Utenze:           5, Postazioni: 3,
	}
	if files != want {
		t.Fatalf("files = %+v, want %+v", files, want)
	}
	data := fx.read(t, files.UsersCSV)
	if !bytes.Contains(data, []byte("Codice Fiscale;Cognome;Nome;Profili;")) || !bytes.Contains(data, []byte("\r\n")) {
		t.Errorf("not a ';' CSV with CRLF lines:\n%s", data)
	}
	recs := readCSV(t, data)
	checks := []struct {
		row  int
		want []string
	}{
		{0, []string{audit.UsersTitle}},
		{1, []string{"Comune", "Roma (058091)"}},
		{2, []string{"Data", "20/11/2026"}},
		{3, []string{"Istruzioni", audit.Instruction}},
		{4, []string{"Profili", audit.ProfileLegend()}},
		// The blank line 6 is an empty CSV line (skipped by readers).
		{5, []string{"Codice Fiscale", "Cognome", "Nome", "Profili", "Ambiente", "Stato utenza", "Stato smart card",
			"Seriale smart card", "Email", "PEC", "Ultima modifica"}},
		// Data rows in CF order.
		{6, []string{"BNCLCU80A41H501X", "BIANCHI", "LUCIA", "ALS", "PRODUZIONE", "ATTIVA", "BLOCCATA", "SC0000002",
			"lucia@example.it", "lucia@pec.example.it", "15/10/2026"}},
		{7, []string{"GLLNNA85E50F205B", "GIALLI", "ANNA", "CONSULTAZIONE", "PRODUZIONE", "ATTIVA", "", "",
			"anna@example.it", "", "15/10/2026"}},
		{8, []string{"NRILGU90D15H501A", "'" + evilSurname, "'" + evilName, "OPERATORE", "PRODUZIONE", "BLOCCATA", "", "",
			"'" + evilEmail, "'" + evilPEC, "15/10/2026"}},
		{9, []string{"RSSMRA68A01H501Y", "ROSSI", "MARIO", "ASC", "PRODUZIONE", "ATTIVA", "ATTIVA", "SC0000001",
			"mario.rossi@example.it", "", "15/10/2026"}},
		{10, []string{"VRDGPP75C12H501Z", "VERDI", "GIUSEPPE", "ALP, OPERATORE", "PRODUZIONE", "ATTIVA", "ATTIVA", "SC0000003",
			"gv@example.it", "", "15/10/2026"}},
	}
	if len(recs) != 11 {
		t.Fatalf("%d records, want 11:\n%q", len(recs), recs)
	}
	if !bytes.Contains(data, []byte("\r\n\r\nCodice Fiscale;")) {
		t.Errorf("no blank line before the header row")
	}
	for _, c := range checks {
		if !slices.Equal(recs[c.row], c.want) {
			t.Errorf("row %d = %q\nwant     %q", c.row+1, recs[c.row], c.want)
		}
	}

	w := readCSV(t, fx.read(t, files.WorkstationsCSV))
	wantW := [][]string{
		{"Comune", "Roma (058091)"},
		{"Data", "20/11/2026"},
		{"Codice postazione", "Nome postazione", "Tipo", "Stato certificato", "Seriale certificato", "Scadenza"},
		{"058091-CO-9999", "", "Server", "RICHIESTA IN LAVORAZIONE", "", ""},
		{"058091-PC-0001", "Anagrafe 1", "Postazione", "ATTIVO", "0a1b", "30/11/2026"},
		{"058091-PC-0002", "'" + evilLabel, "Postazione", "REVOCATO", "0c2d", "20/11/2027"},
	}
	if len(w) != len(wantW) {
		t.Fatalf("workstations CSV: %q", w)
	}
	for i := range wantW {
		if !slices.Equal(w[i], wantW[i]) {
			t.Errorf("workstations row %d = %q, want %q", i+1, w[i], wantW[i])
		}
	}
}

func TestComuneXLSX(t *testing.T) {
	fx := newFixture(t)
	files, err := fx.exporter(t).Comune(context.Background(), "058091")
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(fx.read(t, files.XLSX)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{audit.UsersSheet, audit.WorkstationsSheet, audit.InstallationsSheet}) {
		t.Fatalf("sheets %q", got)
	}
	// The operator with a formula for a surname is on row 10 (header on 7).
	for _, cell := range []string{"B10", "C10", "I10", "J10"} {
		typ, err := f.GetCellType(audit.UsersSheet, cell)
		if err != nil {
			t.Fatal(err)
		}
		formula, _ := f.GetCellFormula(audit.UsersSheet, cell)
		v, _ := f.GetCellValue(audit.UsersSheet, cell)
		if typ != excelize.CellTypeInlineString || formula != "" || !cellsafe.Dangerous(v) {
			t.Errorf("%s: type %v, formula %q, value %q; want an inline string holding the formula text", cell, typ, formula, v)
		}
	}
	if v, _ := f.GetCellValue(audit.UsersSheet, "B10"); v != evilSurname {
		t.Errorf("B10 = %q, want %q", v, evilSurname)
	}
	// Dates are dates: a number with a dd/mm/yyyy format.
	raw, _ := f.GetCellValue(audit.UsersSheet, "K8", excelize.Options{RawCellValue: true})
	shown, _ := f.GetCellValue(audit.UsersSheet, "K8")
	if typ, _ := f.GetCellType(audit.UsersSheet, "K8"); typ == excelize.CellTypeInlineString || shown != "15/10/2026" || raw == shown {
		t.Errorf("K8: raw %q shown %q; want a date serial shown as 15/10/2026", raw, shown)
	}
	panes, err := f.GetPanes(audit.UsersSheet)
	if err != nil || !panes.Freeze || panes.YSplit != 7 {
		t.Errorf("panes %+v, %v; want frozen under row 7", panes, err)
	}
	tables, err := f.GetTables(audit.UsersSheet)
	if err != nil || len(tables) != 1 || tables[0].Range != "A7:K12" {
		t.Errorf("tables %+v, %v; want one filtered table A7:K12", tables, err)
	}
	if w, _ := f.GetColWidth(audit.UsersSheet, "A"); w < 15 {
		t.Errorf("column A width %v", w)
	}
	if v, _ := f.GetCellValue(audit.WorkstationsSheet, "B7"); v != evilLabel {
		t.Errorf("Postazioni B7 = %q, want %q", v, evilLabel)
	}
}

func TestComuneErrors(t *testing.T) {
	fx := newFixture(t)
	_, err := fx.exporter(t).Comune(context.Background(), "999999")
	if !errors.Is(err, audit.ErrUnknownComune) {
		t.Fatalf("err = %v, want ErrUnknownComune", err)
	}
	entries, _ := os.ReadDir(fx.out)
	if len(entries) != 0 {
		t.Errorf("files written for an unknown comune: %v", entries)
	}
}

func TestComuniFlat(t *testing.T) {
	fx := newFixture(t)
	e := fx.exporter(t)
	e.Flat = true
	res, err := e.Comuni(context.Background())
	if err != nil || res.Comuni != 4 || res.Failed != 0 || res.Err != nil {
		t.Fatalf("Comuni: %+v, %v", res, err)
	}
	var names []string
	entries, _ := os.ReadDir(fx.out)
	for _, en := range entries {
		names = append(names, en.Name())
	}
	for _, code := range []string{"001272", "015146", "058091", "063049"} {
		for _, n := range []string{audit.UsersName(code, "20261120", ".xlsx"), audit.UsersName(code, "20261120", ".csv"),
			audit.WorkstationsName(code, "20261120"), audit.InstallationsName(code, "20261120")} {
			if !slices.Contains(names, n) {
				t.Errorf("%s missing in %v", n, names)
			}
		}
	}
	if len(names) != 16 {
		t.Errorf("%d files, want 16 (no temporary file left): %v", len(names), names)
	}
	// A comune without utenze still gets a list: header only.
	recs := readCSV(t, fx.read(t, audit.UsersName("063049", "20261120", ".csv")))
	if len(recs) != 6 || recs[5][0] != "Codice Fiscale" {
		t.Errorf("empty comune: %q", recs)
	}
}

type anomaly struct{ kind, istat, key string }

func TestNational(t *testing.T) {
	fx := newFixture(t)
	e := fx.exporter(t)
	res, err := e.National(context.Background(), audit.DefaultPeriod(now, rome))
	if err != nil {
		t.Fatal(err)
	}
	if res.XLSX != "sicurezza/report/sicurezza-20261120.xlsx" || res.Utenze != 9 || res.Storico != 2 || res.Truncated ||
		!slices.Equal(res.Monthly, []string{"sicurezza/report/mensile-2026-10.csv", "sicurezza/report/mensile-2026-11.csv"}) {
		t.Errorf("result %+v", res)
	}
	data := fx.read(t, res.XLSX)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	charts := 0
	for _, zf := range zr.File {
		if strings.HasPrefix(zf.Name, "xl/charts/chart") && strings.HasSuffix(zf.Name, ".xml") {
			charts++
		}
	}
	if charts != 3 {
		t.Errorf("%d charts in the workbook, want 3", charts)
	}
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{audit.SummarySheet, audit.AnomaliesSheet, audit.NationalUsers, audit.HistorySheet, audit.CampaignsSheet, audit.NoticesSheet, audit.RevocationsSheet}) {
		t.Fatalf("sheets %q", got)
	}

	// Summary figures.
	for cell, want := range map[string]string{"B7": "4", "B8": "9", "B9": "7", "B10": "3", "B11": "4", "B12": "10",
		"A15": "ASC", "B15": "2", "A17": "ALS", "B17": "2", "A20": "CONSULTAZIONE", "B20": "2"} {
		if v, _ := f.GetCellValue(audit.SummarySheet, cell); v != want {
			t.Errorf("%s!%s = %q, want %q", audit.SummarySheet, cell, v, want)
		}
	}

	rows, err := f.GetRows(audit.AnomaliesSheet)
	if err != nil {
		t.Fatal(err)
	}
	var got []anomaly
	var refused []string
	for _, r := range rows[1:] {
		r = append(r, make([]string, 7)...)
		got = append(got, anomaly{r[0], r[1], r[3]})
		if r[0] == audit.AnomalyRefused {
			refused = r[:7]
		}
	}
	want := []anomaly{
		{audit.AnomalyCardExpiry, "058091", "VRDGPP75C12H501Z"},
		{audit.AnomalyCertExpiry, "058091", "058091-PC-0001"},
		{audit.AnomalyAdminCard, "001272", "NREFBA60B02L219D"},
		{audit.AnomalyMandatory, "001272", ""},
		{audit.AnomalyMandatory, "015146", ""},
		{audit.AnomalyAdminCard, "058091", "BNCLCU80A41H501X"},
		{audit.AnomalyMandatory, "058091", ""},
		{audit.AnomalyMandatory, "063049", ""},
		{audit.AnomalyManyComuni, "001272", "GLLNNA85E50F205B"},
		{audit.AnomalyRefused, "058091", "BNCLCU80A41H501X"},
	}
	// Within the walk of the utenze, the admin-card line of a comune comes
	// before its mandatory-profile line.
	if !slices.Equal(got, want) {
		t.Errorf("anomalies:\n got %q\nwant %q", got, want)
	}
	if refused == nil || refused[2] != "Roma" || refused[4] != "BIANCHI LUCIA" || !strings.Contains(refused[5], "non ha il profilo ALP") {
		t.Errorf("refused request line %q", refused)
	}
	for _, r := range rows[1:] {
		if r[0] == audit.AnomalyMandatory && r[1] == "058091" && !strings.Contains(r[5], "nessun ALS ") {
			t.Errorf("Roma misses only an ALS with an active card: %q", r)
		}
		if r[0] == audit.AnomalyMandatory && r[1] == "001272" && !strings.Contains(r[5], "nessun ASC, ALS, ALP ") {
			t.Errorf("Torino misses all three: %q", r)
		}
	}

	users, _ := f.GetRows(audit.NationalUsers)
	if len(users) != 10 || users[0][0] != "Codice ISTAT" || users[1][0] != "001272" || users[1][1] != "Torino" {
		t.Errorf("national users sheet: %q", users)
	}
	hist, _ := f.GetRows(audit.HistorySheet)
	if len(hist) != 3 || hist[1][1] != "utenza.crea" || hist[2][1] != audit.RefusedAction || hist[2][0] != "20/11/2026 09:00:00" {
		t.Errorf("history sheet: %q", hist)
	}

	for _, tc := range []struct {
		name string
		want [][]string
	}{
		{res.Monthly[0], [][]string{
			{"Mese", "Codice ISTAT", "Comune", "Certificati emessi", "Certificati revocati", "Smart card attivate"},
			{"2026-10", "058091", "Roma", "1", "1", "2"},
		}},
		{res.Monthly[1], [][]string{
			{"Mese", "Codice ISTAT", "Comune", "Certificati emessi", "Certificati revocati", "Smart card attivate"},
			{"2026-11", "058091", "Roma", "0", "0", "1"},
		}},
	} {
		recs := readCSV(t, fx.read(t, tc.name))
		if !slices.EqualFunc(recs, tc.want, slices.Equal) {
			t.Errorf("%s = %q, want %q", tc.name, recs, tc.want)
		}
	}
}

func TestNationalPeriodFilters(t *testing.T) {
	fx := newFixture(t)
	// A period in the past: no history, no monthly figures, but the same
	// anomalies of the present state (minus the refused request).
	p := audit.Period{From: time.Date(2026, 8, 1, 0, 0, 0, 0, rome), To: time.Date(2026, 9, 1, 0, 0, 0, 0, rome)}
	res, err := fx.exporter(t).National(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Storico != 0 || res.Anomalie != 9 || len(res.Monthly) != 1 {
		t.Fatalf("result %+v", res)
	}
	recs := readCSV(t, fx.read(t, res.Monthly[0]))
	if len(recs) != 1 {
		t.Errorf("August figures: %q", recs)
	}
}

var _ = filepath.Join

// TestExportDoesNotFollowPlantedTempSymlink: an export never writes
// through a symlink a party planted in its own folder. The temporary name
// of an export (.<name>.tmp) is predictable, and a comune can write its own
// folder over SFTP; a symlink
// comuni/058091/report/.utenti-058091-<day>.csv.tmp -> ../../../crl/<file>
// leaves the CRL (and every other comune's files) as they were
// (docs/rules.md#drops-and-receipts).
func TestExportDoesNotFollowPlantedTempSymlink(t *testing.T) {
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
