package census

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Limits of what a workbook may expand to when opened (zip bombs).
const (
	unzipSizeLimit    = 1 << 30  // whole workbook, uncompressed
	unzipXMLSizeLimit = 16 << 20 // a bigger sheet is streamed from a temporary file
)

// openWorkbook opens a workbook for streaming raw values.
func openWorkbook(path string) (*excelize.File, error) {
	return excelize.OpenFile(path, excelize.Options{
		RawCellValue:      true,
		UnzipSizeLimit:    unzipSizeLimit,
		UnzipXMLSizeLimit: unzipXMLSizeLimit,
	})
}

// FoldHeader normalizes a header for matching: lower case, accents and
// punctuation removed, blanks collapsed ("Data di Nascita " = "data di nascita").
func FoldHeader(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
		s, _, _ = transform.String(t, s)
	}
	b := strings.Builder{}
	b.Grow(len(s))
	space := false
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		default:
			space = true
		}
	}
	return b.String()
}

// findSheet returns the workbook's sheet named like want (case and accents ignored).
func findSheet(f *excelize.File, want string) (string, bool) {
	for _, name := range f.GetSheetList() {
		if FoldHeader(name) == FoldHeader(want) {
			return name, true
		}
	}
	return "", false
}

// header maps column names to indexes.
type header struct {
	index map[string]int // folded name -> column index
	names []string       // canonical names, for messages
}

// colLetter names a column like a spreadsheet does: 0 -> A, 26 -> AA.
func colLetter(i int) string {
	s, _ := excelize.ColumnNumberToName(i + 1)
	return s
}

// parseHeader finds the required columns (and optional ones) in a header row.
func parseHeader(cells []string, required, optional []string) (*header, error) {
	h := &header{index: map[string]int{}}
	seen := map[string]int{}
	for i, c := range cells {
		k := FoldHeader(c)
		if k == "" {
			continue
		}
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("la colonna %q compare due volte (colonne %s e %s)", strings.TrimSpace(c), colLetter(j), colLetter(i))
		}
		seen[k] = i
	}
	var missing []string
	for _, name := range append(append([]string{}, required...), optional...) {
		if i, ok := seen[FoldHeader(name)]; ok {
			h.index[name] = i
		}
	}
	for _, name := range required {
		if _, ok := h.index[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("intestazione: mancano le colonne %s", strings.Join(quoteAll(missing), ", "))
	}
	return h, nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// cell returns the trimmed value of a named column in a row.
func (h *header) cell(row []string, name string) string {
	i, ok := h.index[name]
	if !ok || i >= len(row) {
		return ""
	}
	return strings.TrimSpace(row[i])
}

// where names a column for a message: `colonna "Codice Fiscale" (C)`.
func (h *header) where(name string) string {
	if i, ok := h.index[name]; ok {
		return fmt.Sprintf("colonna %q (%s)", name, colLetter(i))
	}
	return fmt.Sprintf("colonna %q", name)
}

func blank(row []string) bool {
	for _, c := range row {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}
