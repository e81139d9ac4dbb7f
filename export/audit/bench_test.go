package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/config"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/export/audit"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/ingest/census/censusgen"
	"anprsec/istat"
	"anprsec/secret"
	"anprsec/store"
)

// Benchmarks of the audit export (README, "Performance"), meant to run
// together, once:
//
//	go test -run '^$' -bench . -benchtime 1x ./export/audit/
//
// BenchmarkNationalExport is the national export (workbook and monthly
// CSVs) of an Italy-scale store: the census generator's 7,904 comuni and
// about 100,000 utenze, ingested by the census job, then most cards made
// ATTIVA and most certificates ATTIVO, some blocked or revoked, with dates
// over the period. BenchmarkRawStreamWriter writes the same number of rows
// and columns with excelize's StreamWriter and nothing else. The store is
// built once per process (ANPRSEC_BENCH_STORE=DIR reuses the store in DIR,
// building it there first when DIR does not exist);
// BenchmarkNationalExport also reports the peak RSS (VmHWM) of the export
// run alone in a child process.

var benchKey = bytes.Repeat([]byte{5}, secret.KeySize)

// benchNow is the clock of the benchmark store and exports.
var benchNow = time.Date(2026, 11, 20, 10, 0, 0, 0, rome)

var italy struct {
	once sync.Once
	root string // made by buildItaly, removed by TestMain
	dir  string // store directory
	res  audit.NationalFiles
	err  error
}

func italyStore(b *testing.B) string {
	italy.once.Do(func() {
		if d := os.Getenv("ANPRSEC_BENCH_STORE"); d != "" {
			italy.dir = d
			if _, err := os.Stat(d); os.IsNotExist(err) {
				// First run with this folder: build the store there and keep it.
				var built string
				if built, italy.err = buildItaly(); italy.err == nil {
					italy.err = os.Rename(built, d)
				}
			}
		} else {
			italy.dir, italy.err = buildItaly()
		}
		if italy.err != nil {
			return
		}
		// One export to learn the shape the baseline must write.
		st, err := openBench(italy.dir)
		if err != nil {
			italy.err = err
			return
		}
		defer st.Close()
		out, _ := os.MkdirTemp("", "anprsec-audit-shape-")
		defer os.RemoveAll(out)
		d, _ := drop.NewLocal(out)
		e := &audit.Exporter{Store: st, Target: d, TempDir: out, Location: rome, Now: func() time.Time { return benchNow }}
		italy.res, italy.err = e.National(context.Background(), audit.DefaultPeriod(benchNow, rome))
	})
	if italy.err != nil {
		b.Fatal(italy.err)
	}
	return italy.dir
}

func openBench(dir string) (*store.Store, error) {
	return store.Open(store.Options{Dir: dir, Key: benchKey, Now: func() time.Time { return benchNow }})
}

// buildItaly generates the census workbook, ingests it into a new store
// and moves cards and certificates along their lifecycles.
func buildItaly() (string, error) {
	root, err := os.MkdirTemp("", "anprsec-audit-bench-")
	if err != nil {
		return "", err
	}
	italy.root = root
	dropDir := filepath.Join(root, "drop")
	if err := os.MkdirAll(filepath.Join(dropDir, "censimento"), 0o755); err != nil {
		return "", err
	}
	if _, err := censusgen.WriteFile(filepath.Join(dropDir, "censimento", "italia.xlsx"), censusgen.Options{Seed: 1}); err != nil {
		return "", err
	}
	dir := filepath.Join(root, "data")
	// The census lands in October, a month and a half before the export.
	clock := time.Date(2026, 10, 5, 9, 0, 0, 0, rome)
	st, err := store.Open(store.Options{Dir: dir, Key: benchKey, Now: func() time.Time { return clock }})
	if err != nil {
		return "", err
	}
	defer st.Close()
	d, _ := drop.NewLocal(dropDir)
	in := &ingest.Inbox{Drop: d, Store: st, Kind: "ingest-censimento", Dir: "censimento", Exts: []string{".xlsx"},
		MaxSize: 1 << 30, SpoolDir: filepath.Join(root, "spool")}
	def := config.Default(root)
	g := &census.Ingester{Store: st, Comuni: istat.Default(), ChunkRows: def.Census.ChunkRows, MaxRows: def.Census.MaxRows,
		CardPrefix: def.Cards.SerialPrefix}
	res, err := in.Run(context.Background(), g.Process)
	if err != nil {
		return "", err
	}
	if res.RowsOK < 90000 {
		return "", fmt.Errorf("census ingest: %+v", res)
	}
	os.RemoveAll(dropDir)

	rng := rand.New(rand.NewPCG(1, 2))
	from := time.Date(2026, 10, 6, 0, 0, 0, 0, rome)
	span := benchNow.Sub(from)
	at := func() time.Time { return from.Add(time.Duration(rng.Int64N(int64(span)))) }
	var serials, codes []string
	err = st.View(func(tx *store.Tx) error {
		var err error
		if serials, err = tx.CardsInState(domain.CardRichiesta); err != nil {
			return err
		}
		codes, err = tx.PostazioniInState(domain.CertRichiesta)
		return err
	})
	if err != nil {
		return "", err
	}
	const chunk = 2000
	for i := 0; i < len(serials); i += chunk {
		clock = from.Add(span * time.Duration(i) / time.Duration(len(serials)+1))
		err := st.Update(func(tx *store.Tx) error {
			for _, s := range serials[i:min(i+chunk, len(serials))] {
				c, err := tx.Card(s)
				if err != nil {
					return err
				}
				switch r := rng.IntN(100); {
				case r < 8: // still in production
					c.State = domain.CardProduzione
				default:
					c.State = domain.CardAttiva
					c.Activated = at()
					c.Expires = c.Activated.AddDate(0, 0, 20+rng.IntN(6*365))
					if r < 10 {
						c.State = domain.CardBloccata
					}
				}
				c.Updated = clock
				if err := tx.PutCard(c); err != nil {
					return err
				}
				if err := tx.Record(store.Source{Actor: "prefettura " + c.ISTAT[:3]}, "smartcard.consegna", "smartcard", c.Serial,
					"stato "+string(c.State)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	for i := 0; i < len(codes); i += chunk {
		clock = from.Add(span * time.Duration(i) / time.Duration(len(codes)+1))
		err := st.Update(func(tx *store.Tx) error {
			for _, code := range codes[i:min(i+chunk, len(codes))] {
				p, err := tx.Postazione(code)
				if err != nil {
					return err
				}
				p.State = domain.CertAttivo
				p.Serial = strconv.FormatUint(rng.Uint64(), 16)
				p.NotAfter = at().AddDate(0, 0, 10+rng.IntN(3*365))
				p.Updated = at()
				switch r := rng.IntN(100); {
				case r < 2:
					p.State, p.RevokedAt = domain.CertRevocato, at()
				case r < 4:
					p.State, p.HoldSince = domain.CertBloccato, at()
				}
				if err := tx.PutPostazione(p); err != nil {
					return err
				}
				if err := tx.Record(store.Source{Actor: "certificati"}, "postazione.attiva", "postazione", p.Code, "seriale "+p.Serial); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return dir, nil
}

// exportOnce runs the national export of the store in dir into a fresh
// folder.
func exportOnce(dir, out string) (audit.NationalFiles, error) {
	st, err := openBench(dir)
	if err != nil {
		return audit.NationalFiles{}, err
	}
	defer st.Close()
	d, err := drop.NewLocal(out)
	if err != nil {
		return audit.NationalFiles{}, err
	}
	e := &audit.Exporter{Store: st, Target: d, TempDir: out, Location: rome, Now: func() time.Time { return benchNow }}
	return e.National(context.Background(), audit.DefaultPeriod(benchNow, rome))
}

func BenchmarkNationalExport(b *testing.B) {
	dir := italyStore(b)
	st, err := openBench(dir)
	if err != nil {
		b.Fatal(err)
	}
	var res audit.NationalFiles
	for b.Loop() {
		b.StopTimer()
		out := b.TempDir()
		d, _ := drop.NewLocal(out)
		e := &audit.Exporter{Store: st, Target: d, TempDir: out, Location: rome, Now: func() time.Time { return benchNow }}
		b.StartTimer()
		res, err = e.National(context.Background(), audit.DefaultPeriod(benchNow, rome))
		if err != nil {
			b.Fatal(err)
		}
	}
	st.Close()
	b.ReportMetric(float64(res.Utenze), "utenze")
	b.ReportMetric(float64(res.Anomalie), "anomalie")
	b.ReportMetric(float64(res.Storico), "storico")

	// Peak RSS of the export alone, in a child process (this one holds
	// the generator's and the ingest's memory): with Go's default GC, and
	// with a soft memory limit of 150 MiB (GOMEMLIMIT).
	for _, m := range []struct{ limit, unit string }{{"off", "peak-RSS-MB"}, {"150MiB", "peak-RSS-MB-memlimit150"}} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestNationalExportChild$", "-test.v")
		cmd.Env = append(os.Environ(), "ANPRSEC_AUDIT_CHILD="+dir, "GOMEMLIMIT="+m.limit)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "VmHWM-kB "); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				b.ReportMetric(kb/1024, m.unit)
			}
		}
	}
}

// BenchmarkComuniExport is the weekly per-comune part of export-audit:
// the user/authorization list (xlsx and CSV) and the workstation list of
// every comune of the Italy-scale store, 7,904 × 3 files written through a
// local drop (each under a temporary name, synced, renamed). "one-by-one"
// is the baseline, one comune after the other as earlier versions did;
// "Comuni" is the job's call, on all cores. Reported: comuni per second.
func BenchmarkComuniExport(b *testing.B) {
	dir := italyStore(b)
	st, err := openBench(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var codes []string
	st.View(func(tx *store.Tx) error {
		return tx.Comuni(func(c *domain.Comune) error {
			codes = append(codes, c.ISTAT)
			return nil
		})
	})
	for _, mode := range []string{"baseline=one-by-one", "Comuni"} {
		b.Run(mode, func(b *testing.B) {
			n := 0
			for b.Loop() {
				b.StopTimer()
				out := b.TempDir()
				d, _ := drop.NewLocal(out)
				e := &audit.Exporter{Store: st, Target: d, TempDir: out, Location: rome, Now: func() time.Time { return benchNow }}
				b.StartTimer()
				if mode == "Comuni" {
					res, err := e.Comuni(context.Background())
					if err != nil || res.Failed > 0 {
						b.Fatal(err, res.Err)
					}
					n += res.Comuni
					continue
				}
				for _, c := range codes {
					if _, err := e.Comune(context.Background(), c); err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "comuni/s")
		})
	}
}

// TestNationalExportChild is the child of BenchmarkNationalExport: it runs
// one national export and prints its peak RSS.
func TestNationalExportChild(t *testing.T) {
	dir := os.Getenv("ANPRSEC_AUDIT_CHILD")
	if dir == "" {
		t.Skip("only as the child of BenchmarkNationalExport")
	}
	if _, err := exportOnce(dir, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Println("VmHWM-kB", strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
		// What the resident memory is made of at the end (anonymous: the
		// Go heap; file: Badger's memory-mapped tables and value log).
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "RssAnon:") || strings.HasPrefix(line, "RssFile:") {
			fmt.Println(strings.Join(strings.Fields(line), " "))
		}
	}
}

// BenchmarkRawStreamWriter is the baseline: excelize's StreamWriter
// writing as many rows and columns as the national workbook's streamed
// sheets (short text cells), saved to a file.
func BenchmarkRawStreamWriter(b *testing.B) {
	italyStore(b)
	r := italy.res
	sheets := []struct {
		name       string
		rows, cols int
	}{
		{audit.AnomaliesSheet, r.Anomalie + 1, 7},
		{audit.NationalUsers, r.Utenze + 1, 13},
		{audit.HistorySheet, r.Storico + 1, 9},
	}
	for b.Loop() {
		out := b.TempDir()
		f := excelize.NewFile(excelize.Options{TmpDir: out})
		for _, s := range sheets {
			if _, err := f.NewSheet(s.name); err != nil {
				b.Fatal(err)
			}
			sw, err := f.NewStreamWriter(s.name)
			if err != nil {
				b.Fatal(err)
			}
			row := make([]any, s.cols)
			for i := 1; i <= s.rows; i++ {
				for j := range row {
					row[j] = "VALORE" + strconv.Itoa(i%1000)
				}
				cell, _ := excelize.CoordinatesToCellName(1, i)
				if err := sw.SetRow(cell, row); err != nil {
					b.Fatal(err)
				}
			}
			if err := sw.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.SaveAs(filepath.Join(out, "raw.xlsx")); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if italy.root != "" {
		os.RemoveAll(italy.root)
	}
	os.Exit(code)
}
