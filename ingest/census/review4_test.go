package census_test

import (
	"path/filepath"
	"testing"
)

// TestReview4BlankRowWithSpaceRightOfHeader: a row whose only content is
// blank (a space) in a cell right of the header is a blank row, skipped,
// as readSheet's doc says ("fn is called for every non-blank data row")
// and as the census did when it read through excelize (blank() trims).
//
// ingest/census/census.go readSheet skips a row only when
// `blank(cells) && extra == 0`: ingest/xlsx's Rows.Extra reports any
// non-empty value right of MaxColumns, a space included, so such a row
// becomes a data row and the receipt gets a SCARTATO line (missing
// ISTAT/CF...) for a row nobody filled in. ingest/table checks
// strings.TrimSpace(extraVal) for the same case; the census should too.
func TestReview4BlankRowWithSpaceRightOfHeader(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	asc := []any{"058091", "Roma", "RSSMRA68A01H501Y", "Rossi", "Mario", "M", "01/01/1968", "mario@example.it", "", "ASC", "SI", "PRODUZIONE"}
	als := []any{"058091", "Roma", "VRDGPP80A01H501U", "Verdi", "Giuseppe", "M", "01/01/1980", "giuseppe@example.it", "", "ALS", "SI", "PRODUZIONE"}
	alp := []any{"058091", "Roma", "GLLSRA82E50H501I", "Galli", "Sara", "F", "10/05/1982", "sara@example.it", "", "ALP", "SI", "PRODUZIONE"}
	// Row 5: twelve empty cells, then a space in column N (right of the
	// twelve header columns), as a stray keystroke leaves it.
	stray := []any{"", "", "", "", "", "", "", "", "", "", "", "", "", " "}
	writeWorkbook(t, filepath.Join(dir, "s.xlsx"), [][]any{asc, als, alp, stray}, [][]any{{"058091", 1, "NO"}})
	h.drop(filepath.Join(dir, "s.xlsx"), "s.xlsx")
	h.run()
	got := h.esito("s.xlsx")
	if g, ok := got["Utenti:5"]; ok {
		t.Errorf("blank row 5 (a space in column N only) has a receipt line %q; want it skipped as blank", g)
	}
	for _, k := range []string{"Utenti:2", "Utenti:3", "Utenti:4"} {
		if g := got[k]; g == nil || g[0] != "OK" {
			t.Errorf("%s = %q, want OK", k, g)
		}
	}
}
