package xlsx

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
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

// part is an entry of a hand-made zip.
type part struct {
	name, data string
}

// zipParts writes a zip of parts, in order, and returns its path.
func zipParts(t testing.TB, parts ...part) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range parts {
		w, err := zw.Create(p.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(p.data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "parts.xlsx")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawEntry is a zip entry written with CreateRaw: its data as given
// (deflated here when deflate is set) and the uncompressed size it declares.
type rawEntry struct {
	name     string
	data     []byte
	deflate  bool
	declared uint64
}

// rezipRaw copies the zip at src, replacing or adding entries whose
// declared sizes are chosen by the test.
func rezipRaw(t testing.TB, src string, entries ...rawEntry) string {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	byName := map[string]bool{}
	for _, e := range entries {
		byName[e.name] = true
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if byName[f.Name] {
			continue
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, rc)
		rc.Close()
	}
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(e.data), UncompressedSize64: e.declared}
		body := e.data
		if e.deflate {
			var z bytes.Buffer
			fw, _ := flate.NewWriter(&z, flate.BestCompression)
			fw.Write(e.data)
			fw.Close()
			fh.Method, body = zip.Deflate, z.Bytes()
		}
		fh.CompressedSize64 = uint64(len(body))
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "raw.xlsx")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeclaredSizesOverflowIsTooBig: the sizes a workbook's parts declare
// add up without wrapping around: two parts declaring 2^63 bytes each (2^64
// in all, 0 once wrapped) are ErrTooBig under any MaxUnzipped, as is any
// part declaring more than the limit. archive/zip stops a part at the size
// it declares, so the declared sizes are what bounds the inflated data
// (here a 4 MiB sheet, a 20 KB zip, under a 1 MiB limit; a deflate bomb in
// the sheet or the shared strings otherwise inflates until the process runs
// out of memory).
func TestDeclaredSizesOverflowIsTooBig(t *testing.T) {
	sheet := sheetHead + strings.Repeat(`<row><c t="inlineStr"><is><t>0123456789012345678901234567890123456789</t></is></c></row>`, 50000) + sheetTail
	p := rezipRaw(t, baseBook(t),
		rawEntry{name: "xl/worksheets/sheet1.xml", data: []byte(sheet), deflate: true, declared: 1 << 63},
		rawEntry{name: "xl/media/image1.png", declared: 1 << 63})
	wb, err := Open(p, Options{MaxUnzipped: 1 << 20})
	if err == nil {
		defer wb.Close()
		n, inflated := 0, 0
		if rows, rerr := wb.Rows("S"); rerr == nil {
			for rows.Next() {
				n++
				inflated += 88
			}
			rows.Close()
		}
		t.Fatalf("a workbook declaring 2^64 bytes opened under a 1 MiB limit (%d rows, about %d KiB inflated); want ErrTooBig", n, inflated>>10)
	}
	if !errors.Is(err, ErrTooBig) {
		t.Errorf("error %v, want ErrTooBig", err)
	}
}

const (
	relsNS   = `http://schemas.openxmlformats.org/package/2006/relationships`
	relTypes = `http://schemas.openxmlformats.org/officeDocument/2006/relationships/`
	rootRels = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="` + relsNS + `"><Relationship Id="rId1" Type="` + relTypes + `officeDocument" Target="xl/workbook.xml"/></Relationships>`
	workbookBody = `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`
	workbookRels = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="` + relsNS + `"><Relationship Id="rId1" Type="` + relTypes + `worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="` + relTypes + `sharedStrings" Target="sharedStrings.xml"/></Relationships>`
	contentTypes = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>`
	twoStrings = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2" uniqueCount="2"><si><t>Codice ISTAT</t></si><si><t>Codice fiscale</t></si></sst>`
	twoCells = sheetHead + `<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>` + sheetTail
)

// sameAsExcelize reads sheet S of file with both readers.
func sameAsExcelize(t *testing.T, file string) {
	t.Helper()
	want, err := excelizeRows(t, file, "S")
	if err != nil {
		t.Fatalf("excelize: %v", err)
	}
	if len(want) == 0 {
		t.Fatal("excelize read no rows: the test is wrong")
	}
	got, err := ourRows(t, file, "S")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v (error %v)\nwant (excelize) %v", got, err, want)
	}
}

// TestPartNamesMatchWithoutRegardToCase: OPC part names compare without
// regard to case (ECMA-376 Part 2). A shared-string table stored as
// "xl/SharedStrings.xml" while the relationship says "sharedStrings.xml",
// as files met in the wild have it (reports against SheetJS, Spout,
// PHPExcel, ExcelDataReader; Excel and LibreOffice read them), reads as
// excelize reads it, not as a table of empty strings (which the census
// would take for an empty header row).
func TestPartNamesMatchWithoutRegardToCase(t *testing.T) {
	sameAsExcelize(t, zipParts(t,
		part{"[Content_Types].xml", contentTypes},
		part{"_rels/.rels", rootRels},
		part{"xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" + workbookBody},
		part{"xl/_rels/workbook.xml.rels", workbookRels},
		part{"xl/worksheets/sheet1.xml", twoCells},
		part{"xl/SharedStrings.xml", twoStrings}))
}

// TestASCIIEncodingDeclarationIsRead: a workbook.xml (or .rels) whose
// declaration names an ASCII-compatible encoding, as Python's ElementTree
// writes by default when scripts rewrite a workbook
// (<?xml version='1.0' encoding='us-ascii'?>, every other character as a
// character reference), reads as excelize reads it. (The sheet scanner
// ignores declarations altogether.)
func TestASCIIEncodingDeclarationIsRead(t *testing.T) {
	sameAsExcelize(t, zipParts(t,
		part{"[Content_Types].xml", contentTypes},
		part{"_rels/.rels", rootRels},
		part{"xl/workbook.xml", `<?xml version='1.0' encoding='us-ascii'?>` + "\n" + workbookBody},
		part{"xl/_rels/workbook.xml.rels", workbookRels},
		part{"xl/worksheets/sheet1.xml", twoCells},
		part{"xl/sharedStrings.xml", twoStrings}))
}

// TestSharedStringsErrorOnEveryRows: a malformed (or over-cap) shared-string
// table is the error of every Rows call on the workbook, not only of the
// first: no later call reads the table cut where the error was, with the
// strings after it as "".
func TestSharedStringsErrorOnEveryRows(t *testing.T) {
	sst := `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>zero</t></si><si><t>uno &bogus;</t></si><si><t>due</t></si></sst>`
	p := rezip(t, baseBook(t), map[string][]byte{"xl/sharedStrings.xml": []byte(sst)})
	wb, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	if _, err := wb.Rows("S"); err == nil {
		t.Fatal("a malformed shared-string table was accepted")
	}
	rows, err := wb.Rows("S")
	if err == nil {
		var got [][]string
		for rows.Next() {
			got = append(got, rows.Columns())
		}
		rows.Close()
		t.Errorf("second Rows: no error, rows %q (err %v); want the table's error again", got, rows.Err())
	}
}

// TestWideRowAllocatesOnce: a row is padded up to its last cell in one
// allocation of its final length: a row whose only cell is at XFD (35 bytes
// of XML) costs at most two slices of MaxColumns strings, not a slice
// regrown cell by cell (about 1.1 MB and 0.4 ms a row; the census reads up
// to 500,000 data rows, so minutes of CPU per upload). Even so a dense
// 16,384-column row is 256 KiB.
func TestWideRowAllocatesOnce(t *testing.T) {
	const n = 200
	doc := sheetHead + strings.Repeat(`<row><c r="XFD1"><v>1</v></c></row>`, n) + sheetTail
	p := rezip(t, baseBook(t), map[string][]byte{"xl/worksheets/sheet1.xml": []byte(doc)})
	wb, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	rows, err := wb.Rows("S")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	read := 0
	for rows.Next() {
		if len(rows.Columns()) != MaxColumns {
			t.Fatalf("row %d: %d columns", rows.Row(), len(rows.Columns()))
		}
		read++
	}
	runtime.ReadMemStats(&ms1)
	if rows.Err() != nil || read != n {
		t.Fatalf("%d rows, %v", read, rows.Err())
	}
	perRow := (ms1.TotalAlloc - ms0.TotalAlloc) / n
	if limit := uint64(2 * MaxColumns * 16); perRow > limit {
		t.Errorf("%d bytes allocated per 35-byte row, want at most %d (one slice of %d strings)", perRow, limit, MaxColumns)
	}
}
