package xlsx

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// Tests of a review of the package. Each fails on the code as reviewed.

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
	p := filepath.Join(t.TempDir(), "review.xlsx")
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

// TestReviewDeclaredSizesOverflow: Open sums the sizes the zip declares in
// a uint64 that wraps around. Two entries declaring 2^63 bytes each add up
// to 0, so a workbook declaring 2^64 bytes passes any MaxUnzipped, and the
// per-part check of archive/zip (a part may not inflate beyond what it
// declares) no longer bounds anything: here a 4 MiB sheet (a 20 KB zip)
// is inflated under a 1 MiB limit; with a real deflate bomb the sheet or
// the shared strings (whose <t> text is accumulated whole) inflate until
// the process runs out of memory. Right: a sum that overflows, or any part
// declaring more than the limit, is ErrTooBig.
func TestReviewDeclaredSizesOverflow(t *testing.T) {
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

// TestReviewSharedStringsPartNameCase: OPC part names are compared without
// regard to case (ECMA-376 Part 2), and files whose table is stored as
// "xl/SharedStrings.xml" while the relationship says "sharedStrings.xml"
// are met in the wild (reports against SheetJS, Spout, PHPExcel,
// ExcelDataReader; Excel and LibreOffice read them). excelize maps the
// entry case-insensitively and reads the strings; this package looks the
// target up case-sensitively, treats it as a dangling relationship and
// silently reads every shared-string cell as "" (the census then sees an
// empty header row). Right: the same values as excelize (part lookup
// without regard to ASCII case, at least as a fallback).
func TestReviewSharedStringsPartNameCase(t *testing.T) {
	sameAsExcelize(t, zipParts(t,
		part{"[Content_Types].xml", contentTypes},
		part{"_rels/.rels", rootRels},
		part{"xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" + workbookBody},
		part{"xl/_rels/workbook.xml.rels", workbookRels},
		part{"xl/worksheets/sheet1.xml", twoCells},
		part{"xl/SharedStrings.xml", twoStrings}))
}

// TestReviewASCIIEncodingDeclaration: a workbook.xml (or .rels) whose
// declaration names an ASCII-compatible encoding, as Python's ElementTree
// writes by default when scripts rewrite a workbook
// (<?xml version='1.0' encoding='us-ascii'?>, all other characters as
// character references), is read by excelize; this package refuses the
// whole workbook with encoding/xml's English message "xml: encoding
// "us-ascii" declared but Decoder.CharsetReader is nil", which an office
// cannot act on. (The sheet scanner ignores declarations altogether, so
// the same declaration on the sheet is read.) Right: the values excelize
// reads (a CharsetReader for ASCII-compatible labels), or at least an
// Italian message saying the part's encoding is not UTF-8.
func TestReviewASCIIEncodingDeclaration(t *testing.T) {
	sameAsExcelize(t, zipParts(t,
		part{"[Content_Types].xml", contentTypes},
		part{"_rels/.rels", rootRels},
		part{"xl/workbook.xml", `<?xml version='1.0' encoding='us-ascii'?>` + "\n" + workbookBody},
		part{"xl/_rels/workbook.xml.rels", workbookRels},
		part{"xl/worksheets/sheet1.xml", twoCells},
		part{"xl/sharedStrings.xml", twoStrings}))
}

// TestReviewSharedStringsErrorSticky: sharedStrings marks the table read
// before reading it, so after a first Rows call fails on a malformed (or
// over-cap) table, a second Rows call on the same Workbook succeeds with
// the table cut where the error was: the strings after it read as ""
// without an error. Right: every Rows call returns the table's error.
func TestReviewSharedStringsErrorSticky(t *testing.T) {
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

// TestReviewDeepNesting: the scanner keeps every open element's name
// (plus an int of index) with no bound on depth. "<a>" repeated costs 3
// bytes of input and about 9-27 bytes of heap, and compresses about
// 1000:1: a 256 MiB sheet (the default MaxUnzipped, from a zip of a few
// hundred KB) of nested elements holds about 2.4 GB (measured: 30 MiB of
// "<a>" -> 279 MiB in use, 519 MiB allocated). No spreadsheet part nests
// more than a few dozen levels; encoding/xml bounds Unmarshal at 10,000.
// Right: an error once the depth passes a bound (here at most 10,000).
func TestReviewDeepNesting(t *testing.T) {
	const n = 200000
	doc := strings.Repeat("<a>", n) + strings.Repeat("</a>", n)
	s := newScanner(strings.NewReader(doc))
	maxDepth := 0
	var err error
	for {
		var k tokKind
		if k, err = s.next(); err != nil || k == tokEOF {
			break
		}
		maxDepth = max(maxDepth, len(s.stackIdx))
	}
	if maxDepth > 10000 {
		t.Errorf("nesting %d deep held in memory (error %v); want an error before 10,000 levels", maxDepth, err)
	}
}

// TestReviewWideRowCost: readRow pads a row up to its last cell one
// append at a time from a nil slice, so a row whose only cell is at XFD
// (35 bytes of XML) costs about 1.1 MB of allocation (the 256 KiB slice
// regrown ~40 times) and ~0.4 ms: 50,000 such rows (1.7 MB of XML, a few
// KB zipped) take 21 s and 56 GB of allocation; the census reads up to
// 500,000 data rows, minutes of CPU per upload. Right: the row's slice
// allocated once at its final length (at most 2 slices' worth per row);
// even then a dense 16,384-column row is 256 KiB, so the census should
// also be able to bound the columns it wants.
func TestReviewWideRowCost(t *testing.T) {
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

// TestReviewZipReadErrorShownAsXML: when the zip entry itself fails to read
// (a part inflating beyond the size it declares, which archive/zip refuses
// with zip.ErrFormat, or ending short of it, io.ErrUnexpectedEOF; a
// corrupt deflate stream likewise), archive/zip returns the error with no
// bytes, and unless the scanner's window happens to be empty at that
// moment, fill's false is taken for the end of the input: the error is
// reported as malformed XML ("XML non valido (linea 2 della parte XML):
// tag non chiuso alla fine del file"). The receipt then tells the office
// its XML is truncated instead of that the file is a damaged or tampered
// archive, and errors.Is cannot see the cause. Right: the read error,
// wrapped, whatever token it interrupts.
func TestReviewZipReadErrorShownAsXML(t *testing.T) {
	sheet := sheetHead + strings.Repeat(`<row><c t="inlineStr"><is><t>0123456789012345678901234567890123456789</t></is></c></row>`, 5000) + sheetTail
	for _, tc := range []struct {
		declared int
		want     error
	}{
		{len(sheet)/3 + 13, zip.ErrFormat},    // inflates beyond its declared size
		{len(sheet) + 5, io.ErrUnexpectedEOF}, // ends before its declared size
	} {
		p := rezipRaw(t, baseBook(t), rawEntry{name: "xl/worksheets/sheet1.xml", data: []byte(sheet), deflate: true, declared: uint64(tc.declared)})
		got, err := ourRows(t, p, "S")
		if !errors.Is(err, tc.want) {
			t.Errorf("sheet of %d bytes declaring %d: %d rows, error %q; want one wrapping %q", len(sheet), tc.declared, len(got), err, tc.want)
		}
	}
}

// TestReviewErrorEchoesInput: messages quote the offending input whole
// (a cell reference, a row number, an element name can be up to the 1 MiB
// tag limit), and they go into the receipt as they are: a hostile sheet
// writes a megabyte line into the office's receipt. Right: quoted input
// truncated to a few dozen characters.
func TestReviewErrorEchoesInput(t *testing.T) {
	for _, rowsXML := range []string{
		`<row r="1"><c r="A` + strings.Repeat("9", 500000) + `"><v>1</v></c></row>`,
		`<row r="` + strings.Repeat("x", 500000) + `"><c><v>1</v></c></row>`,
		`<row r="1"><c r="A1"><v>1</` + strings.Repeat("w", 500000) + `></c></row>`,
	} {
		p := rezip(t, baseBook(t), map[string][]byte{"xl/worksheets/sheet1.xml": []byte(sheetHead + rowsXML + sheetTail)})
		_, err := ourRows(t, p, "S")
		if err == nil {
			t.Fatal("accepted")
		}
		if len(err.Error()) > 500 {
			t.Errorf("a message of %d bytes: %.120s...", len(err.Error()), err)
		}
	}
}
