// Package xlsx streams the cell values of a worksheet of an .xlsx
// workbook, several times faster than excelize's Rows iterator: the
// sheet's XML is read by a byte scanner (scan.go) that allocates nothing
// per token, straight from the zip entry, without a temporary file.
//
// Values are the raw values excelize returns with Options.RawCellValue:
// shared and inline strings (rich-text runs joined, phonetic runs left
// out, _xHHHH_ escapes decoded), the cached value of a formula (never
// evaluated), numbers and dates as written (a date cell is its serial
// number), booleans as 0 and 1. The differential tests hold it to
// excelize's output.
//
// It is made for untrusted files: the sizes the zip declares are summed
// and refused above a limit before anything is inflated (archive/zip
// refuses a part longer than it declares), malformed XML is an error
// naming the line (excelize stops reading a sheet silently at the first
// syntax error), row and column numbers are bounded as in Excel, and rows
// and cells must come in order, each once, as every spreadsheet program
// writes them (excelize renumbers rows out of order and shifts cells, so a
// receipt could name the wrong row).
package xlsx

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Excel's limits.
const (
	MaxRows    = 1048576
	MaxColumns = 16384
)

// MaxSharedStrings bounds the shared-string table, which is held in
// memory: 8 million strings is more than the cells of the largest census
// (census.max_rows, 500,000 rows of 14 columns) and costs at most a few
// hundred MB; a table of tiny strings packed into a small zip could
// otherwise cost gigabytes.
const MaxSharedStrings = 1 << 23

var maxSharedStrings = MaxSharedStrings // lowered by tests

// ErrTooBig is returned by Open for a workbook whose parts would inflate
// beyond Options.MaxUnzipped.
var ErrTooBig = errors.New("xlsx: la cartella di lavoro decompressa supera il limite di dimensione")

// Options of Open.
type Options struct {
	// MaxUnzipped bounds the sum of the sizes the zip declares for its
	// parts (0: 256 MiB).
	MaxUnzipped uint64
}

// Sheet is a worksheet of the workbook, in workbook order.
type Sheet struct {
	Name  string
	State string // "", "visible", "hidden" or "veryHidden"
	part  string // zip path of the sheet's XML
}

// Visible reports whether the sheet is shown (neither hidden nor very hidden).
func (s Sheet) Visible() bool { return s.State == "" || s.State == "visible" }

// Workbook is an open .xlsx file.
type Workbook struct {
	// Date1904 is set for a workbook whose date serials count from 1904
	// (<workbookPr date1904="1"/>, old Mac workbooks).
	Date1904 bool

	closer  io.Closer
	files   map[string]*zip.File
	sheets  []Sheet
	sstPart string
	sst     []string
	sstRead bool
	sstErr  error
}

// Open opens the workbook at path and reads its list of sheets.
func Open(name string, opt Options) (*Workbook, error) {
	zr, err := zip.OpenReader(name)
	if err != nil {
		return nil, err
	}
	w, err := newWorkbook(&zr.Reader, zr, opt)
	if err != nil {
		zr.Close()
		return nil, err
	}
	return w, nil
}

// OpenBytes opens a workbook held in memory.
func OpenBytes(data []byte, opt Options) (*Workbook, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	return newWorkbook(zr, io.NopCloser(nil), opt)
}

func newWorkbook(zr *zip.Reader, closer io.Closer, opt Options) (*Workbook, error) {
	if opt.MaxUnzipped == 0 {
		opt.MaxUnzipped = 256 << 20
	}
	w := &Workbook{closer: closer, files: map[string]*zip.File{}}
	var total uint64
	for _, f := range zr.File {
		// Summed without overflow: a zip64 entry may declare 2^63 bytes.
		if f.UncompressedSize64 > opt.MaxUnzipped-total {
			return nil, ErrTooBig
		}
		total += f.UncompressedSize64
		// Part names are compared without regard to case (OPC); some
		// writers name the part xl/SharedStrings.xml.
		w.files[strings.ToLower(strings.TrimPrefix(f.Name, "/"))] = f
	}
	if err := w.readWorkbook(); err != nil {
		return nil, err
	}
	return w, nil
}

// Close closes the file.
func (w *Workbook) Close() error { return w.closer.Close() }

// Sheets lists the worksheets in workbook order.
func (w *Workbook) Sheets() []Sheet { return append([]Sheet(nil), w.sheets...) }

// SheetNames lists the worksheets' names in workbook order.
func (w *Workbook) SheetNames() []string {
	names := make([]string, len(w.sheets))
	for i, s := range w.sheets {
		names[i] = s.Name
	}
	return names
}

// maxPart bounds the small parts read whole (workbook.xml, relationships).
const maxPart = 16 << 20

// file finds a part by name, in any case.
func (w *Workbook) file(name string) (*zip.File, bool) {
	f, ok := w.files[strings.ToLower(name)]
	return f, ok
}

func (w *Workbook) readPart(name string) ([]byte, error) {
	f, ok := w.file(name)
	if !ok {
		return nil, fmt.Errorf("xlsx: manca la parte %s", name)
	}
	if f.UncompressedSize64 > maxPart {
		return nil, fmt.Errorf("xlsx: la parte %s è troppo grande", name)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("xlsx: %s: %w", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxPart+1))
	if err != nil {
		return nil, fmt.Errorf("xlsx: %s: %w", name, err)
	}
	return data, nil
}

type relationships struct {
	Rels []struct {
		ID     string `xml:"Id,attr"`
		Type   string `xml:"Type,attr"`
		Target string `xml:"Target,attr"`
	} `xml:"Relationship"`
}

// readRels reads the relationships of part (its _rels/<name>.rels) and
// returns them by Id, targets resolved to zip paths.
func (w *Workbook) readRels(part string) (map[string]string, map[string]string, error) {
	dir, base := path.Split(part)
	relsName := dir + "_rels/" + base + ".rels"
	byID, byType := map[string]string{}, map[string]string{}
	data, err := w.readPart(relsName)
	if err != nil {
		return byID, byType, err
	}
	var rels relationships
	if err := unmarshal(data, &rels); err != nil {
		return nil, nil, fmt.Errorf("xlsx: %s: %w", relsName, err)
	}
	for _, r := range rels.Rels {
		t := r.Target
		if strings.HasPrefix(t, "/") {
			t = path.Clean(t[1:])
		} else {
			t = path.Clean(path.Join(dir, t))
		}
		byID[r.ID] = t
		if i := strings.LastIndexByte(r.Type, '/'); i >= 0 {
			byType[r.Type[i+1:]] = t
		}
	}
	return byID, byType, nil
}

// unmarshal decodes a small part with encoding/xml. Parts are UTF-8 (OPC
// also allows UTF-16, which excelize does not read either); a declaration
// of US-ASCII, a subset, is accepted, as scripts write it.
func unmarshal(data []byte, v any) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "us-ascii", "ascii":
			return in, nil
		}
		return nil, fmt.Errorf("la parte è dichiarata nella codifica %s: è ammessa solo UTF-8", short([]byte(label)))
	}
	return d.Decode(v)
}

// readWorkbook finds the workbook part, its sheets and its shared strings.
func (w *Workbook) readWorkbook() error {
	wbPart := "xl/workbook.xml"
	if _, byType, err := w.readRels(""); err == nil {
		if p, ok := byType["officeDocument"]; ok {
			wbPart = p
		}
	}
	data, err := w.readPart(wbPart)
	if err != nil {
		return err
	}
	var wb struct {
		Props struct {
			Date1904 string `xml:"date1904,attr"`
		} `xml:"workbookPr"`
		Sheets []struct {
			Name  string     `xml:"name,attr"`
			State string     `xml:"state,attr"`
			Attrs []xml.Attr `xml:",any,attr"`
		} `xml:"sheets>sheet"`
	}
	if err := unmarshal(data, &wb); err != nil {
		return fmt.Errorf("xlsx: %s: %w", wbPart, err)
	}
	w.Date1904 = wb.Props.Date1904 == "1" || wb.Props.Date1904 == "true"
	byID, byType, err := w.readRels(wbPart)
	if err != nil {
		return err
	}
	w.sstPart = byType["sharedStrings"]
	for _, s := range wb.Sheets {
		var id string
		for _, a := range s.Attrs {
			if a.Name.Local == "id" && a.Name.Space != "" {
				id = a.Value
			}
		}
		part, ok := byID[id]
		if !ok {
			return fmt.Errorf("xlsx: il foglio %q non ha una parte nel file", s.Name)
		}
		w.sheets = append(w.sheets, Sheet{Name: s.Name, State: s.State, part: part})
	}
	return nil
}

// sharedStrings reads the shared-string table once; its error, if any, is
// every call's.
func (w *Workbook) sharedStrings() error {
	if !w.sstRead {
		w.sstRead = true
		w.sstErr = w.readSharedStrings()
		if w.sstErr != nil {
			w.sst = nil
		}
	}
	return w.sstErr
}

// readSharedStrings reads the shared-string table: the text of each <si>
// item, in order.
func (w *Workbook) readSharedStrings() error {
	if w.sstPart == "" {
		return nil
	}
	f, ok := w.file(w.sstPart)
	if !ok {
		return nil // a dangling relationship: excelize reads it as empty too
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("xlsx: %s: %w", w.sstPart, err)
	}
	defer rc.Close()
	if err := w.readItems(newScanner(bufio.NewReaderSize(rc, readSize))); err != nil {
		return fmt.Errorf("xlsx: %s: %w", w.sstPart, err)
	}
	return nil
}

// readItems reads the <si> items among the children of the table's root
// element, <sst><si>…</si>…</sst>; other elements are left out.
func (w *Workbook) readItems(s *scanner) error {
	var it sstItem
	depth := 0
	for {
		k, err := s.next()
		if err != nil {
			return err
		}
		switch k {
		case tokEOF:
			return nil
		case tokStart:
			depth++
			if depth != 2 || string(s.local) != "si" {
				continue
			}
			if err := it.read(s); err != nil {
				return err
			}
			if err := w.addSharedString(&it); err != nil {
				return err
			}
			depth-- // it.read read </si>
		case tokEnd:
			depth--
		}
	}
}

// addSharedString appends the text of an item to the table, which holds
// at most maxSharedStrings strings.
func (w *Workbook) addSharedString(it *sstItem) error {
	if len(w.sst) == maxSharedStrings {
		return fmt.Errorf("più di %d stringhe condivise", maxSharedStrings)
	}
	w.sst = append(w.sst, it.text())
	return nil
}

// sstItem is an <si> item of the table being read; its buffers serve every
// item.
type sstItem struct {
	t    []byte // the text of <si>'s own <t>
	run  []byte // the text of the current run's <t>
	runs []byte // the text of the runs read, joined
}

// read reads an <si> element just started, up to its end:
//
//	<si>(<t>text</t> | <r><rPr/><t>text</t></r>* | <rPh>...</rPh>)</si>
//
// As excelize: the text of <si>'s own <t>, then that of each run's <t>;
// the last <t> of a level wins; only a <t>'s own text counts; the other
// children of <si> (rPh, phoneticPr) are left out.
func (it *sstItem) read(s *scanner) error {
	it.t, it.runs = it.t[:0], it.runs[:0]
	for {
		k, err := s.next()
		if err != nil {
			return err
		}
		switch k {
		case tokEnd: // </si>
			return nil
		case tokStart:
			switch string(s.local) {
			case "t":
				it.t, err = s.textOf(it.t[:0])
			case "r":
				err = it.readRun(s)
			default:
				err = s.skipElement()
			}
			if err != nil {
				return err
			}
		}
	}
}

// readRun reads an <r> run just started, up to its end, and appends the
// text of its last <t> to it.runs; its properties (rPr) are left out.
func (it *sstItem) readRun(s *scanner) error {
	it.run = it.run[:0]
	for {
		k, err := s.next()
		if err != nil {
			return err
		}
		switch k {
		case tokEnd: // </r>
			it.runs = append(it.runs, it.run...)
			return nil
		case tokStart:
			if string(s.local) == "t" {
				it.run, err = s.textOf(it.run[:0])
			} else {
				err = s.skipElement()
			}
			if err != nil {
				return err
			}
		}
	}
}

// text is the item's string: its own <t>, then its runs, _xHHHH_ escapes
// decoded.
func (it *sstItem) text() string {
	return unescape(string(it.t) + string(it.runs))
}

// unescape decodes the _xHHHH_ escapes of OOXML strings (a character XML
// cannot hold, e.g. _x0008_; _x005F_ is "_"), as excelize does: an escape
// of a surrogate is dropped.
func unescape(s string) string {
	if !strings.Contains(s, "_x") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "_x")
		if i < 0 || len(s)-i < 7 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		hex := s[i+2 : i+6]
		if s[i+6] == '_' && isHex4(hex) {
			if hex == "005F" || hex == "005f" {
				b.WriteByte('_')
			} else if v, _ := strconv.ParseUint(hex, 16, 32); utf8.ValidRune(rune(v)) {
				b.WriteRune(rune(v))
			}
			s = s[i+7:]
			continue
		}
		b.WriteString("_x")
		s = s[i+2:]
	}
}

func isHex4(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return len(h) == 4
}

// ErrNoSheet is returned by Rows for a name the workbook does not have.
var ErrNoSheet = errors.New("xlsx: foglio inesistente")

// Rows starts reading the sheet named name (exactly).
func (w *Workbook) Rows(name string) (*Rows, error) {
	for _, sh := range w.sheets {
		if sh.Name != name {
			continue
		}
		f, ok := w.file(sh.part)
		if !ok {
			return nil, fmt.Errorf("xlsx: manca la parte %s del foglio %q", sh.part, name)
		}
		if err := w.sharedStrings(); err != nil {
			return nil, err
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("xlsx: %s: %w", sh.part, err)
		}
		return &Rows{rc: rc, s: newScanner(rc), sst: w.sst}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoSheet, name)
}

// Rows iterates over the <row> elements of a sheet.
type Rows struct {
	// MaxColumns, when positive, is the last column whose value is kept:
	// a value further right is not stored (a row with one cell in column
	// XFD would otherwise be a slice of 16,384 strings), only reported by
	// Extra. Readers set it to the width of the header once they have it.
	MaxColumns int

	extraCol int
	extraVal string

	rc     io.ReadCloser
	s      *scanner
	sst    []string
	inData bool // inside <sheetData>
	done   bool
	err    error
	row    int
	cells  []string
	value  []byte
	isBuf  []byte
	// The texts of an inline string being read, kept from cell to cell.
	isT, isRun, isRuns []byte
}

// Close releases the sheet's reader.
func (r *Rows) Close() error { return r.rc.Close() }

// Err returns the error that stopped Next, if any.
func (r *Rows) Err() error { return r.err }

// Row returns the number (1-based) of the current row: its r attribute,
// or the previous row's number + 1 when it has none.
func (r *Rows) Row() int { return r.row }

// Extra returns the first non-blank value (not only spaces) of the
// current row right of MaxColumns, and its column (1-based); col is 0
// when there is none.
func (r *Rows) Extra() (col int, value string) { return r.extraCol, r.extraVal }

// Columns returns the current row's values, from column A to its last
// cell with a value (or a formula); missing cells are "". The slice is
// the caller's.
func (r *Rows) Columns() []string { return r.cells }

// Next reads the next <row>. It returns false at the end of the sheet
// data or on an error (see Err).
func (r *Rows) Next() bool {
	if r.done {
		return false
	}
	if err := r.next(); err != nil {
		r.err, r.done = err, true
		return false
	}
	return !r.done
}

func (r *Rows) fail(format string, args ...any) error {
	return r.s.errorf(format, args...)
}

func (r *Rows) next() error {
	s := r.s
	for {
		k, err := s.next()
		if err != nil {
			return err
		}
		switch k {
		case tokEOF:
			if !r.inData {
				return r.fail("manca l'elemento sheetData")
			}
			r.done = true
			return nil
		case tokEnd:
			if string(s.local) == "sheetData" {
				r.done = true
				return nil
			}
		case tokStart:
			switch {
			case !r.inData && string(s.local) == "sheetData":
				r.inData = true
			case r.inData && string(s.local) == "row":
				return r.readRow()
			case r.inData:
				if err := s.skipElement(); err != nil {
					return err
				}
			}
		}
	}
}

// parseRef reads a cell reference "AB12" into its column (1-based).
func parseRef(ref []byte) (col, row int, ok bool) {
	i := 0
	for i < len(ref) && (ref[i] >= 'A' && ref[i] <= 'Z' || ref[i] >= 'a' && ref[i] <= 'z') {
		c := int(ref[i]|0x20) - 'a' + 1
		col = col*26 + c
		if col > MaxColumns {
			return 0, 0, false
		}
		i++
	}
	if i == 0 || i == len(ref) {
		return 0, 0, false
	}
	if ref[i] == '$' {
		i++
	}
	n, err := strconv.Atoi(string(ref[i:]))
	if err != nil || n < 1 || n > MaxRows {
		return 0, 0, false
	}
	return col, n, true
}

func (r *Rows) readRow() error {
	s := r.s
	num, err := r.rowNumber()
	if err != nil {
		return err
	}
	r.row = num
	r.cells = nil
	r.extraCol, r.extraVal = 0, ""
	if s.pendingEnd { // <row/>
		_, err := s.next()
		return err
	}
	col, lastCol := 0, 0
	for {
		k, err := s.next()
		if err != nil {
			return err
		}
		switch k {
		case tokEnd: // </row>
			return nil
		case tokStart:
			if string(s.local) != "c" {
				if err := s.skipElement(); err != nil {
					return err
				}
				continue
			}
			if col, err = r.cellColumn(col + 1); err != nil {
				return err
			}
			typ, _ := s.attrValue("t")
			val, formula, err := r.readCell(string(typ))
			if err != nil {
				return err
			}
			if col <= lastCol {
				return r.fail("riga %d: cella nella colonna %d dopo la colonna %d: le celle non sono in ordine", num, col, lastCol)
			}
			lastCol = col
			r.keep(col, val, formula)
		}
	}
}

// rowNumber returns the number of the <row> just started: its r
// attribute, or the previous row's number + 1 when it has none. It is at
// most MaxRows, and after the previous row's.
func (r *Rows) rowNumber() (int, error) {
	num := r.row + 1
	if v, ok := r.s.attrValue("r"); ok {
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil || n < 1 {
			return 0, r.fail("numero di riga %s non valido", short(v))
		}
		num = n
	}
	if num > MaxRows {
		return 0, r.fail("riga %d oltre il limite di %d righe", num, MaxRows)
	}
	if num <= r.row {
		// Spreadsheet programs write rows in order, each once; a row
		// number that goes back would give two rows the same number in
		// a receipt.
		return 0, r.fail("riga %d dopo la riga %d: le righe del foglio non sono in ordine", num, r.row)
	}
	return num, nil
}

// cellColumn returns the column (1-based) of the <c> just started: that of
// its r attribute, or next (the previous cell's + 1) when it has none. It
// is at most MaxColumns.
func (r *Rows) cellColumn(next int) (int, error) {
	col := next
	if ref, ok := r.s.attrValue("r"); ok && len(ref) > 0 {
		c, _, ok := parseRef(bytes.TrimSpace(ref))
		if !ok {
			return 0, r.fail("riferimento di cella %s non valido", short(ref))
		}
		col = c
	}
	if col > MaxColumns {
		return 0, r.fail("colonna %d oltre il limite di %d colonne", col, MaxColumns)
	}
	return col, nil
}

// keep stores the value of the cell in column col. Right of MaxColumns, a
// value is not stored: the first one not blank is the row's Extra. A value
// or a formula is stored, the row grown to col with "".
func (r *Rows) keep(col int, val string, formula bool) {
	switch {
	case r.MaxColumns > 0 && col > r.MaxColumns:
		if r.extraCol == 0 && strings.TrimSpace(val) != "" {
			r.extraCol, r.extraVal = col, val
		}
	case val != "" || formula:
		// One allocation at the final length, not one append per
		// missing cell.
		if col > cap(r.cells) {
			r.cells = slices.Grow(r.cells, col-len(r.cells))
		}
		r.cells = r.cells[:col]
		r.cells[col-1] = val
	}
}

// readCell reads the content of a <c> element of type t up to its end.
func (r *Rows) readCell(t string) (val string, formula bool, err error) {
	s := r.s
	r.value = r.value[:0]
	r.isBuf = r.isBuf[:0]
	hasIS := false
	if s.pendingEnd {
		_, err := s.next()
		return "", false, err
	}
	for {
		k, err := s.next()
		if err != nil {
			return "", false, err
		}
		switch k {
		case tokEnd: // </c>
			return r.cellValue(t, hasIS), formula, nil
		case tokStart:
			switch string(s.local) {
			case "v":
				if r.value, err = r.s.textOf(r.value[:0]); err != nil {
					return "", false, err
				}
			case "f":
				formula = true
				if err := s.skipElement(); err != nil {
					return "", false, err
				}
			case "is":
				hasIS = true
				if r.isBuf, err = r.inlineString(r.isBuf[:0]); err != nil {
					return "", false, err
				}
			default:
				if err := s.skipElement(); err != nil {
					return "", false, err
				}
			}
		}
	}
}

// textOf appends the text of the element just started (its own character
// data, as encoding/xml reads a string field: the text of elements inside
// it is left out) and reads up to its end.
func (s *scanner) textOf(dst []byte) ([]byte, error) {
	depth := 1
	for depth > 0 {
		k, err := s.next()
		if err != nil {
			return dst, err
		}
		switch k {
		case tokStart:
			depth++
		case tokEnd:
			depth--
		case tokText:
			if depth == 1 {
				dst = append(dst, s.text...)
			}
		}
	}
	return dst, nil
}

// inlineString reads an <is> element: its <t>, then the <t> of each <r>
// run; phonetic runs (<rPh>) are left out. As excelize: the last <t> of a
// level wins.
func (r *Rows) inlineString(dst []byte) ([]byte, error) {
	s := r.s
	t, run, runs := r.isT[:0], r.isRun[:0], r.isRuns[:0]
	defer func() { r.isT, r.isRun, r.isRuns = t, run, runs }()
	for {
		k, err := s.next()
		if err != nil {
			return dst, err
		}
		switch k {
		case tokEnd: // </is>
			return append(append(dst, t...), runs...), nil
		case tokStart:
			switch string(s.local) {
			case "t":
				if t, err = r.s.textOf(t[:0]); err != nil {
					return dst, err
				}
			case "r":
				run = run[:0]
				for {
					k, err := s.next()
					if err != nil {
						return dst, err
					}
					if k == tokEnd {
						break
					}
					if k == tokStart {
						if string(s.local) == "t" {
							if run, err = r.s.textOf(run[:0]); err != nil {
								return dst, err
							}
						} else if err := s.skipElement(); err != nil {
							return dst, err
						}
					}
				}
				runs = append(runs, run...)
			default:
				if err := s.skipElement(); err != nil {
					return dst, err
				}
			}
		}
	}
}

// cellValue is the raw value of a cell of type t whose <v> text is
// r.value and inline string r.isBuf.
func (r *Rows) cellValue(t string, hasIS bool) string {
	switch t {
	case "s":
		if len(r.value) == 0 {
			return ""
		}
		i, err := strconv.Atoi(string(bytes.TrimSpace(r.value)))
		if err != nil {
			i = 0 // as excelize: a non-numeric index reads as the first string
		}
		if i < 0 || i >= len(r.sst) {
			return ""
		}
		return r.sst[i]
	case "inlineStr":
		if hasIS {
			return unescape(string(r.isBuf))
		}
		return string(r.value)
	default:
		return string(r.value)
	}
}
