package audit_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"anprsec/export/audit"
	"anprsec/internal/cellsafe"
)

// soffice converts files with LibreOffice headless into outDir, using a
// private profile so that parallel runs do not clash.
func soffice(t *testing.T, outDir, filter string, files ...string) {
	t.Helper()
	bin, err := exec.LookPath("soffice")
	if err != nil {
		t.Skip("LibreOffice (soffice) is not installed")
	}
	profile := "file://" + filepath.ToSlash(t.TempDir())
	args := append([]string{"--headless", "--norestore", "-env:UserInstallation=" + profile,
		"--convert-to", filter, "--outdir", outDir}, files...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("soffice: %v\n%s", err, out)
	}
}

// loCSV is LibreOffice's CSV filter: ';', '"', UTF-8, cells as shown,
// every sheet to its own <file>-<sheet>.csv.
const loCSV = "csv:Text - txt - csv (StarCalc):59,34,76,1,,0,false,true,true,false,false,-1"

// records parses a ';' CSV, without BOM, trailing empty fields and blank
// lines; with unneutralize, the apostrophe added by Neutralize is removed
// (LibreOffice shows the text cell itself).
func records(t *testing.T, path string, unneutralize bool) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.TrimPrefix(data, []byte(audit.BOM))
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out [][]string
	for _, rec := range recs {
		for len(rec) > 0 && rec[len(rec)-1] == "" {
			rec = rec[:len(rec)-1]
		}
		if len(rec) == 0 {
			continue
		}
		if unneutralize {
			for i, f := range rec {
				if strings.HasPrefix(f, "'") && cellsafe.Dangerous(f[1:]) {
					rec[i] = f[1:]
				}
			}
		}
		out = append(out, rec)
	}
	return out
}

func TestLibreOffice(t *testing.T) {
	if _, err := exec.LookPath("soffice"); err != nil {
		t.Skip("LibreOffice (soffice) is not installed")
	}
	fx := newFixture(t)
	e := fx.exporter(t)
	e.Flat = true
	ctx := context.Background()
	cf, err := e.Comune(ctx, "058091")
	if err != nil {
		t.Fatal(err)
	}
	nf, err := e.National(ctx, audit.DefaultPeriod(now, rome))
	if err != nil {
		t.Fatal(err)
	}
	conv := t.TempDir()
	soffice(t, conv, loCSV, filepath.Join(fx.out, cf.XLSX), filepath.Join(fx.out, nf.XLSX))

	// The comune's workbook has the content of its CSVs.
	base := strings.TrimSuffix(cf.XLSX, ".xlsx")
	for _, tc := range []struct{ sheet, csv string }{
		{audit.UsersSheet, cf.UsersCSV},
		{audit.WorkstationsSheet, cf.WorkstationsCSV},
		{audit.InstallationsSheet, cf.InstallationsCSV},
	} {
		lo := records(t, filepath.Join(conv, base+"-"+tc.sheet+".csv"), false)
		ours := records(t, filepath.Join(fx.out, tc.csv), true)
		if !slices.EqualFunc(lo, ours, slices.Equal) {
			t.Errorf("sheet %s as LibreOffice reads it differs from %s:\nLibreOffice %q\nCSV         %q", tc.sheet, tc.csv, lo, ours)
		}
	}
	// The injected formulas arrive as text, not as computed values.
	users := records(t, filepath.Join(conv, base+"-"+audit.UsersSheet+".csv"), false)
	if !slices.ContainsFunc(users, func(r []string) bool {
		return len(r) > 9 && r[1] == evilSurname && r[2] == evilName && r[8] == evilEmail && r[9] == evilPEC
	}) {
		t.Errorf("formula-like names not kept as text by LibreOffice: %q", users)
	}
	posts := records(t, filepath.Join(conv, base+"-"+audit.WorkstationsSheet+".csv"), false)
	if !slices.ContainsFunc(posts, func(r []string) bool { return len(r) > 1 && r[1] == evilLabel }) {
		t.Errorf("label %q not kept as text by LibreOffice: %q", evilLabel, posts)
	}

	// The national workbook opens: its summary and anomalies.
	nbase := strings.TrimSuffix(nf.XLSX, ".xlsx")
	sum := records(t, filepath.Join(conv, nbase+"-"+audit.SummarySheet+".csv"), false)
	for _, want := range [][]string{{"Comuni", "4"}, {"Utenze", "9"}, {"Anomalie", "10"}, {"ALS", "2", "Amministratore Locale della Sicurezza"}} {
		if !slices.ContainsFunc(sum, func(r []string) bool { return slices.Equal(r, want) }) {
			t.Errorf("summary as LibreOffice reads it lacks %q: %q", want, sum)
		}
	}
	anom := records(t, filepath.Join(conv, nbase+"-"+audit.AnomaliesSheet+".csv"), false)
	if len(anom) != 11 || !slices.ContainsFunc(anom, func(r []string) bool {
		return r[0] == audit.AnomalyRefused && r[3] == "BNCLCU80A41H501X" && r[6] == "20/11/2026 09:00:00"
	}) {
		t.Errorf("anomalies as LibreOffice reads them: %q", anom)
	}
	// The revocation sheet has the lines of the monthly revocation lists.
	revs := records(t, filepath.Join(conv, nbase+"-"+audit.RevocationsSheet+".csv"), false)
	var monthly [][]string
	for i, name := range nf.Revocations {
		recs := records(t, filepath.Join(fx.out, name), true)
		if i > 0 {
			recs = recs[1:] // one header
		}
		monthly = append(monthly, recs...)
	}
	if len(revs) < 2 || !slices.EqualFunc(revs, monthly, slices.Equal) {
		t.Errorf("sheet %s as LibreOffice reads it differs from %v:\nLibreOffice %q\nCSV         %q", audit.RevocationsSheet, nf.Revocations, revs, monthly)
	}
	hist := records(t, filepath.Join(conv, nbase+"-"+audit.HistorySheet+".csv"), false)
	if len(hist) != 3 {
		t.Errorf("history as LibreOffice reads it: %q", hist)
	}

	// LibreOffice imports the three charts: converted to ODS, each is an
	// embedded chart object.
	ods := t.TempDir()
	soffice(t, ods, "ods", filepath.Join(fx.out, nf.XLSX))
	zr, err := zip.OpenReader(filepath.Join(ods, nbase+".ods"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	charts := 0
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "Object ") || !strings.HasSuffix(f.Name, "/content.xml") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		if bytes.Contains(b.Bytes(), []byte("<chart:chart")) {
			charts++
		}
	}
	if charts != 3 {
		t.Errorf("LibreOffice found %d charts in the national workbook, want 3", charts)
	}
}
