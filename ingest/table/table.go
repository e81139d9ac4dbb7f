// Package table reads "header row + data rows" tables from the files that
// parties drop: CSV (any separator among ';' ',' and tab, UTF-8 or
// Windows-1252) or xlsx workbooks. It is shared by the readers of
// prefettura delivery manifests and console requests.
//
// A file is read whole by Open (files are at most tens of MB): every problem
// that makes the whole file unusable is a *FileError, with a Code for the
// receipt's riga-0 line; problems of a single row are a *RowError on that
// Row, and the caller writes them as SCARTATO lines.
//
// Behaviours:
//   - the header row is the first non-blank row; columns are matched with
//     FoldHeader (case, accents, punctuation and extra blanks ignored) and
//     may be in any order; a missing required column, or a known column
//     (required or optional) that appears twice, refuses the file; other
//     columns are ignored and listed in Table.Unknown;
//   - blank rows (every cell empty or blanks) are skipped anywhere;
//   - a row with fewer cells than the header has the missing ones empty;
//     a non-blank cell to the right of the last header column is a row
//     error (CELLA_FUORI_INTESTAZIONE): in a CSV it almost always means an
//     unquoted separator inside a value shifted the row; blank ones are
//     ignored;
//   - a cell longer than Options.MaxCell characters is a row error
//     (VALORE_TROPPO_LUNGO);
//   - Row.Line is the spreadsheet's own row number (xlsx) or the physical
//     line where the CSV record starts, counting the file's first line as 1
//     (a quoted value spanning lines moves the next record's number on);
//   - values are raw: an xlsx number is its stored text ("58091", "45000"
//     for a date: see Date), a formula cell is its cached value (never
//     evaluated); Row.Get trims blanks.
//   - more than Options.MaxRows data rows refuse the file (TROPPE_RIGHE:
//     a CSV with the count; a sheet as soon as the cap is passed).
package table

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Codes of a *FileError, used as the code of the receipt's riga-0 line.
const (
	CodeFormat    = "FORMATO"         // not a CSV/xlsx, or unreadable as one (binary, bad quoting, damaged zip, .xls)
	CodeProtected = "FILE_PROTETTO"   // password-protected (encrypted) workbook
	CodeTooBig    = "TROPPO_GRANDE"   // the workbook expands beyond the zip-bomb limits
	CodeSheet     = "FOGLIO_MANCANTE" // the wanted sheet is not there, or no visible sheet
	CodeHeader    = "INTESTAZIONE"    // no header row, missing or duplicate columns
	CodeTooMany   = "TROPPE_RIGHE"    // more data rows than Options.MaxRows
)

// Codes of a *RowError.
const (
	CodeExtraCell = "CELLA_FUORI_INTESTAZIONE" // non-blank cell right of the last header column
	CodeTooLong   = "VALORE_TROPPO_LUNGO"      // cell longer than Options.MaxCell
)

// DefaultMaxCell is the longest cell (in characters) accepted when
// Options.MaxCell is zero: no code, name, address or reason is longer.
const DefaultMaxCell = 1024

// Limits of what a workbook may expand to when opened (zip bombs).
const (
	UnzipSizeLimit = 256 << 20 // whole workbook, uncompressed (drop.max_file_size is 64 MiB; a real workbook expands about 10×)
)

// Options say which columns a table has and how much of it to accept.
type Options struct {
	Required []string // columns that must be in the header (canonical spelling)
	Optional []string // columns that may be in the header
	Sheet    string   // xlsx: the sheet to read, matched with FoldHeader; "" = first visible sheet
	MaxRows  int      // more data rows refuse the file; 0 = no limit
	MaxCell  int      // longest cell in characters; 0 = DefaultMaxCell, < 0 = no limit
}

// FileError refuses a whole file.
type FileError struct {
	Code    string // one of the Code* constants above
	Message string // Italian, for the operator; names the row when there is one
	Row     int    // row (line) the problem is on, 0 when it is not on one
}

func (e *FileError) Error() string { return e.Message }

func fileErr(code string, row int, format string, args ...any) *FileError {
	// Messages quote what a library said about the file, which may carry
	// its bytes: the receipt is UTF-8.
	return &FileError{Code: code, Row: row, Message: strings.ToValidUTF8(fmt.Sprintf(format, args...), "\uFFFD")}
}

// RowError refuses one data row.
type RowError struct {
	Code    string
	Message string // Italian, names the cell
}

func (e *RowError) Error() string { return e.Message }

// Table is a file read by Open.
type Table struct {
	Format    string   // "csv" or "xlsx"
	Sheet     string   // xlsx: the sheet read, as the workbook spells it; "" for a CSV
	Encoding  string   // CSV: "UTF-8", "UTF-8 BOM", "UTF-16", "Windows-1252"; "" for xlsx
	Separator rune     // CSV: ';', ',' or '\t'
	HeaderRow int      // row (line) of the header
	Unknown   []string // header cells not among the known columns, as written, in column order
	Rows      []*Row   // data rows, blank ones skipped, in file order
	Date1904  bool     // xlsx: the workbook counts dates from 1904 (see Table.Date)

	index   map[string]int // canonical name -> column index (present columns only)
	known   map[string]bool
	width   int // header width: index of the last non-blank header cell + 1
	maxCell int
}

// Row is one data row.
type Row struct {
	Line  int       // spreadsheet row number, or CSV line of the record's start
	Cells []string  // raw cells, in column order (may be shorter than the header)
	Err   *RowError // structural problem of the row (see the package doc), nil if none
	t     *Table
}

// Open reads a table from data; name (the dropped file's name) chooses the
// format by its extension, .csv or .xlsx in any case. Whole-file problems
// are returned as a *FileError.
func Open(name string, data []byte, opt Options) (*Table, error) {
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case ".csv":
		return openCSV(data, opt)
	case ".xlsx":
		return openXLSX(data, opt)
	}
	if ext == "" {
		return nil, fileErr(CodeFormat, 0, "il file %q non ha estensione: sono accettati solo file .csv e .xlsx", name)
	}
	return nil, fileErr(CodeFormat, 0, "il formato %s non è accettato: sono accettati solo file .csv e .xlsx", ext)
}

// OpenFile reads the file at path with Open, choosing the format by the
// path's extension (a spool copy keeps the dropped file's extension).
// A failure to read the file is returned as is (a system error, not a
// *FileError).
func OpenFile(path string, opt Options) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Open(filepath.Base(path), data, opt)
}

// newTable parses the header row and prepares the column index.
func newTable(format string, cells []string, row int, opt Options) (*Table, error) {
	t := &Table{Format: format, HeaderRow: row, index: map[string]int{}, known: map[string]bool{}}
	switch {
	case opt.MaxCell == 0:
		t.maxCell = DefaultMaxCell
	case opt.MaxCell > 0:
		t.maxCell = opt.MaxCell
	}
	canon := map[string]string{} // folded -> canonical
	for _, list := range [][]string{opt.Required, opt.Optional} {
		for _, c := range list {
			canon[FoldHeader(c)] = c
			t.known[c] = true
		}
	}
	for i, c := range cells {
		k := FoldHeader(c)
		if k == "" {
			continue
		}
		t.width = i + 1
		name, ok := canon[k]
		if !ok {
			t.Unknown = append(t.Unknown, strings.TrimSpace(c))
			continue
		}
		if j, dup := t.index[name]; dup {
			return nil, fileErr(CodeHeader, row, "riga %d (intestazione): la colonna %q compare due volte (colonne %s e %s)", row, name, ColumnLetter(j), ColumnLetter(i))
		}
		t.index[name] = i
	}
	var missing []string
	for _, c := range opt.Required {
		if _, ok := t.index[c]; !ok {
			missing = append(missing, fmt.Sprintf("%q", c))
		}
	}
	if len(missing) > 0 {
		what := "manca la colonna"
		if len(missing) > 1 {
			what = "mancano le colonne"
		}
		return nil, fileErr(CodeHeader, row, "riga %d (intestazione): %s %s; intestazione trovata: %s", row, what, strings.Join(missing, ", "), describeHeader(cells))
	}
	return t, nil
}

// describeHeader quotes a header row for a message, shortened.
func describeHeader(cells []string) string {
	var parts []string
	n := 0
	for _, c := range cells {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if len([]rune(c)) > 40 {
			c = string([]rune(c)[:40]) + "…"
		}
		if n++; n > 20 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%q", c))
	}
	if len(parts) == 0 {
		return "nessuna"
	}
	return strings.Join(parts, ", ")
}

// addRow appends a non-blank data row (or only counts it beyond max) and
// checks its shape.
func (t *Table) addRow(line int, cells []string) {
	r := &Row{Line: line, Cells: cells, t: t}
	for i, c := range cells {
		if t.maxCell > 0 && len(c) > t.maxCell && utf8Len(c) > t.maxCell {
			r.Err = &RowError{Code: CodeTooLong, Message: fmt.Sprintf("%s: %d caratteri, al massimo %d", t.whereIndex(i), utf8Len(c), t.maxCell)}
			break
		}
		if i >= t.width && strings.TrimSpace(c) != "" {
			msg := fmt.Sprintf("colonna %s: valore %s oltre l'ultima colonna dell'intestazione (%s)", ColumnLetter(i), quoteShort(c), ColumnLetter(t.width-1))
			if t.Format == "csv" {
				msg += ": un separatore dentro un valore non racchiuso tra virgolette?"
			}
			r.Err = &RowError{Code: CodeExtraCell, Message: msg}
			break
		}
	}
	t.Rows = append(t.Rows, r)
}

func utf8Len(s string) int { return len([]rune(s)) }

func quoteShort(s string) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// tooMany refuses a file with more data rows than allowed.
func tooMany(n, max int) *FileError {
	return fileErr(CodeTooMany, 0, "il file ha %d righe di dati, al massimo %d: dividerlo in più file", n, max)
}

// Has reports whether column col (canonical name) is in the header.
func (t *Table) Has(col string) bool {
	_, ok := t.index[col]
	return ok
}

// Column returns the 0-based index of column col, or -1 when absent.
func (t *Table) Column(col string) int {
	if i, ok := t.index[col]; ok {
		return i
	}
	return -1
}

// Where names a column for a message: "colonna C (Data consegna)", or
// "colonna Motivo (assente)" for an optional column not in the header.
func (t *Table) Where(col string) string {
	if i, ok := t.index[col]; ok {
		return fmt.Sprintf("colonna %s (%s)", ColumnLetter(i), col)
	}
	return fmt.Sprintf("colonna %s (assente)", col)
}

// whereIndex names column i, with its header name when it has a known one.
func (t *Table) whereIndex(i int) string {
	for name, j := range t.index {
		if j == i {
			return fmt.Sprintf("colonna %s (%s)", ColumnLetter(i), name)
		}
	}
	return "colonna " + ColumnLetter(i)
}

// Get returns the value of column col (canonical name) with blanks trimmed;
// "" when the column is absent or the row is shorter. Asking for a column
// that is neither required nor optional is a programming error: it panics.
func (r *Row) Get(col string) string {
	return strings.TrimSpace(r.Raw(col))
}

// Raw is Get without trimming.
func (r *Row) Raw(col string) string {
	i, ok := r.t.index[col]
	if !ok {
		if !r.t.known[col] {
			panic(fmt.Sprintf("table: column %q is neither required nor optional", col))
		}
		return ""
	}
	if i >= len(r.Cells) {
		return ""
	}
	return r.Cells[i]
}

// Has reports whether column col is in the header (see Table.Has).
func (r *Row) Has(col string) bool { return r.t.Has(col) }

// Where names a cell's column for a message (see Table.Where).
func (r *Row) Where(col string) string { return r.t.Where(col) }

// Date parses a date cell of this row's table (see Table.Date).
func (r *Row) Date(col string) (time.Time, error) { return r.t.Date(r.Get(col)) }

// ColumnLetter names a 0-based column like a spreadsheet: 0 -> A, 26 -> AA.
func ColumnLetter(i int) string {
	s := ""
	for i++; i > 0; i = (i - 1) / 26 {
		s = string(rune('A'+(i-1)%26)) + s
	}
	return s
}

// blank reports whether every cell is empty or blanks.
func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// FoldHeader normalizes a header for matching: lower case, accents and
// punctuation removed, blanks collapsed ("Data di Nascita " = "data di
// nascita", "CODICE  istat" = "codice istat"). Same rule as
// ingest/census.FoldHeader.
func FoldHeader(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		// An invalid byte would stop the normalizer from decomposing the
		// letter after it ("\xf6Å" would fold to "å", then to "a"): it is
		// a separator, like any other non-letter.
		s = strings.ToValidUTF8(s, " ")
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
	return headerAlias(b.String())
}

// headerAlias maps usual spellings to the canonical fold: "E-mail" and
// "e mail" are "email", "P.E.C." is "pec".
func headerAlias(f string) string {
	switch f {
	case "e mail":
		return "email"
	case "p e c":
		return "pec"
	}
	return f
}
