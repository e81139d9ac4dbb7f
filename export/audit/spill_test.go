package audit

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/xuri/excelize/v2"
)

func TestThisExcelizeKeepsAStreamedSheetWhereSpillFindsIt(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := sheetBuffer(sw); !ok {
		t.Fatal("excelize no longer keeps a streamed sheet's rows in StreamWriter.rawData{buf, tmp, tmpDir}: spill does nothing, update sheetBuffer")
	}
}

func TestASpilledSheetHoldsLittleMemoryAndReadsBackWhole(t *testing.T) {
	dir := t.TempDir()
	f := excelize.NewFile(excelize.Options{TmpDir: dir})
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	const rows = 40000
	row := make([]any, 8)
	for r := 1; r <= rows; r++ {
		for c := range row {
			row[c] = fmt.Sprintf("riga %d colonna %d con un testo abbastanza lungo", r, c)
		}
		cell, _ := excelize.CoordinatesToCellName(1, r)
		if err := sw.SetRow(cell, row); err != nil {
			t.Fatal(err)
		}
		if r%256 == 0 {
			if err := spill(sw); err != nil {
				t.Fatal(err)
			}
			if buf, _, _, _ := sheetBuffer(sw); buf.Cap() > 4*spillAt {
				t.Fatalf("after %d rows the sheet holds a buffer of %d bytes", r, buf.Cap())
			}
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.xlsx")
	if err := f.SaveAs(out); err != nil {
		t.Fatal(err)
	}
	g, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got, err := g.GetRows("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != rows {
		t.Fatalf("%d rows read back, want %d", len(got), rows)
	}
	for _, r := range []int{0, rows / 2, rows - 1} {
		if want := fmt.Sprintf("riga %d colonna 7 con un testo abbastanza lungo", r+1); got[r][7] != want {
			t.Errorf("row %d: %q, want %q", r+1, got[r][7], want)
		}
	}
}
