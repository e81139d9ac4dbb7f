package xlsx

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLibreOfficeWorkbook: a workbook saved by LibreOffice Calc (another
// writer than excelize: its own namespaces, row attributes, shared
// strings, styles) reads the same with this package as with excelize. The
// input is the excelize-made richBook re-saved by LibreOffice, and a CSV
// opened and saved as .xlsx, as an office would make a census.
func TestLibreOfficeWorkbook(t *testing.T) {
	bin, err := exec.LookPath("soffice")
	if err != nil {
		t.Skip("LibreOffice (soffice) is not installed")
	}
	dir := t.TempDir()
	csv := filepath.Join(dir, "censimento.csv")
	lines := []string{
		"Codice ISTAT;Cognome;Nome;Data di nascita;Email;Note",
		"058091;D'Annunzio;Gabriele;12/03/1963;g.dannunzio@example.it;àèìòù & <x>",
		"058091;Rossi;Maria;01/01/1970;;",
		";;;;;",
		"001272;Bianchi;Luca;31/12/1999;l.bianchi@example.it;=1+1",
	}
	if err := os.WriteFile(csv, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rich := richBook(t, dir)
	os.Rename(rich, filepath.Join(dir, "rich-in.xlsx"))
	out := filepath.Join(dir, "lo")
	profile := "file://" + filepath.ToSlash(t.TempDir())
	// CSV import: ';', UTF-8, first column as text (ISTAT codes keep their zeros).
	cmd := exec.Command(bin, "--headless", "--norestore", "-env:UserInstallation="+profile,
		"--infilter=CSV:59,34,76,1,1/2", "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", out,
		csv, filepath.Join(dir, "rich-in.xlsx"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, b)
	}
	for _, tc := range []struct{ file, sheet string }{
		{filepath.Join(out, "censimento.xlsx"), "censimento"},
		{filepath.Join(out, "rich-in.xlsx"), "Sheet1"},
	} {
		want, err := excelizeRows(t, tc.file, tc.sheet)
		if err != nil {
			t.Fatalf("%s: excelize: %v", filepath.Base(tc.file), err)
		}
		got, err := ourRows(t, tc.file, tc.sheet)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(tc.file), err)
		}
		t.Logf("%s: %d rows, first %v", filepath.Base(tc.file), len(got), got[0])
		if len(want) < 3 {
			t.Fatalf("%s: excelize read only %v", filepath.Base(tc.file), want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", filepath.Base(tc.file), got, want)
		}
	}
}
