package xlsx

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/internal/ziptest"
)

// row is a row with a value: its number and cells.
type row struct {
	N     int
	Cells []string
}

// excelizeRows reads a sheet as the census did before this package:
// excelize's Rows iterator with raw values, numbering rows by Next.
func excelizeRows(t testing.TB, file, sheet string) ([]row, error) {
	t.Helper()
	f, err := excelize.OpenFile(file, excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := f.Rows(sheet)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []row
	for n := 1; rows.Next(); n++ {
		cells, err := rows.Columns()
		if err != nil {
			return out, err
		}
		if len(cells) > 0 {
			out = append(out, row{n, cells})
		}
	}
	return out, rows.Error()
}

func ourRows(t testing.TB, file, sheet string) ([]row, error) {
	t.Helper()
	wb, err := Open(file, Options{})
	if err != nil {
		return nil, err
	}
	defer wb.Close()
	rows, err := wb.Rows(sheet)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		if c := rows.Columns(); len(c) > 0 {
			out = append(out, row{rows.Row(), c})
		}
	}
	return out, rows.Err()
}

// richBook writes, with excelize's ordinary API (shared strings), a sheet
// with every kind of value a census workbook may hold.
func richBook(t testing.TB, dir string) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	s := "Sheet1"
	set := func(cell string, v any) {
		if err := f.SetCellValue(s, cell, v); err != nil {
			t.Fatal(err)
		}
	}
	set("A1", "Codice ISTAT")
	set("B1", "Cognome")
	set("C1", "Data di nascita")
	set("A2", "058091")
	set("B2", "D'Annunzio & <figli> \"quoted\"")
	set("C2", time.Date(1968, 1, 1, 0, 0, 0, 0, time.UTC))
	set("D2", 3.25)
	set("E2", true)
	set("F2", -17)
	set("G2", "àèìòù ÀÉ ß 漢字 😀")
	set("H2", "a\nb\tc")
	set("I2", "  spazi  ")
	set("J2", "_x0041_ e _x005F_x0041_")
	set("A4", "dopo una riga vuota")
	set("Z4", "colonna Z")
	set("AA5", strings.Repeat("lungo ", 5000))
	if err := f.SetCellFormula(s, "B6", "1+1"); err != nil {
		t.Fatal(err)
	}
	set("A6", "formula accanto")
	if err := f.SetCellRichText(s, "A7", []excelize.RichTextRun{{Text: "ric"}, {Text: "co", Font: &excelize.Font{Bold: true}}}); err != nil {
		t.Fatal(err)
	}
	set("A8", "=1+1") // a string that looks like a formula
	set("A9", 12345678901234567)
	set("A10", 0.1+0.2)
	if _, err := f.NewSheet("Nascosto"); err != nil {
		t.Fatal(err)
	}
	f.SetCellValue("Nascosto", "A1", "x")
	f.SetSheetVisible("Nascosto", false)
	p := filepath.Join(dir, "rich.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// streamBook writes with excelize's StreamWriter (inline strings), as the
// census generator does.
func streamBook(t testing.TB, dir string) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3000; i += 1 + i%3 { // gaps
		cells := []any{fmt.Sprintf("%06d", i), "Rossi & C. <srl>", i, float64(i) / 7, i%2 == 0, "", "ultima"}
		if i%5 == 0 {
			cells = append(cells, excelize.Cell{Formula: "1+1", Value: 2})
		}
		c, _ := excelize.CoordinatesToCellName(1, i)
		if err := sw.SetRow(c, cells); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "stream.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMatchesExcelize: every value of the workbooks excelize itself
// writes (shared strings, rich text, formulas, dates, gaps, long text;
// inline strings by the StreamWriter) reads the same as with excelize.
func TestMatchesExcelize(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ file, sheet string }{
		{richBook(t, dir), "Sheet1"},
		{richBook(t, dir), "Nascosto"},
		{streamBook(t, dir), "Sheet1"},
	} {
		want, err := excelizeRows(t, tc.file, tc.sheet)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ourRows(t, tc.file, tc.sheet)
		if err != nil {
			t.Fatalf("%s %s: %v", filepath.Base(tc.file), tc.sheet, err)
		}
		if len(want) < 2 && tc.sheet == "Sheet1" {
			t.Fatalf("%s: excelize read %d rows", tc.file, len(want))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s:\n got %v\nwant %v", filepath.Base(tc.file), tc.sheet, got, want)
		}
	}
}

func TestSheets(t *testing.T) {
	wb, err := Open(richBook(t, t.TempDir()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	if got := wb.SheetNames(); !reflect.DeepEqual(got, []string{"Sheet1", "Nascosto"}) {
		t.Errorf("sheets %q", got)
	}
	if st := wb.Sheets()[1].State; st != "hidden" {
		t.Errorf("state of the hidden sheet: %q", st)
	}
	if _, err := wb.Rows("Manca"); !errors.Is(err, ErrNoSheet) {
		t.Errorf("missing sheet: %v", err)
	}
}

// rezip copies the zip at src to a new file with some parts replaced.
func rezip(t testing.TB, src string, repl map[string][]byte) string {
	t.Helper()
	base, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "x.xlsx")
	if err := os.WriteFile(p, ziptest.Rezip(t, base, repl), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const sheetHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1"/><sheetData>`
const sheetTail = `</sheetData><pageMargins left="0.7"/></worksheet>`

// baseBook is a workbook with one sheet "S" and a shared-string table of
// three strings, whose sheet XML the tests replace.
func baseBook(t testing.TB) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "S")
	for i, v := range []string{"zero", "uno", "due"} {
		f.SetCellValue("S", fmt.Sprintf("A%d", i+1), v)
	}
	p := filepath.Join(t.TempDir(), "base.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSheetXML: hand-written sheet XML, as other programs write it.
func TestSheetXML(t *testing.T) {
	base := baseBook(t)
	for _, tc := range []struct {
		name, xml string
		want      []row
		err       string
	}{
		{"shared, inline, number", `<row r="1"><c r="A1" t="s"><v>1</v></c><c r="B1" t="inlineStr"><is><t>in linea</t></is></c><c r="C1"><v>42</v></c></row>`,
			[]row{{1, []string{"uno", "in linea", "42"}}}, ""},
		{"no r attributes", `<row><c><v>1</v></c><c t="s"><v>2</v></c></row><row><c t="str"><v>x</v></c></row>`,
			[]row{{1, []string{"1", "due"}}, {2, []string{"x"}}}, ""},
		{"prefixed elements", `<x:row r="3"><x:c r="B3" t="s"><x:v>0</x:v></x:c></x:row>`,
			[]row{{3, []string{"", "zero"}}}, ""},
		{"entities and char refs", `<row r="1"><c r="A1" t="inlineStr"><is><t>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#233;&#x20AC;</t></is></c></row>`,
			[]row{{1, []string{`a <b> & "c" 'd' é€`}}}, ""},
		{"CDATA, comment, PI", `<!-- c --><?pi x?><row r="1"><c r="A1" t="inlineStr"><is><t><![CDATA[<non & tag>]]> e testo</t></is></c></row>`,
			[]row{{1, []string{"<non & tag> e testo"}}}, ""},
		{"CRLF normalized", "<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>a\r\nb\rc</t></is></c></row>",
			[]row{{1, []string{"a\nb\nc"}}}, ""},
		{"rich runs and phonetic", `<row r="1"><c r="A1" t="inlineStr"><is><r><rPr><b/></rPr><t>ric</t></r><r><t xml:space="preserve">co </t></r><rPh sb="0" eb="1"><t>ふり</t></rPh></is></c></row>`,
			[]row{{1, []string{"ricco "}}}, ""},
		{"formula with cached value and without", `<row r="1"><c r="A1"><f>SUM(B1:C1)</f><v>3</v></c><c r="B1"><f>NOW()</f></c></row>`,
			[]row{{1, []string{"3", ""}}}, ""},
		{"self-closing cells and rows", `<row r="1"/><row r="2"><c r="A2"/><c r="B2" s="1"/><c r="C2"><v>1</v></c></row>`,
			[]row{{2, []string{"", "", "1"}}}, ""},
		{"booleans, errors, dates", `<row r="1"><c r="A1" t="b"><v>1</v></c><c r="B1" t="e"><v>#N/A</v></c><c r="C1" t="d"><v>2020-01-02T00:00:00Z</v></c></row>`,
			[]row{{1, []string{"1", "#N/A", "2020-01-02T00:00:00Z"}}}, ""},
		{"escapes", `<row r="1"><c r="A1" t="inlineStr"><is><t>_x0041__x005F_x0041__xD800_</t></is></c></row>`,
			[]row{{1, []string{"A_x0041_"}}}, ""},
		{"bad shared index", `<row r="1"><c r="A1" t="s"><v>99</v></c><c r="B1" t="s"><v>-1</v></c><c r="C1"><v>1</v></c></row>`,
			[]row{{1, []string{"", "", "1"}}}, ""},
		{"unknown elements skipped", `<row r="1"><extLst><ext><row r="9"><c r="A9"><v>9</v></c></row></ext></extLst><c r="A1"><v>1</v></c></row>`,
			[]row{{1, []string{"1"}}}, ""},
		{"empty sheet", ``, nil, ""},
		{"mismatched end tag", `<row r="1"><c r="A1"><v>1</c></row>`, nil, "chiuso da"},
		{"unknown entity", `<row r="1"><c r="A1"><v>&nbsp;</v></c></row>`, nil, "entità sconosciuta"},
		{"bare ampersand", `<row r="1"><c r="A1"><v>a & b</v></c></row>`, nil, "entità"},
		{"DOCTYPE", `<!DOCTYPE x [<!ENTITY a "b">]><row/>`, nil, "DOCTYPE"},
		{"control character", "<row r=\"1\"><c r=\"A1\"><v>a\x01b</v></c></row>", nil, "non ammesso"},
		{"invalid UTF-8", "<row r=\"1\"><c r=\"A1\"><v>a\xffb</v></c></row>", nil, "UTF-8"},
		{"char ref to NUL", `<row r="1"><c r="A1"><v>&#0;</v></c></row>`, nil, "entità"},
		{"unquoted attribute", `<row r=1><c><v>1</v></c></row>`, nil, "virgolette"},
		{"row over the limit", `<row r="1048577"><c><v>1</v></c></row>`, nil, "oltre il limite"},
		{"column over the limit", `<row r="1"><c r="XFE1"><v>1</v></c></row>`, nil, "non valido"},
		{"bad row number", `<row r="abc"><c><v>1</v></c></row>`, nil, "numero di riga"},
		{"rows out of order", `<row r="3"><c><v>1</v></c></row><row r="2"><c><v>2</v></c></row>`, nil, "riga 2 dopo la riga 3"},
		{"row twice", `<row r="2"><c><v>1</v></c></row><row r="2"><c><v>2</v></c></row>`, nil, "non sono in ordine"},
		{"cells out of order", `<row r="1"><c r="C1"><v>1</v></c><c r="A1"><v>2</v></c></row>`, nil, "colonna 1 dopo la colonna 3"},
		{"cell twice", `<row r="1"><c r="B1"><v>1</v></c><c r="B1"><v>2</v></c></row>`, nil, "le celle non sono in ordine"},
		{"truncated", `<row r="1"><c r="A1"><v>1</v>`, nil, "aperto"},
		{"cell closed by the sheet's end", `<row r="1"><c r="A1"><v>1</v>`, nil, "chiuso da"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tail := sheetTail
			if tc.name == "truncated" {
				tail = ""
			}
			p := rezip(t, base, map[string][]byte{"xl/worksheets/sheet1.xml": []byte(sheetHead + tc.xml + tail)})
			got, err := ourRows(t, p, "S")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q (rows %v)", err, tc.err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLimits: a zip that declares more than the limit is refused before
// anything is inflated; a file that is not a zip is an error.
func TestLimits(t *testing.T) {
	base := baseBook(t)
	big := rezip(t, base, map[string][]byte{"xl/worksheets/sheet1.xml": []byte(sheetHead + strings.Repeat(`<row><c><v>1</v></c></row>`, 100000) + sheetTail)})
	if _, err := Open(big, Options{MaxUnzipped: 1 << 20}); !errors.Is(err, ErrTooBig) {
		t.Errorf("over the limit: %v", err)
	}
	if wb, err := Open(big, Options{}); err != nil {
		t.Errorf("under the default limit: %v", err)
	} else {
		wb.Close()
	}
	notZip := filepath.Join(t.TempDir(), "x.xlsx")
	os.WriteFile(notZip, []byte("Codice;Nome\n1;a\n"), 0o644)
	if _, err := Open(notZip, Options{}); err == nil {
		t.Error("a CSV opened as a workbook")
	}
}

// TestSharedStringsCap: a shared-string table over the cap is refused
// when a sheet is opened, before the table is all in memory.
func TestSharedStringsCap(t *testing.T) {
	defer func(n int) { maxSharedStrings = n }(maxSharedStrings)
	maxSharedStrings = 1000
	sst := `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` + strings.Repeat(`<si><t/></si>`, 1001) + `</sst>`
	p := rezip(t, baseBook(t), map[string][]byte{"xl/sharedStrings.xml": []byte(sst)})
	wb, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	if _, err := wb.Rows("S"); err == nil || !strings.Contains(err.Error(), "più di 1000 stringhe condivise") {
		t.Errorf("a table of 1,001 strings with a cap of 1,000: %v", err)
	}
	maxSharedStrings = 1001
	wb2, _ := Open(p, Options{})
	defer wb2.Close()
	if _, err := wb2.Rows("S"); err != nil {
		t.Errorf("at the cap: %v", err)
	}
}

// tokens lists the scanner's tokens over r (kind, local name, attributes,
// text), or the error that stopped it.
func tokens(r io.Reader) (string, error) {
	s := newScanner(r)
	var b strings.Builder
	for {
		k, err := s.next()
		if err != nil {
			return b.String(), err
		}
		switch k {
		case tokEOF:
			return b.String(), nil
		case tokStart:
			fmt.Fprintf(&b, "<%s", s.local)
			for _, a := range s.attrs {
				fmt.Fprintf(&b, " %s=%q", a.local, a.value)
			}
			b.WriteString(">")
		case tokEnd:
			fmt.Fprintf(&b, "</%s>", s.local)
		case tokText:
			fmt.Fprintf(&b, "%q", s.text)
		}
	}
}

// TestScannerWindows: the tokens are the same whether the input arrives
// whole or a byte at a time (entities, CRLF, UTF-8 sequences and CDATA
// ends cut by refills), and a text larger than the window's limit is read
// in pieces without a cut showing.
func TestScannerWindows(t *testing.T) {
	huge := strings.Repeat("àb&amp;\r\n", maxTag/5)
	for _, doc := range []string{
		`<a x="1" y='2'>t&lt;&#233;<b/>x<![CDATA[c]]d]]>y</a>`,
		"<a>\r\n\r\n&#x1F600;😀\r</a>",
		`<?xml version="1.0"?><!-- -- --><a:b xmlns:a="u"><a:c a:d="&quot;&gt;"/></a:b>`,
		"<a>" + huge + "</a>",
		"<a><![CDATA[" + huge + "]]></a>",
	} {
		whole, err1 := tokens(strings.NewReader(doc))
		var small io.Reader = iotest.OneByteReader(strings.NewReader(doc))
		if len(doc) > 1000 {
			small = &chunkReader{r: strings.NewReader(doc), n: 4099}
		}
		bytewise, err2 := tokens(small)
		if err1 != nil || err2 != nil || whole != bytewise {
			t.Errorf("%.60q: whole %.200s (%v)\nbytewise %.200s (%v)", doc, whole, err1, bytewise, err2)
		}
	}
	got, err := tokens(strings.NewReader("<a>" + huge + "</a>"))
	want := fmt.Sprintf("<a>%q</a>", strings.ReplaceAll(strings.ReplaceAll(huge, "&amp;", "&"), "\r\n", "\n"))
	if err != nil || got != want {
		t.Errorf("huge text: %v, %d bytes of tokens, want %d", err, len(got), len(want))
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// wellFormed reports whether encoding/xml reads the whole document
// without an error (the comparisons with excelize hold only then:
// excelize stops silently at a syntax error).
func wellFormed(doc []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}
