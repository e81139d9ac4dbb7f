package xlsx

import (
	"bytes"
	"encoding/xml"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

var (
	rowRef  = regexp.MustCompile(`^[1-9][0-9]{0,6}$`)
	cellRef = regexp.MustCompile(`^([A-Z]{1,3})([1-9][0-9]{0,6})$`)
)

// regular reports whether a sheet's XML is of the shape spreadsheet
// programs write, where excelize's reading is well defined: rows only
// inside sheetData, with increasing r attributes; cells only inside rows,
// with r attributes of that row and increasing columns; shared-string
// indexes in the table; valid style numbers. Outside that shape excelize
// numbers rows by their order, shifts out-of-order cells or reads a bad
// index as the first string: this package reads the r attributes or
// refuses, and the two are not compared.
func regular(doc []byte, nsst int) bool {
	d := xml.NewDecoder(bytes.NewReader(doc))
	var stack []string
	lastRow, lastCol, rowNum := 0, 0, 0
	cellT := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		switch el := tok.(type) {
		case xml.StartElement:
			parent := ""
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			name := el.Name.Local
			attr := func(k string) (string, bool) { // the last, as excelize
				for i := len(el.Attr) - 1; i >= 0; i-- {
					if el.Attr[i].Name.Local == k {
						return el.Attr[i].Value, true
					}
				}
				return "", false
			}
			switch name {
			case "row":
				r, ok := attr("r")
				if parent != "sheetData" || !ok || !rowRef.MatchString(r) {
					return false
				}
				n, _ := strconv.Atoi(r)
				if n <= lastRow || n > MaxRows {
					return false
				}
				lastRow, rowNum, lastCol = n, n, 0
			case "c":
				r, ok := attr("r")
				m := cellRef.FindStringSubmatch(r)
				if parent != "row" || !ok || m == nil || m[2] != strconv.Itoa(rowNum) {
					return false
				}
				col, _, ok := parseRef([]byte(r))
				if !ok || col <= lastCol {
					return false
				}
				lastCol = col
				if s, ok := attr("s"); ok {
					if _, err := strconv.Atoi(s); err != nil {
						return false
					}
				}
				cellT, _ = attr("t")
			case "v":
				if parent != "c" {
					return false
				}
				if cellT == "s" {
					var v string
					if d.DecodeElement(&v, &el) != nil {
						return false
					}
					i, err := strconv.Atoi(strings.TrimSpace(v))
					if err != nil || i < 0 || i >= nsst {
						return false
					}
					continue
				}
			case "f", "is":
				if parent != "c" {
					return false
				}
			case "sheetData":
				if parent != "worksheet" {
					return false
				}
			}
			stack = append(stack, name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.Directive:
			return false
		}
	}
}

// FuzzRows fuzzes the rows of a sheet (the XML inside <sheetData>) and
// the shared-string table: the reader must never panic, must read the
// same whether the XML arrives whole or a byte at a time, and on a
// well-formed regular sheet must return exactly excelize's values.
func FuzzRows(f *testing.F) {
	base := baseBook(f)
	sst := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" +
		`<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="3"><si><t>zero</t></si><si><r><t>u</t></r><r><rPr><b/></rPr><t xml:space="preserve">no </t></r></si><si><t>_x0041_&amp;</t><rPh><t>x</t></rPh></si></sst>`
	for _, rows := range []string{
		`<row r="1"><c r="A1" t="s"><v>1</v></c><c r="B1" t="inlineStr"><is><t>in linea</t></is></c><c r="C1"><v>42</v></c></row>`,
		`<row r="2"><c r="B2" t="s"><v>2</v></c><c r="D2"><f>1+1</f><v>2</v></c><c r="E2"><f>X</f></c></row><row r="5"><c r="A5" t="b"><v>1</v></c></row>`,
		`<row r="1"><c r="A1" t="inlineStr"><is><r><t>a</t></r><r><t>b</t></r><rPh><t>c</t></rPh></is></c></row>`,
		`<row r="1"><c r="A1" t="str"><v>&lt;&#233;&gt;</v></c><c r="AB1"><v><![CDATA[x&y]]></v></c></row>`,
		"<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>a\r\nb</t></is></c></row>",
		`<row><c><v>1</v></c></row><row r="3"/><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>`,
		`<row r="3"><c r="C3"><v>1</v></c><c r="A3"><v>2</v></c></row><row r="2"/>`,
	} {
		f.Add(rows, sst)
	}
	f.Fuzz(func(t *testing.T, rowsXML, sstXML string) {
		doc := []byte(sheetHead + rowsXML + sheetTail)
		p := rezip(t, base, map[string][]byte{"xl/worksheets/sheet1.xml": doc, "xl/sharedStrings.xml": []byte(sstXML)})
		got, err := ourRows(t, p, "S")

		// The same tokens whatever the reads' sizes.
		whole, err1 := tokens(bytes.NewReader(doc))
		bytewise, err2 := tokens(iotest.OneByteReader(bytes.NewReader(doc)))
		if whole != bytewise || (err1 == nil) != (err2 == nil) {
			t.Fatalf("tokens differ by read size:\n%s (%v)\n%s (%v)", whole, err1, bytewise, err2)
		}

		if !wellFormed(doc) || !wellFormed([]byte(sstXML)) || bytes.Contains(doc, []byte("<!")) && !bytes.Contains(doc, []byte("<![CDATA[")) || strings.Contains(sstXML, "<!") {
			return
		}
		wb, oerr := Open(p, Options{})
		if oerr != nil {
			t.Fatalf("a well-formed workbook does not open: %v", oerr)
		}
		wb.sharedStrings()
		nsst := len(wb.sst)
		wb.Close()
		if !regular(doc, nsst) {
			return
		}
		want, werr := excelizeRows(t, p, "S")
		if werr != nil {
			return
		}
		if err != nil {
			t.Fatalf("excelize reads this sheet, this package refuses it: %v\nexcelize: %v", err, want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("values differ from excelize:\n got %v\nwant %v", got, want)
		}
	})
}
