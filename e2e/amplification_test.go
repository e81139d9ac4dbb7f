package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/store"
)

// TestAmplificationWorkbookCostsBoundedMemoryAndStore: a request workbook
// of a few kilobytes whose Operazione and Operatore cells of 300 rows all
// point to one shared string of 1 MiB is refused row by row at a bounded
// cost: the anprsec process peaks well under the memory such a file used
// to take (about 670 MB), the store grows by a few megabytes at most, and a
// second run reads nothing (the file is not retried).
func TestAmplificationWorkbookCostsBoundedMemoryAndStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	peak, growth, size, out := ingestRequestWorkbook(t, strings.Repeat("A", 1<<20))
	t.Logf("workbook of %d bytes, 300 rows of two 1 MiB values: peak RSS %d MB, store grew by %d KB", size, peak>>20, growth>>10)
	if !strings.Contains(out, "rows_refused=300") {
		t.Errorf("not every row refused:\n%s", tail(out, 1000))
	}
	if peak > 300<<20 {
		t.Errorf("peak RSS %d MB for a %d-byte workbook, want under 300 MB", peak>>20, size)
	}
	if growth > 20<<20 {
		t.Errorf("the store grew by %d bytes, want under 20 MiB", growth)
	}
}

// BenchmarkAmplificationWorkbook reports the peak RSS of `jobs run
// ingest-richieste` on the amplification workbook (300 rows whose cells
// share one 1 MiB string) as a ratio of the same run on a workbook of 300
// ordinary rows, measured in the same run.
func BenchmarkAmplificationWorkbook(b *testing.B) {
	var huge, plain int64
	for i := 0; i < b.N; i++ {
		p1, _, _, _ := ingestRequestWorkbook(b, strings.Repeat("A", 1<<20))
		p0, _, _, _ := ingestRequestWorkbook(b, "BLOCCA_POSTAZIONE")
		huge, plain = p1, p0
	}
	b.ReportMetric(float64(huge>>20), "MB-peak-amplification")
	b.ReportMetric(float64(plain>>20), "MB-peak-baseline")
	b.ReportMetric(float64(huge)/float64(plain), "ratio")
}

// ingestRequestWorkbook censuses a comune in a new working directory, drops
// a request workbook of 300 rows whose Operazione and Operatore cells hold
// value, and runs ingest-richieste once; it returns the process's peak RSS,
// the store's growth, the workbook's size and the command's output, and
// checks that a second run reads nothing.
func ingestRequestWorkbook(t testing.TB, value string) (peak, growth, size int64, out string) {
	t.Helper()
	bin := binary(t)
	base := t.TempDir()
	gen := &workdir{t: t, bin: bin, dir: base}
	wbPath := filepath.Join(base, "small.xlsx")
	gen.run("gen", "censimento", "--comuni", "1", "--users", "10", "-o", wbPath)
	workbook, err := os.ReadFile(wbPath)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkdir(t, bin, filepath.Join(base, "w"), workbook)
	w.run("jobs", "run", "ingest-censimento")
	// The size of the rows is what is measured: unsigned files reach them
	// (a signed file naming another operator is refused whole at once).
	w.editConfig(map[string]string{"  # is then whatever the file says).\n  require_signature: true": "  # is then whatever the file says).\n  require_signature: false"})
	var istat string
	st := w.openStore(false)
	st.View(func(tx *store.Tx) error {
		return tx.Comuni(func(c *domain.Comune) error { istat = c.ISTAT; return nil })
	})
	st.Close()
	if istat == "" {
		t.Fatal("no comune censused")
	}

	huge := value
	f := excelize.NewFile()
	f.SetSheetRow("Sheet1", "A1", &[]any{"Operazione", "Operatore", "Codice postazione"})
	for r := 2; r <= 301; r++ {
		f.SetSheetRow("Sheet1", fmt.Sprintf("A%d", r), &[]any{huge, huge, "x"})
	}
	dir := w.path("var/drop/comuni/" + istat + "/richieste")
	os.MkdirAll(dir, 0o755)
	if err := f.SaveAs(filepath.Join(dir, "r.xlsx")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "r.xlsx"))
	before := dirSize(t, w.path("var/data"))

	cmd := w.command(nil, "jobs", "run", "ingest-richieste")
	o, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ingest-richieste: %v\n%s", err, tail(string(o), 2000))
	}
	peak = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	growth = dirSize(t, w.path("var/data")) - before
	stdout, _ := w.run("jobs", "run", "ingest-richieste")
	if strings.Contains(stdout, "rows_refused") || strings.Contains(stdout, "rows_ok") {
		t.Errorf("the file was read again: %s", stdout)
	}
	return peak, growth, fi.Size(), string(o)
}

func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			var st syscall.Stat_t
			if syscall.Stat(p, &st) == nil {
				n += st.Blocks * 512 // allocated, not apparent: Badger's files are sparse
				return nil
			}
			n += fi.Size()
		}
		return nil
	})
	return n
}
