package audit_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/xuri/excelize/v2"

	"anprsec/export/audit"
	"anprsec/internal/cellsafe"
	"anprsec/lifecycle"
	"anprsec/store"
)

// TestHostileInstallationIsTextInTheRegister: an ALP who declares an
// installation whose host, address, office and note are formulas gets them
// into the comune's register as text: inline strings in the Installazioni
// sheet, never formulas, and an apostrophe before each in the CSV.
func TestHostileInstallationIsTextInTheRegister(t *testing.T) {
	fx := newFixture(t)
	evil := lifecycle.InstallationRequest{ISTAT: "058091", Code: "058091-PC-0001",
		Host: `=HYPERLINK("http://x";"clic")`, Address: "+39 06 1234", Office: "@SOMMA(1)", Note: "-2+3"}
	if err := fx.st.Update(func(tx *store.Tx) error {
		_, _, ref, err := lifecycle.RegisterInstallationTx(tx, store.Source{Actor: "VRDGPP75C12H501Z"}, evil)
		if ref != nil {
			t.Fatalf("refused: %v", ref)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	files, err := fx.exporter(t).Comune(context.Background(), "058091")
	if err != nil {
		t.Fatal(err)
	}
	if files.Installazioni != 1 {
		t.Fatalf("%d installations, want 1", files.Installazioni)
	}
	vals := []string{evil.Host, evil.Address, evil.Office, evil.Note}
	recs := readCSV(t, fx.read(t, files.InstallationsCSV))
	found := false
	for _, r := range recs {
		if len(r) > 5 && r[0] == evil.Code {
			found = true
			want := []string{"'" + vals[0], "'" + vals[1], "'" + vals[2], "'" + vals[3]}
			if got := r[2:6]; !slices.Equal(got, want) {
				t.Errorf("CSV row %q, want %q after code and serial", r, want)
			}
		}
	}
	if !found {
		t.Fatalf("no row of %s in %q", evil.Code, recs)
	}
	f, err := excelize.OpenReader(bytes.NewReader(fx.read(t, files.XLSX)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(audit.InstallationsSheet)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if len(r) == 0 || r[0] != evil.Code {
			continue
		}
		for j, col := range []string{"C", "D", "E", "F"} {
			cell := col + strconv.Itoa(i+1)
			typ, _ := f.GetCellType(audit.InstallationsSheet, cell)
			formula, _ := f.GetCellFormula(audit.InstallationsSheet, cell)
			v, _ := f.GetCellValue(audit.InstallationsSheet, cell)
			if typ != excelize.CellTypeInlineString || formula != "" || v != vals[j] || !cellsafe.Dangerous(v) {
				t.Errorf("%s: type %v, formula %q, value %q; want the inline text %q", cell, typ, formula, v, vals[j])
			}
		}
		return
	}
	t.Fatalf("no row of %s in the sheet: %q", evil.Code, rows)
}
