package table

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

var (
	bomUTF8    = []byte{0xef, 0xbb, 0xbf}
	bomUTF16LE = []byte{0xff, 0xfe}
	bomUTF16BE = []byte{0xfe, 0xff}
	magicZip   = []byte("PK\x03\x04")
	magicOLE   = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}
)

// openCSV reads a CSV table. A syntax error (bad quoting) refuses the file:
// the records after it cannot be told apart reliably.
func openCSV(data []byte, opt Options) (*Table, error) {
	text, enc, ferr := decodeCSV(data)
	if ferr != nil {
		return nil, ferr
	}
	sep := detectSeparator(text)
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = sep
	r.FieldsPerRecord = -1
	var t *Table
	n := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := r.FieldPos(0)
		if blank(rec) {
			continue
		}
		if t == nil {
			if t, err = newTable("csv", rec, line, opt); err != nil {
				return nil, err
			}
			t.Encoding, t.Separator = enc, sep
			continue
		}
		if n++; opt.MaxRows > 0 && n > opt.MaxRows {
			t.Rows = nil // refused below: only count the rest
			continue
		}
		t.addRow(line, rec)
	}
	if t == nil {
		return nil, fileErr(CodeHeader, 0, "file vuoto: manca la riga di intestazione")
	}
	if opt.MaxRows > 0 && n > opt.MaxRows {
		return nil, tooMany(n, opt.MaxRows)
	}
	return t, nil
}

// csvError explains a CSV syntax error to the operator.
func csvError(err error) *FileError {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return fileErr(CodeFormat, 0, "file CSV illeggibile: %v", err)
	}
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return fileErr(CodeFormat, pe.Line, "riga %d: virgolette (\") dentro un valore che non è racchiuso tra virgolette: racchiudere il valore tra virgolette e raddoppiare quelle interne (\"\")", pe.Line)
	case errors.Is(pe.Err, csv.ErrQuote):
		return fileErr(CodeFormat, pe.StartLine, "riga %d: virgolette (\") non chiuse o seguite da altri caratteri in un valore tra virgolette (errore alla riga %d)", pe.StartLine, pe.Line)
	}
	return fileErr(CodeFormat, pe.Line, "riga %d: file CSV non valido: %v", pe.Line, pe.Err)
}

// decodeCSV returns the text of a CSV file and its encoding: UTF-8 (with or
// without BOM), UTF-16 with a BOM, otherwise Windows-1252 (what Italian Excel
// writes), the superset of Latin-1 that every byte string decodes as.
// Binary content (NUL or other control characters) is refused.
func decodeCSV(data []byte) (string, string, *FileError) {
	if len(data) == 0 {
		return "", "", fileErr(CodeHeader, 0, "file vuoto: manca la riga di intestazione")
	}
	switch {
	case bytes.HasPrefix(data, magicZip):
		return "", "", fileErr(CodeFormat, 0, "il file .csv è in realtà un archivio zip (forse una cartella di lavoro .xlsx rinominata): inviarlo con estensione .xlsx o salvarlo come CSV")
	case bytes.HasPrefix(data, magicOLE):
		return "", "", fileErr(CodeFormat, 0, "il file .csv è in realtà un file Excel 97-2003 (.xls) o protetto da password: salvarlo come CSV (separato da punto e virgola)")
	case bytes.HasPrefix(data, []byte("%PDF")):
		return "", "", fileErr(CodeFormat, 0, "il file .csv è in realtà un PDF: inviare il file CSV")
	}
	var text, enc string
	switch {
	case bytes.HasPrefix(data, bomUTF8) && utf8.Valid(data[3:]):
		text, enc = string(data[3:]), "UTF-8 BOM"
	case utf8.Valid(data):
		text, enc = string(data), "UTF-8"
	case bytes.HasPrefix(data, bomUTF16LE), bytes.HasPrefix(data, bomUTF16BE):
		b, err := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder().Bytes(data)
		if err != nil {
			return "", "", fileErr(CodeFormat, 0, "file CSV in UTF-16 illeggibile: salvarlo come CSV UTF-8")
		}
		text, enc = strings.TrimPrefix(string(b), "\ufeff"), "UTF-16"
	default:
		b, err := charmap.Windows1252.NewDecoder().Bytes(data)
		if err != nil {
			return "", "", fileErr(CodeFormat, 0, "file CSV illeggibile: codifica dei caratteri sconosciuta (salvarlo come CSV UTF-8)")
		}
		text, enc = string(b), "Windows-1252"
	}
	text = strings.TrimRight(text, "\x1a") // DOS end-of-file mark
	line := 1
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\n':
			line++
		case c < 0x20 && c != '\t' && c != '\r', c == 0x7f:
			what := "caratteri di controllo"
			if c == 0 {
				what = "byte nulli"
			}
			return "", "", fileErr(CodeFormat, line, "il file non è un CSV di testo: contiene %s (riga %d); forse è un file binario con estensione .csv", what, line)
		}
	}
	// Line ends of old Mac programs: CR alone.
	if strings.IndexByte(text, '\n') < 0 && strings.IndexByte(text, '\r') >= 0 {
		text = strings.ReplaceAll(text, "\r", "\n")
	}
	return text, enc, nil
}

// CanonicalCSV returns the text of a CSV file as the reader reads it,
// whatever bytes carried it: decoded to UTF-8 (from UTF-8 with or without
// BOM, UTF-16 with a BOM or Windows-1252, as Open decodes), its line ends
// made LF (CRLF, or CR alone in a file without LF), and without the DOS
// end-of-file mark or line ends at its end. Two files with the same
// canonical text are the same table. ok is false when data is not a CSV
// text Open reads (then it has no canonical text).
func CanonicalCSV(data []byte) (text []byte, ok bool) {
	s, _, ferr := decodeCSV(data)
	if ferr != nil {
		return nil, false
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return []byte(strings.TrimRight(s, "\n")), true
}

// detectSeparator picks the separator from the header line, the first line
// with something other than blanks, separators and quotes: ';' if it has
// one (outside quotes), else ',', else tab, else ';' (one column).
func detectSeparator(text string) rune {
	for len(text) > 0 {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		if strings.Trim(line, " \t\r;,\"") == "" {
			continue
		}
		var semi, comma, tab int
		quoted := false
		for _, c := range line {
			switch c {
			case '"':
				quoted = !quoted
			case ';':
				if !quoted {
					semi++
				}
			case ',':
				if !quoted {
					comma++
				}
			case '\t':
				if !quoted {
					tab++
				}
			}
		}
		switch {
		case semi > 0:
			return ';'
		case comma > 0:
			return ','
		case tab > 0:
			return '\t'
		}
		return ';'
	}
	return ';'
}
