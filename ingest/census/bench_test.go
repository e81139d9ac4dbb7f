package census_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/xuri/excelize/v2"

	"anprsec/config"
	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/ingest/census/censusgen"
	"anprsec/ingest/xlsx"
	"anprsec/istat"
	"anprsec/secret"
	"anprsec/store"
)

// The Italy-scale workbook: all 7,904 comuni, about 100,000 user rows.
// Set ANPRSEC_BENCH_WORKBOOK to reuse a generated file.
var (
	italyOnce sync.Once
	italyPath string
	italyErr  error
)

func italy(b *testing.B) string {
	italyOnce.Do(func() {
		if p := os.Getenv("ANPRSEC_BENCH_WORKBOOK"); p != "" {
			italyPath = p
			return
		}
		dir, err := os.MkdirTemp("", "anprsec-bench-")
		if err != nil {
			italyErr = err
			return
		}
		italyPath = filepath.Join(dir, "italia.xlsx")
		_, italyErr = censusgen.WriteFile(italyPath, censusgen.Options{Seed: 1})
	})
	if italyErr != nil {
		b.Fatal(italyErr)
	}
	return italyPath
}

// BenchmarkRawRows is the baseline: excelize's Rows iterator with raw
// values over both sheets of the workbook, doing nothing with the cells.
func BenchmarkRawRows(b *testing.B) {
	p := italy(b)
	for b.Loop() {
		f, err := excelize.OpenFile(p, excelize.Options{RawCellValue: true})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, sheet := range []string{"Utenti", "Postazioni"} {
			rows, err := f.Rows(sheet)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				cols, err := rows.Columns()
				if err != nil {
					b.Fatal(err)
				}
				n += len(cols)
			}
			rows.Close()
		}
		f.Close()
	}
}

// BenchmarkXLSXRows is the census's own reader (ingest/xlsx) doing what
// the baseline does.
func BenchmarkXLSXRows(b *testing.B) {
	p := italy(b)
	for b.Loop() {
		wb, err := xlsx.Open(p, xlsx.Options{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, sheet := range []string{"Utenti", "Postazioni"} {
			rows, err := wb.Rows(sheet)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				n += len(rows.Columns())
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			rows.Close()
		}
		wb.Close()
	}
}

// BenchmarkIngestItaly is the whole census ingest of the Italy-scale
// workbook into an empty store: read, validate, comune rules, commit in
// chunks with history, receipt, move.
func BenchmarkIngestItaly(b *testing.B) {
	p := italy(b)
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Key: bytes.Repeat([]byte{1}, secret.KeySize)})
		if err != nil {
			b.Fatal(err)
		}
		d, _ := drop.NewLocal(filepath.Join(dir, "drop"))
		os.MkdirAll(filepath.Join(dir, "drop", "censimento"), 0o755)
		os.WriteFile(filepath.Join(dir, "drop", "censimento", "italia.xlsx"), data, 0o644)
		in := &ingest.Inbox{Drop: d, Store: st, Kind: "ingest-censimento", Dir: "censimento", Exts: []string{".xlsx"},
			MaxSize: 1 << 30, SpoolDir: filepath.Join(dir, "spool")}
		def := config.Default(dir)
		g := &census.Ingester{Store: st, Comuni: istat.Default(), ChunkRows: def.Census.ChunkRows, MaxRows: def.Census.MaxRows, CardPrefix: def.Cards.SerialPrefix}
		b.StartTimer()
		res, err := in.Run(context.Background(), g.Process)
		if err != nil || res.RowsOK < 100000 {
			b.Fatalf("ingest: %+v, %v", res, err)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}
