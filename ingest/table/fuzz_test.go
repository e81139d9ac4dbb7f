package table_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"anprsec/ingest/table"
	"anprsec/internal/ziptest"
)

var fuzzOpt = table.Options{Required: manifest.Required, Optional: manifest.Optional, MaxRows: 50, MaxCell: 100}

// checkOpen opens data as name and checks what must hold for any input:
// no panic; a refusal is a *FileError with a known code and an Italian
// message in valid UTF-8; an accepted table has its rows below the header,
// in increasing line order, none blank, no more than MaxRows, every value
// valid UTF-8 (CSV), row errors with a known code.
func checkOpen(t *testing.T, name string, data []byte) {
	tb, err := table.Open(name, data, fuzzOpt)
	if err != nil {
		var fe *table.FileError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T) is not a *FileError", err, err)
		}
		switch fe.Code {
		case table.CodeFormat, table.CodeProtected, table.CodeTooBig, table.CodeSheet, table.CodeHeader, table.CodeTooMany:
		default:
			t.Errorf("unknown code %q", fe.Code)
		}
		if fe.Message == "" || !utf8.ValidString(fe.Message) {
			t.Errorf("bad message %q", fe.Message)
		}
		if tb != nil {
			t.Errorf("a table with an error")
		}
		return
	}
	if tb.HeaderRow < 1 {
		t.Errorf("header row %d", tb.HeaderRow)
	}
	if len(tb.Rows) > fuzzOpt.MaxRows {
		t.Errorf("%d rows, over MaxRows %d", len(tb.Rows), fuzzOpt.MaxRows)
	}
	for _, c := range fuzzOpt.Required {
		if !tb.Has(c) {
			t.Errorf("accepted without column %q", c)
		}
	}
	last := tb.HeaderRow
	for _, r := range tb.Rows {
		if r.Line <= last {
			t.Errorf("row line %d after %d", r.Line, last)
		}
		last = r.Line
		empty := true
		for _, c := range r.Cells {
			if strings.TrimSpace(c) != "" {
				empty = false
			}
			if tb.Format == "csv" && !utf8.ValidString(c) {
				t.Errorf("line %d: invalid UTF-8 %q", r.Line, c)
			}
		}
		if empty {
			t.Errorf("line %d: blank row delivered", r.Line)
		}
		for _, c := range append(append([]string{}, fuzzOpt.Required...), fuzzOpt.Optional...) {
			v := r.Get(c)
			if v != strings.TrimSpace(v) {
				t.Errorf("Get(%q) not trimmed: %q", c, v)
			}
			if r.Where(c) == "" {
				t.Errorf("empty Where(%q)", c)
			}
		}
		if r.Err != nil {
			if r.Err.Code != table.CodeExtraCell && r.Err.Code != table.CodeTooLong {
				t.Errorf("line %d: unknown row error code %q", r.Line, r.Err.Code)
			}
			if r.Err.Message == "" || !utf8.ValidString(r.Err.Message) {
				t.Errorf("line %d: bad row error message %q", r.Line, r.Err.Message)
			}
		}
	}
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		hdr + "\n058091;SC0001;RSSMRA68A01H501Y;14/03/2025;CCCFBA85D03L219P\n",
		"\ufeff" + hdr + ";Note\r\n058091;SC1;x;y;z;\"a\r\nb\"\r\n\r\n;;;\r\n1;2\r\n",
		strings.ReplaceAll(hdr, ";", ",") + "\n1,2,3,4,5,6,7\n",
		"CODICE  istat;seriale;codice fiscale;DATA CONSEGNA;ritirata-da;Città\n1;2;3;4;5;Forlì\n",
		hdr + "\n\"unclosed;1;2\n",
		"a;b\n\x00\n",
	} {
		f.Add([]byte(s))
	}
	f.Add(latin1(hdr + ";Città\n058091;SC1;x;y;z;Forlì\n"))
	f.Add(utf16le(hdr + "\n1;2;3;4;5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOpen(t, "f.csv", data)
	})
}

func FuzzXLSX(f *testing.F) {
	f.Add(manifestBook(f))
	f.Add(workbook(f, func(x *excelize.File) {
		put(x, "Sheet1", 2, append([]any{nil}, hdrCells...)...)
		put(x, "Sheet1", 4, nil, 58091, "SC1", nil, 45730, "x", nil, "extra")
	}))
	f.Add(workbook(f, func(x *excelize.File) {
		put(x, "Sheet1", 1, "Codice ISTAT")
	}))
	f.Add([]byte("PK\x03\x04garbage"))
	f.Add([]byte(hdr + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOpen(t, "f.xlsx", data)
	})
}

// FuzzXLSXSheet keeps a valid workbook and fuzzes what excelize's streaming
// reader parses: the rows of the sheet (the XML inside <sheetData>, header
// row included) and the shared strings. Mutating a whole .xlsx (FuzzXLSX)
// mostly breaks the zip's checksums and never gets that far.
func FuzzXLSXSheet(f *testing.F) {
	const sheetPart, sstPart = "xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"
	base := manifestBook(f)
	sheetXML, sst := string(zipPart(f, base, sheetPart)), zipPart(f, base, sstPart)
	start := strings.Index(sheetXML, "<sheetData>") + len("<sheetData>")
	end := strings.Index(sheetXML, "</sheetData>")
	if start < len("<sheetData>") || end < start {
		f.Fatalf("unexpected sheet XML: %s", sheetXML)
	}
	prefix, rows, suffix := sheetXML[:start], sheetXML[start:end], sheetXML[end:]
	f.Add(rows, sst)
	head := rows[:strings.Index(rows, "</row>")+len("</row>")]
	for _, r := range []string{
		`<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row>`,
		head + `<row r="0"><c r="A0"><v>1</v></c></row>`,
		head + `<row r="2"><c r="XFE2"><v>1</v></c></row>`,
		head + `<row r="2"><c r="A2" t="s"><v>99999</v></c><c r="B2" t="s"><v>-1</v></c><c t="s"><v>x</v></c></row>`,
		head + `<row r="2"><c r="A2" t="n"><v>abc</v></c><c r="B2" t="b"><v>2</v></c><c r="C2" t="e"><v>#N/A</v></c><c r="D2" t="d"><v>2020-01-01</v></c></row>`,
		head + `<row r="3"><c r="C3"><v>1</v></c><c r="A3"><v>2</v></c></row><row r="2"><c r="A2"><v>58091</v></c></row>`,
		head + `<row r="2"><c r="A2" t="str"><f>1+1</f><v>2</v></c><c r="G2" s="999"><v>1</v></c></row>`,
		`<row><c t="inlineStr"><is><t>Codice ISTAT</t></is></c></row><row><c><v>1</v></c></row>`,
	} {
		f.Add(r, sst)
	}
	f.Add(rows, []byte(`<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="-1"></sst>`))
	f.Fuzz(func(t *testing.T, rowsXML string, sstData []byte) {
		checkOpen(t, "f.xlsx", rezip(t, base, map[string][]byte{sheetPart: []byte(prefix + rowsXML + suffix), sstPart: sstData}))
	})
}

// rezip and zipPart: see internal/ziptest.
func rezip(tb testing.TB, base []byte, parts map[string][]byte) []byte {
	return ziptest.Rezip(tb, base, parts)
}

func zipPart(tb testing.TB, data []byte, name string) []byte { return ziptest.Part(tb, data, name) }

// FuzzCSVRoundTrip writes one data row with encoding/csv and reads it back:
// whatever the values (quotes, separators, newlines, blanks, accents), each
// column returns its value, trimmed.
func FuzzCSVRoundTrip(f *testing.F) {
	f.Add("058091", "SC0001", "RSSMRA68A01H501Y", "14/03/2025", "CCCFBA85D03L219P", false, false)
	f.Add(" a;b ", "\"q\"", "x\ny", "", "è,à", true, true)
	f.Add("", "", "", "", "", false, true)
	opt := table.Options{Required: manifest.Required, MaxCell: -1}
	f.Fuzz(func(t *testing.T, a, b, c, d, e string, crlf, comma bool) {
		values := []string{a, b, c, d, e}
		for _, v := range values {
			if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' || r == 0x7f }) {
				return // refused as binary (tested elsewhere), or a CR, which encoding/csv's writer drops or keeps

			}
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.UseCRLF = crlf
		if comma {
			w.Comma = ','
		} else {
			w.Comma = ';'
		}
		w.Write(opt.Required)
		w.Write(values)
		w.Flush()
		tb, err := table.Open("f.csv", buf.Bytes(), opt)
		if err != nil {
			t.Fatalf("%v\n%q", err, buf.String())
		}
		blankRow := true
		for _, v := range values {
			if strings.TrimSpace(v) != "" {
				blankRow = false
			}
		}
		if blankRow {
			if len(tb.Rows) != 0 {
				t.Fatalf("blank row read as %q", tb.Rows[0].Cells)
			}
			return
		}
		if len(tb.Rows) != 1 || tb.Rows[0].Line != 2 || tb.Rows[0].Err != nil {
			t.Fatalf("rows %+v\n%q", tb.Rows, buf.String())
		}
		for i, col := range opt.Required {
			want := strings.TrimSpace(values[i])
			if got := tb.Rows[0].Get(col); got != want {
				t.Errorf("%s = %q, want %q\n%q", col, got, want, buf.String())
			}
		}
	})
}
