package table_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/ingest/table"
)

// workbook builds an xlsx in memory: build fills the file (its first sheet
// is "Sheet1").
func workbook(t testing.TB, build func(f *excelize.File)) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	build(f)
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// put writes values in row r of sheet from column A.
func put(f *excelize.File, sheet string, r int, values ...any) {
	if err := f.SetSheetRow(sheet, fmt.Sprintf("A%d", r), &values); err != nil {
		panic(err)
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

var hdrCells = []any{"Codice ISTAT", "Seriale", "Codice Fiscale", "Data consegna", "Ritirata da"}

// manifestBook is a typical manifest as a spreadsheet program writes it:
// the ISTAT code as a number, a date cell, a formula with a cached value.
func manifestBook(t testing.TB) []byte {
	return workbook(t, func(f *excelize.File) {
		must(f.SetSheetName("Sheet1", "Consegne"))
		put(f, "Consegne", 1, hdrCells...)
		put(f, "Consegne", 2, 58091, "SC0001", "RSSMRA68A01H501Y", time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), "CCCFBA85D03L219P")
		// row 3 left empty
		put(f, "Consegne", 4, "058091", nil, "MRTMRA83T56A269B", "15/03/2025", "CCCFBA85D03L219P")
		must(f.SetCellInt("Consegne", "B4", 7)) // cached value of the formula below
		must(f.SetCellFormula("Consegne", "B4", "1+1"))
	})
}

func TestXLSX(t *testing.T) {
	manifestWant := []string{
		"2:58091|SC0001|RSSMRA68A01H501Y|45730|CCCFBA85D03L219P|",
		"4:058091|7|MRTMRA83T56A269B|15/03/2025|CCCFBA85D03L219P|",
	}
	big := workbook(t, func(f *excelize.File) {
		put(f, "Sheet1", 1, hdrCells...)
		for r := 2; r <= 13; r++ {
			put(f, "Sheet1", r, 58091, fmt.Sprintf("SC%04d", r), "RSSMRA68A01H501Y", "14/03/2025", "CCCFBA85D03L219P")
		}
	})
	var encrypted bytes.Buffer
	{
		f := excelize.NewFile()
		put(f, "Sheet1", 1, hdrCells...)
		if _, err := f.WriteTo(&encrypted, excelize.Options{Password: "segreta"}); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	var notBook bytes.Buffer
	{
		zw := zip.NewWriter(&notBook)
		w, _ := zw.Create("leggimi.txt")
		w.Write([]byte("non sono un foglio"))
		zw.Close()
	}
	cases := []tableCase{
		{name: "numbers, date, formula, blank row", data: manifestBook(t), want: manifestWant},
		{name: "hidden first sheet is skipped", data: workbook(t, func(f *excelize.File) {
			must(f.SetSheetName("Sheet1", "Istruzioni"))
			put(f, "Istruzioni", 1, "Compilare il foglio Consegne")
			_, err := f.NewSheet("Consegne")
			must(err)
			put(f, "Consegne", 1, hdrCells...)
			put(f, "Consegne", 2, "058091", "SC0001", "RSSMRA68A01H501Y", "14/03/2025", "CCCFBA85D03L219P")
			f.SetActiveSheet(1)
			must(f.SetSheetVisible("Istruzioni", false))
		}), want: []string{"2:058091|SC0001|RSSMRA68A01H501Y|14/03/2025|CCCFBA85D03L219P|"}},
		{name: "sheet chosen by name", opt: &table.Options{Required: manifest.Required, Optional: manifest.Optional, Sheet: "CONSEGNE"},
			data: workbook(t, func(f *excelize.File) {
				must(f.SetSheetName("Sheet1", "Riepilogo"))
				put(f, "Riepilogo", 1, "Totale", 1)
				_, err := f.NewSheet("Consegne")
				must(err)
				put(f, "Consegne", 1, hdrCells...)
				put(f, "Consegne", 2, "058091", "SC0009", "RSSMRA68A01H501Y", "14/03/2025", "CCCFBA85D03L219P")
			}), want: []string{"2:058091|SC0009|RSSMRA68A01H501Y|14/03/2025|CCCFBA85D03L219P|"}},
		{name: "header lower down, gaps, ragged, extra cell", data: workbook(t, func(f *excelize.File) {
			put(f, "Sheet1", 3, append([]any{nil}, hdrCells...)...) // header from column B
			put(f, "Sheet1", 5, nil, 58091, "SC1")
			put(f, "Sheet1", 9, nil, 58091, "SC2", "RSSMRA68A01H501Y", 45730, "CCCFBA85D03L219P", nil, "nota a margine")
		}), header: 3, want: []string{"5:58091|SC1||||", "9:58091|SC2|RSSMRA68A01H501Y|45730|CCCFBA85D03L219P| !CELLA_FUORI_INTESTAZIONE"}},

		{name: "named sheet missing", opt: &table.Options{Required: manifest.Required, Sheet: "Consegne"}, data: workbook(t, func(f *excelize.File) {
			put(f, "Sheet1", 1, hdrCells...)
		}), code: table.CodeSheet, msg: []string{`"Consegne"`, `"Sheet1"`}},
		{name: "missing column names the sheet", data: workbook(t, func(f *excelize.File) {
			put(f, "Sheet1", 2, "Codice ISTAT", "Seriale")
		}), code: table.CodeHeader, msg: []string{`foglio "Sheet1"`, "riga 2", `"Codice Fiscale"`}},
		{name: "empty sheet", data: workbook(t, func(f *excelize.File) {}), code: table.CodeHeader, msg: []string{"vuoto"}},
		{name: "over max rows", opt: &table.Options{Required: manifest.Required, MaxRows: 10}, data: big,
			code: table.CodeTooMany, msg: []string{"più di 10 righe"}},
		{name: "not a zip", data: []byte("\x00\x01\x02binary garbage\xff"), code: table.CodeFormat, msg: []string{"non è un archivio zip"}},
		{name: "a CSV named .xlsx", data: []byte(hdr + "\n058091;SC1;x;y;z\n"), code: table.CodeFormat, msg: []string{"testo", ".csv"}},
		{name: "empty file", data: nil, code: table.CodeFormat, msg: []string{"vuoto"}},
		{name: "truncated workbook", data: manifestBook(t)[:2000], code: table.CodeFormat, msg: []string{"danneggiata"}},
		{name: "zip that is not a workbook", data: notBook.Bytes(), code: table.CodeFormat},
		{name: "xls", data: []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + strings.Repeat("\x00", 600)), code: table.CodeFormat, msg: []string{".xls"}},
		{name: "password-protected", data: encrypted.Bytes(), code: table.CodeProtected, msg: []string{"password"}},
	}
	for _, c := range cases {
		c.file = "consegne.XLSX"
		t.Run(c.name, func(t *testing.T) { check(t, c) })
	}
}

func TestXLSXDetails(t *testing.T) {
	tb, err := table.Open("c.xlsx", manifestBook(t), manifest)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Format != "xlsx" || tb.Sheet != "Consegne" || tb.Date1904 {
		t.Errorf("format %q sheet %q date1904 %v", tb.Format, tb.Sheet, tb.Date1904)
	}
	d, err := tb.Rows[0].Date("Data consegna")
	if err != nil || !d.Equal(time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date cell: %v %v", d, err)
	}
	if w := tb.Rows[0].Where("Data consegna"); w != "colonna D (Data consegna)" {
		t.Errorf("Where = %q", w)
	}

	// A workbook counting dates from 1904 (old Mac Excel).
	b1904 := workbook(t, func(f *excelize.File) {
		yes := true
		must(f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &yes}))
		put(f, "Sheet1", 1, hdrCells...)
		put(f, "Sheet1", 2, 58091, "SC1", "RSSMRA68A01H501Y", 44268, "CCCFBA85D03L219P")
	})
	tb, err = table.Open("c.xlsx", b1904, manifest)
	if err != nil {
		t.Fatal(err)
	}
	d, err = tb.Rows[0].Date("Data consegna")
	if !tb.Date1904 || err != nil || !d.Equal(time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("1904 workbook: date1904 %v, %v %v", tb.Date1904, d, err)
	}
}

// A workbook that expands beyond the limit is refused before it is read.
func TestXLSXZipBomb(t *testing.T) {
	data := workbook(t, func(f *excelize.File) {
		put(f, "Sheet1", 1, hdrCells...)
		for r := 2; r < 100; r++ {
			put(f, "Sheet1", r, strings.Repeat("A", 30000)+fmt.Sprint(r))
		}
	})
	if len(data) > 200<<10 {
		t.Fatalf("test workbook is %d bytes: not a bomb", len(data))
	}
	defer table.SetUnzipLimit(1 << 20)()
	_, err := table.Open("b.xlsx", data, manifest)
	var fe *table.FileError
	if !errors.As(err, &fe) || fe.Code != table.CodeTooBig {
		t.Fatalf("error %v, want %s", err, table.CodeTooBig)
	}
}

func TestDate(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		in   string
		want time.Time // zero: an error
	}{
		{"14/03/2025", day(2025, 3, 14)},
		{"4/3/2025", day(2025, 3, 4)},
		{" 2025-03-14 ", day(2025, 3, 14)},
		{"14-03-2025", day(2025, 3, 14)},
		{"14.03.2025", day(2025, 3, 14)},
		{"2025-03-14T23:30:00+01:00", day(2025, 3, 14)},
		{"45730", day(2025, 3, 14)},
		{"45730.75", day(2025, 3, 14)},
		{"1", day(1900, 1, 1)},
		{"61", day(1900, 3, 1)},
		{"31/02/2025", time.Time{}},
		{"2025/03/14", time.Time{}},
		{"14/03/25", time.Time{}},
		{"0", time.Time{}},
		{"-5", time.Time{}},
		{"NaN", time.Time{}},
		{"1e300", time.Time{}},
		{"", time.Time{}},
		{"domani", time.Time{}},
	} {
		got, err := table.Date(c.in)
		if c.want.IsZero() {
			if err == nil {
				t.Errorf("Date(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(c.want) {
			t.Errorf("Date(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// TestXLSXBrokenSheet: a manifest whose sheet XML breaks after its first
// rows is refused whole, naming the problem. (excelize stopped reading at
// the syntax error without a word: the rows after it were lost and the
// file was accepted.)
func TestXLSXBrokenSheet(t *testing.T) {
	const sheetPart = "xl/worksheets/sheet1.xml"
	base := manifestBook(t)
	sheet := string(zipPart(t, base, sheetPart))
	end := strings.Index(sheet, "</sheetData>")
	broken := sheet[:end] + `<row r="90"><c r="A90"><v>1</c></row>` + sheet[end:]
	tb, err := table.Open("m.xlsx", rezip(t, base, map[string][]byte{sheetPart: []byte(broken)}), table.Options{Required: []string{"Codice ISTAT"}})
	var fe *table.FileError
	if !errors.As(err, &fe) || fe.Code != table.CodeFormat || !strings.Contains(fe.Message, "XML non valido") {
		t.Fatalf("a sheet broken at row 90: table %v, error %v", tb, err)
	}
}

// TestXLSXValueFarRight: a value far right of the header (column XFD) is
// refused on its row, naming its column, without the row being held as
// 16,384 cells; a row holding only such a value is a row, not a blank.
func TestXLSXValueFarRight(t *testing.T) {
	const sheetPart = "xl/worksheets/sheet1.xml"
	base := manifestBook(t)
	sheet := string(zipPart(t, base, sheetPart))
	end := strings.Index(sheet, "</sheetData>")
	far := sheet[:end] + `<row r="90"><c r="XFD90" t="inlineStr"><is><t>lontano</t></is></c></row>` + sheet[end:]
	tb, err := table.Open("m.xlsx", rezip(t, base, map[string][]byte{sheetPart: []byte(far)}), table.Options{Required: []string{"Codice ISTAT"}})
	if err != nil {
		t.Fatal(err)
	}
	last := tb.Rows[len(tb.Rows)-1]
	if last.Line != 90 || last.Err == nil || last.Err.Code != table.CodeExtraCell || !strings.Contains(last.Err.Message, "colonna XFD") {
		t.Errorf("row %d: %+v, want CELLA_FUORI_INTESTAZIONE naming column XFD", last.Line, last.Err)
	}
	if len(last.Cells) > 64 {
		t.Errorf("the row is held as %d cells", len(last.Cells))
	}
}

// TestXLSXValueRightOfHeaderAfterBlankCell: a row with a value right of the
// header is refused on its row (CELLA_FUORI_INTESTAZIONE), naming the
// value's column, whatever blank cells (a space included) stand between the
// header and that value.
func TestXLSXValueRightOfHeaderAfterBlankCell(t *testing.T) {
	data := workbook(t, func(f *excelize.File) {
		put(f, "Sheet1", 1, hdrCells...)
		put(f, "Sheet1", 2, "058091", "SC0001", "RSSMRA68A01H501Y", "14/03/2025", "CCCFBA85D03L219P")
		must(f.SetCellStr("Sheet1", "G2", " "))
		must(f.SetCellStr("Sheet1", "H2", "lontano"))
	})
	tb, err := table.Open("m.xlsx", data, table.Options{Required: []string{"Codice ISTAT"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(tb.Rows))
	}
	r := tb.Rows[0]
	if r.Err == nil || r.Err.Code != table.CodeExtraCell || !strings.Contains(r.Err.Message, "colonna H") {
		t.Errorf("row 2 with \"lontano\" in column H (a space in G): error %+v, want CELLA_FUORI_INTESTAZIONE naming column H", r.Err)
	}
}
