package esito_test

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"anprsec/ingest/esito"
	"anprsec/internal/cellsafe"
	"anprsec/internal/clip"
)

// FuzzAppend: whatever a file's cells or a reader's messages hold, a
// receipt line is one ';' CSV record of five valid UTF-8 fields that reads
// back as written (bounded by its field's limit, then neutralized), and no
// field a spreadsheet would take for a formula.
func FuzzAppend(f *testing.F) {
	f.Add("Utenti", 2, "OK", "CREATA", "utenza creata, profili ASC")
	f.Add("=Utenti", -1, "SCARTATO", "+CF", "=HYPERLINK(\"http://x\";\"clic\")")
	f.Add("a;b", 0, "\"", "\r\n", "riga 1\nriga 2\r\n\"citato\"; fine")
	f.Add("\xff\xfe", 1048576, "\t", "@", "\\.")
	f.Add(" foglio", 3, "OK", "-", "Forl\xec")
	f.Fuzz(func(t *testing.T, sheet string, row int, outcome, code, msg string) {
		var buf bytes.Buffer
		esito.Append(&buf, esito.Line{Sheet: sheet, Row: row, Outcome: outcome, Code: code, Message: msg})
		if !utf8.Valid(buf.Bytes()) {
			t.Fatalf("not UTF-8: %q", buf.Bytes())
		}
		r := csv.NewReader(&buf)
		r.Comma = ';'
		recs, err := r.ReadAll()
		if err != nil || len(recs) != 1 || len(recs[0]) != 5 {
			t.Fatalf("line %q reads as %q, %v", buf.String(), recs, err)
		}
		// encoding/csv turns \r\n inside a quoted field into \n.
		norm := func(s string, max int) string {
			return strings.ReplaceAll(cellsafe.Neutralize(strings.ToValidUTF8(clip.String(s, max), "\uFFFD")), "\r\n", "\n")
		}
		want := []string{norm(sheet, esito.MaxSheet), strconv.Itoa(row), norm(outcome, esito.MaxCode), norm(code, esito.MaxCode), norm(msg, esito.MaxMessage)}
		for i, got := range recs[0] {
			if got != want[i] {
				t.Errorf("field %d = %q, want %q", i, got, want[i])
			}
			if i != 1 && got != "" && strings.ContainsRune("=+-@\t\r", rune(got[0])) {
				t.Errorf("field %d %q starts like a formula", i, got)
			}
		}
	})
}
