package table_test

import (
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"anprsec/ingest/table"
)

// TestReview4XLSXValueRightOfHeaderAfterSpace: a row with a value right of
// the header is refused on its row (CELLA_FUORI_INTESTAZIONE), whatever
// blank cells stand between the header and that value.
//
// ingest/table/xlsx.go keeps the cells up to one column right of the
// header and asks Rows.Extra for the rest; Extra reports only the FIRST
// non-empty value further right. When that first value is a space (column
// G here) the check `strings.TrimSpace(extraVal) != ""` passes, and the
// real value in column H is dropped without a word: the row is accepted
// as if H were empty. Before the change (excelize: every cell of the row
// went through addRow) the row was refused naming column H. Extra should
// report the first non-blank value (or the caller must not stop at a
// blank one).
func TestReview4XLSXValueRightOfHeaderAfterSpace(t *testing.T) {
	data := workbook(t, func(f *excelize.File) {
		put(f, "Sheet1", 1, hdrCells...)
		put(f, "Sheet1", 2, "058091", "SC0001", "RSSMRA68A01H501Y", "14/03/2025", "CCCFBA85D03L219P")
		must(f.SetCellStr("Sheet1", "G2", " "))
		must(f.SetCellStr("Sheet1", "H2", "lontano"))
	})
	tb, err := table.Open("m.xlsx", data, table.Options{Required: []string{"Codice ISTAT"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(tb.Rows))
	}
	r := tb.Rows[0]
	if r.Err == nil || r.Err.Code != table.CodeExtraCell || !strings.Contains(r.Err.Message, "colonna H") {
		t.Errorf("row 2 with \"lontano\" in column H (a space in G): error %+v, want CELLA_FUORI_INTESTAZIONE naming column H", r.Err)
	}
}
