package table_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/ingest/table"
)

// replaceSheet copies a workbook, writing its first sheet's XML with fn
// and adding raw parts (name -> compressed deflate bytes, declared size).
func replaceSheet(t testing.TB, base []byte, fn func(w io.Writer), raw map[string]rawPart) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	for _, zf := range zr.File {
		w, _ := zw.Create(zf.Name)
		if zf.Name == "xl/worksheets/sheet1.xml" && fn != nil {
			bw := bufio.NewWriterSize(w, 1<<20)
			fn(bw)
			bw.Flush()
			continue
		}
		rc, _ := zf.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	for name, p := range raw {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: p.crc, CompressedSize64: uint64(len(p.data)), UncompressedSize64: p.size})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

type rawPart struct {
	data []byte
	crc  uint32
	size uint64
}

// zeros64M is a real deflate stream of 64 MiB of zeros (about 64 kB).
func zeros64M() rawPart {
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	z := make([]byte, 1<<20)
	crc := crc32.NewIEEE()
	for i := 0; i < 64; i++ {
		fw.Write(z)
		crc.Write(z)
	}
	fw.Close()
	return rawPart{comp.Bytes(), crc.Sum32(), 64 << 20}
}

// A zip bomb with the real limits: 17 parts of 64 MiB of zeros (1.06 GiB,
// about 1 MB on disk) refused at once by the declared sizes, before
// excelize reads (and holds in memory) the parts below the limit.
func TestXLSXZipBombRealLimits(t *testing.T) {
	p := zeros64M()
	parts := map[string]rawPart{}
	for i := 1; i <= 17; i++ {
		parts[fmt.Sprintf("xl/media/image%d.png", i)] = p
	}
	data := replaceSheet(t, manifestBook(t), nil, parts)
	start := time.Now()
	_, err := table.Open("bomba.xlsx", data, manifest)
	var fe *table.FileError
	if !errors.As(err, &fe) || fe.Code != table.CodeTooBig {
		t.Fatalf("error %v, want %s", err, table.CodeTooBig)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("refusing the bomb took %v", el)
	}
}

// Merged cells: only the top-left cell holds the value, the others read
// empty (the row is then refused by its reader for the missing value).
func TestXLSXMergedCells(t *testing.T) {
	data := workbook(t, func(f *excelize.File) {
		put(f, "Sheet1", 1, hdrCells...)
		put(f, "Sheet1", 2, "058091", "SC1", "RSSMRA68A01H501Y", "14/03/2025", "CCCFBA85D03L219P")
		put(f, "Sheet1", 3, nil, "SC2", "MRTMRA83T56A269B", nil, "CCCFBA85D03L219P")
		must(f.MergeCell("Sheet1", "A2", "A3"))
		must(f.MergeCell("Sheet1", "D2", "D3"))
		must(f.MergeCell("Sheet1", "A5", "E5")) // a merged title row below: one cell
		must(f.SetCellValue("Sheet1", "A5", "Totale consegne: 2"))
	})
	tb, err := table.Open("unite.xlsx", data, manifest)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dump(tb), " / "); got != "2:058091|SC1|RSSMRA68A01H501Y|14/03/2025|CCCFBA85D03L219P| / 3:|SC2|MRTMRA83T56A269B||CCCFBA85D03L219P| / 5:Totale consegne: 2|||||" {
		t.Errorf("rows = %s", got)
	}
}

// A sheet of 2 million rows (hand-written XML streamed into the zip) is
// refused by the row cap once it is passed, without decoding the rest
// (excelize would fail anyway past row 1,048,576, Excel's last).
func TestXLSXMillionsOfRows(t *testing.T) {
	if testing.Short() {
		t.Skip("2 million rows: not in -short")
	}
	const rows = 2_000_000
	data := replaceSheet(t, manifestBook(t), func(w io.Writer) {
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">`)
		for j, c := range hdrCells {
			fmt.Fprintf(w, `<c r="%c1" t="inlineStr"><is><t>%s</t></is></c>`, 'A'+j, c)
		}
		fmt.Fprint(w, `</row>`)
		for r := 2; r <= rows+1; r++ {
			fmt.Fprintf(w, `<row r="%d"><c r="A%d"><v>58091</v></c><c r="B%d"><v>%d</v></c></row>`, r, r, r, r)
		}
		fmt.Fprint(w, `</sheetData></worksheet>`)
	}, nil)
	start := time.Now()
	_, err := table.Open("due-milioni.xlsx", data, table.Options{Required: manifest.Required, MaxRows: 500_000})
	el := time.Since(start)
	t.Logf("%d bytes, refused in %v: %v", len(data), el.Round(time.Millisecond), err)
	var fe *table.FileError
	if !errors.As(err, &fe) || fe.Code != table.CodeTooMany || !strings.Contains(fe.Message, "più di 500000 righe") {
		t.Fatalf("error %v, want %s", err, table.CodeTooMany)
	}
}
