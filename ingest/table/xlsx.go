package table

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"anprsec/ingest/xlsx"
)

// encryptedPackage is the name of the stream that holds an encrypted OOXML
// workbook inside its OLE compound file, in UTF-16LE as stored there.
var encryptedPackage = func() []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune("EncryptedPackage")) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}()

// The limit in force (tests lower it).
var unzipSizeLimit int64 = UnzipSizeLimit

// openXLSX reads a table from a workbook: the sheet named by opt.Sheet, or
// the first visible one. Cells are raw values (numbers as stored, formula
// cells as their cached value).
func openXLSX(data []byte, opt Options) (t *Table, err error) {
	switch {
	case len(data) == 0:
		return nil, fileErr(CodeFormat, 0, "file vuoto (0 byte): non è una cartella di lavoro .xlsx")
	case bytes.HasPrefix(data, magicOLE):
		if bytes.Contains(data, encryptedPackage) {
			return nil, fileErr(CodeProtected, 0, "la cartella di lavoro è protetta da password (cifrata) e non può essere letta: salvarla senza password di apertura")
		}
		return nil, fileErr(CodeFormat, 0, "il file è in formato Excel 97-2003 (.xls), non .xlsx: salvarlo come \"Cartella di lavoro di Excel (.xlsx)\"")
	case !bytes.HasPrefix(data, magicZip):
		if looksLikeText(data) {
			return nil, fileErr(CodeFormat, 0, "il file .xlsx è in realtà un file di testo (forse un CSV rinominato): inviarlo con estensione .csv o salvarlo come .xlsx")
		}
		return nil, fileErr(CodeFormat, 0, "il file non è una cartella di lavoro .xlsx (non è un archivio zip)")
	}
	defer func() {
		// A panic on a damaged file refuses that file, not the whole job.
		if p := recover(); p != nil {
			t, err = nil, fileErr(CodeFormat, 0, "cartella di lavoro .xlsx danneggiata o non valida (%v)", p)
		}
	}()
	// ingest/xlsx sums the sizes the zip declares and refuses the file
	// above the limit before anything is inflated (archive/zip refuses a
	// part that expands beyond its declared size).
	f, err := xlsx.OpenBytes(data, xlsx.Options{MaxUnzipped: uint64(unzipSizeLimit)})
	if err != nil {
		return nil, xlsxError(err)
	}
	defer f.Close()

	sheet, ferr := chooseSheet(f, opt.Sheet)
	if ferr != nil {
		return nil, ferr
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		return nil, sheetError(sheet, 0, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		row, cells := rows.Row(), rows.Columns()
		extraCol, extraVal := rows.Extra()
		if blank(cells) && (extraCol == 0 || strings.TrimSpace(extraVal) == "") {
			continue
		}
		if t == nil {
			if t, err = newTable("xlsx", cells, row, opt); err != nil {
				fe := err.(*FileError)
				fe.Message = fmt.Sprintf("foglio %q, %s", sheet, fe.Message)
				return nil, fe
			}
			t.Sheet = sheet
			// Values right of the header are not kept (a cell in column
			// XFD would make every row a slice of 16,384 strings); the
			// first one is reported by Extra. One column more is kept,
			// so a value just right of the header reads as before.
			rows.MaxColumns = t.width + 1
			continue
		}
		if n++; opt.MaxRows > 0 && n > opt.MaxRows {
			// Not counted to the end: a hostile sheet may hold a million
			// rows (time spent for nothing).
			return nil, fileErr(CodeTooMany, 0, "foglio %q: più di %d righe di dati: dividere il file in più file di al massimo %d righe", sheet, opt.MaxRows, opt.MaxRows)
		}
		t.addRow(row, cells)
		if r := t.Rows[len(t.Rows)-1]; r.Err == nil && extraCol > 0 && strings.TrimSpace(extraVal) != "" {
			r.Err = &RowError{Code: CodeExtraCell, Message: fmt.Sprintf("colonna %s: valore %s oltre l'ultima colonna dell'intestazione (%s)",
				ColumnLetter(extraCol-1), quoteShort(extraVal), ColumnLetter(t.width-1))}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, sheetError(sheet, rows.Row(), err)
	}
	if t == nil {
		return nil, fileErr(CodeHeader, 0, "foglio %q vuoto: manca la riga di intestazione", sheet)
	}
	t.Date1904 = f.Date1904
	return t, nil
}

// chooseSheet finds the sheet to read: want (matched with FoldHeader,
// hidden or not: it was asked for by name), or the first visible sheet.
func chooseSheet(f *xlsx.Workbook, want string) (string, *FileError) {
	sheets := f.Sheets()
	list := f.SheetNames()
	if len(list) == 0 {
		return "", fileErr(CodeFormat, 0, "la cartella di lavoro non contiene fogli")
	}
	if want != "" {
		for _, name := range list {
			if FoldHeader(name) == FoldHeader(want) {
				return name, nil
			}
		}
		return "", fileErr(CodeSheet, 0, "manca il foglio %q (fogli presenti: %s)", want, quoteList(list))
	}
	for _, s := range sheets {
		if s.Visible() {
			return s.Name, nil
		}
	}
	return "", fileErr(CodeSheet, 0, "la cartella di lavoro non ha fogli visibili (fogli nascosti: %s)", quoteList(list))
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// xlsxError explains why a workbook could not be opened.
func xlsxError(err error) *FileError {
	if errors.Is(err, xlsx.ErrTooBig) {
		return fileErr(CodeTooBig, 0, "la cartella di lavoro decompressa supera %d MB: dividerla in più file", max(unzipSizeLimit>>20, 1))
	}
	return fileErr(CodeFormat, 0, "cartella di lavoro .xlsx danneggiata o non valida (%v)", err)
}

func sheetError(sheet string, row int, err error) *FileError {
	if row > 0 {
		return fileErr(CodeFormat, row, "foglio %q, riga %d: contenuto non valido (%v)", sheet, row, err)
	}
	return fileErr(CodeFormat, 0, "foglio %q: contenuto non valido (%v)", sheet, err)
}

// looksLikeText reports whether the start of data is text (a CSV sent with
// the wrong extension) rather than some other binary format.
func looksLikeText(data []byte) bool {
	head := data[:min(len(data), 4096)]
	if bytes.IndexByte(head, 0) >= 0 {
		return false
	}
	printable := 0
	for _, c := range head {
		if c >= 0x20 || c == '\n' || c == '\r' || c == '\t' {
			printable++
		}
	}
	return printable == len(head)
}
