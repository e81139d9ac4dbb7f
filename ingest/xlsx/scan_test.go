package xlsx

import (
	"archive/zip"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestScannerBoundsNestingDepth: the scanner refuses nesting deeper than
// 10,000 levels (encoding/xml's bound for Unmarshal; no spreadsheet part
// nests more than a few dozen). Every open element is held in memory (its
// name and an index) while "<a>" is 3 bytes of input that compress about
// 1000:1: without a bound a 256 MiB sheet (the default MaxUnzipped, from a
// zip of a few hundred KB) of nested elements holds about 2.4 GB.
func TestScannerBoundsNestingDepth(t *testing.T) {
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

// TestScannerReportsZipReadError: when the zip entry itself fails to read
// (a part inflating beyond the size it declares, which archive/zip refuses
// with zip.ErrFormat, or ending short of it, io.ErrUnexpectedEOF; a corrupt
// deflate stream likewise), the error is that read error, wrapped, whatever
// token it interrupts, and never malformed XML: the receipt tells the
// office that the file is a damaged or tampered archive, and errors.Is
// sees the cause.
func TestScannerReportsZipReadError(t *testing.T) {
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

// TestErrorsClipQuotedInput: a message quotes the offending input (a cell
// reference, a row number, an element name, each up to the 1 MiB tag limit)
// clipped to a few dozen characters: messages go into the receipt as they
// are, and a hostile sheet writes no megabyte line into the office's
// receipt.
func TestErrorsClipQuotedInput(t *testing.T) {
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
