package census

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xuri/excelize/v2"

	"anprsec/ingest/table"
	"anprsec/ingest/xlsx"
)

// unzipSizeLimit bounds what a workbook may expand to (zip bombs): the
// whole workbook, uncompressed (drop.max_file_size is 64 MiB; a real
// workbook expands about 10×).
const unzipSizeLimit = 256 << 20

// errUnzipSize is the error of a workbook that expands beyond unzipSizeLimit.
var errUnzipSize = errors.New("il contenuto decompresso supera il limite di dimensione")

// openWorkbook opens a workbook for streaming raw values (ingest/xlsx).
// The sizes its zip declares are summed first and refused above
// unzipSizeLimit, before anything is inflated (archive/zip refuses a part
// that expands beyond its declared size, so the declared sizes bound the
// rest).
func openWorkbook(path string) (*xlsx.Workbook, error) {
	wb, err := xlsx.Open(path, xlsx.Options{MaxUnzipped: unzipSizeLimit})
	if errors.Is(err, xlsx.ErrTooBig) {
		return nil, errUnzipSize
	}
	return wb, err
}

// Magic numbers of what is dropped as a workbook.
var (
	magicOLE = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1} // .xls, or an encrypted .xlsx
	// encryptedPackage is the stream of an encrypted OOXML workbook inside
	// its OLE compound file, in UTF-16LE as stored there.
	encryptedPackage = []byte("E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00P\x00a\x00c\x00k\x00a\x00g\x00e\x00")
)

// workbookError explains why a workbook could not be opened: the code and
// message of the receipt's riga-0 line (codes as ingest/table's).
func workbookError(path string, err error) (code, msg string) {
	head := make([]byte, 8)
	if f, oerr := os.Open(path); oerr == nil {
		io.ReadFull(f, head)
		f.Close()
	}
	switch {
	case errors.Is(err, errUnzipSize), strings.Contains(err.Error(), "unzip size exceeds"):
		return "TROPPO_GRANDE", fmt.Sprintf("la cartella di lavoro decompressa supera %d MB (archivio sospetto o troppo grande): dividerla in più file", unzipSizeLimit>>20)
	case bytes.Equal(head, magicOLE):
		if data, rerr := os.ReadFile(path); rerr == nil && bytes.Contains(data, encryptedPackage) {
			return "FILE_PROTETTO", "la cartella di lavoro è protetta da password (cifrata) e non può essere letta: salvarla senza password di apertura"
		}
		return "FILE_ILLEGGIBILE", "il file è in formato Excel 97-2003 (.xls), non .xlsx: salvarlo come \"Cartella di lavoro di Excel (.xlsx)\""
	}
	return "FILE_ILLEGGIBILE", strings.ToValidUTF8("il file non è una cartella di lavoro .xlsx leggibile: "+err.Error(), "\uFFFD")
}

// FoldHeader normalizes a header for matching: lower case, accents and
// punctuation removed, blanks collapsed ("Data di Nascita " = "data di
// nascita"); the same fold as the other drop readers (table.FoldHeader).
func FoldHeader(s string) string { return table.FoldHeader(s) }

// findSheet returns the workbook's sheet named like want (case and accents ignored).
func findSheet(f *xlsx.Workbook, want string) (string, bool) {
	for _, name := range f.SheetNames() {
		if FoldHeader(name) == FoldHeader(want) {
			return name, true
		}
	}
	return "", false
}

// header maps column names to indexes.
type header struct {
	index map[string]int // folded name -> column index
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
