package jobs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xuri/excelize/v2"

	"anprsec/ingest/esito"
	"anprsec/internal/ziptest"
	"anprsec/store"
)

// diskUsage is the space the files under dir take on disk (allocated
// blocks: Badger's files are sparse, their length says little).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && !fi.IsDir() {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// amplificationXLSX is a request workbook of a few KB whose Operazione and
// Operatore cells, in rows data rows, all name one shared string of size
// bytes.
func amplificationXLSX(t *testing.T, rows, size int) []byte {
	t.Helper()
	const placeholder = "SEGNAPOSTO"
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "Richieste")
	f.SetSheetRow("Richieste", "A1", &[]any{"Operazione", "Operatore", "Codice Fiscale"})
	for i := 2; i <= rows+1; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, i)
		f.SetSheetRow("Richieste", cell, &[]any{placeholder, placeholder})
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sst := ziptest.Part(t, buf.Bytes(), "xl/sharedStrings.xml")
	big := bytes.Replace(sst, []byte(">"+placeholder+"<"), []byte(">"+strings.Repeat("A", size)+"<"), 1)
	if bytes.Equal(big, sst) {
		t.Fatalf("no %s in the shared strings: %s", placeholder, sst)
	}
	return ziptest.Rezip(t, buf.Bytes(), map[string][]byte{"xl/sharedStrings.xml": big})
}

// amplificationCSV is the CSV twin: rows rows whose Operazione and
// Operatore cells hold size bytes each (a CSV cannot share a string, so
// its values are as large as the drop's file size limit allows).
func amplificationCSV(rows, size int) []byte {
	var b bytes.Buffer
	b.WriteString("Operazione;Operatore;Codice Fiscale\n")
	v := strings.Repeat("A", size)
	for range rows {
		b.WriteString(v + ";" + v + ";\n")
	}
	return b.Bytes()
}

// A request file whose every row carries huge values is refused row by
// row, and what each row adds to the history and to the receipt is
// bounded by a small constant, not by the values: the history records
// them cut, with their length and a hash. Before the bound, the 5 KB
// workbook made the store grow by about 600 MB.
func TestHugeValuesCostABoundedHistoryAndReceipt(t *testing.T) {
	const rows = 300
	for _, tc := range []struct {
		name string
		data func(t *testing.T) []byte
		size int // bytes of each huge value
	}{
		{"r.xlsx", func(t *testing.T) []byte { return amplificationXLSX(t, rows, 1<<20) }, 1 << 20},
		{"r.csv", func(t *testing.T) []byte { return amplificationCSV(rows, 64<<10) }, 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCertEnv(t)
			matrixStore(t, c, matrixPeople)
			// The rows themselves are what is measured: an unsigned file
			// reaches them (a signed one whose Operatore cells are not the
			// signer's CF is refused whole before any row).
			c.env.Config.Richieste.RequireSignature = false
			data := tc.data(t)
			c.drop("comuni/"+comA+"/richieste/"+tc.name, string(data))
			dataDir := filepath.Join(filepath.Dir(c.root), "data")
			if err := c.env.Store.Sync(); err != nil {
				t.Fatal(err)
			}
			before := diskUsage(t, dataDir)
			counts, err := c.run(richiesteJob)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.env.Store.Sync(); err != nil {
				t.Fatal(err)
			}
			growth := diskUsage(t, dataDir) - before
			t.Logf("%s: file %d bytes, %d rows of two %d-byte values: store grew by %d bytes", tc.name, len(data), rows, tc.size, growth)
			if counts["rows_refused"] != rows || counts["rows_ok"] != 0 {
				t.Fatalf("counts %v, want %d rows refused", counts, rows)
			}
			if growth > 20<<20 {
				t.Errorf("the store grew by %d bytes for %d refused rows, want less than 20 MiB", growth, rows)
			}

			receipt, err := os.ReadFile(filepath.Join(c.root, "comuni", comA, "richieste", "esiti", tc.name+".esito.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if len(receipt) > rows*(esito.MaxMessage+512) {
				t.Errorf("receipt of %d bytes for %d rows", len(receipt), rows)
			}
			if got := c.receipt("comuni/" + comA + "/richieste/esiti/" + tc.name + ".esito.csv"); got["2"][1] != "VALORE_TROPPO_LUNGO" {
				t.Errorf("row 2: %.300q, want VALORE_TROPPO_LUNGO", got["2"])
			}

			entries, err := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "richiesta.scartata" })
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != rows {
				t.Fatalf("%d refusals in the history, want %d", len(entries), rows)
			}
			e := entries[0]
			if n := len(e.Actor) + len(e.Key) + len(e.File) + len(e.Sheet) + len(e.Detail); n > 8<<10 {
				t.Errorf("a refusal's entry holds %d bytes of text", n)
			}
			if !strings.Contains(e.Actor, "tagliato:") || !strings.Contains(e.Detail, "tagliato:") {
				t.Errorf("actor %.200q, detail %.200q: the huge values are not recorded cut with their length and hash", e.Actor, e.Detail)
			}
			if _, err := c.env.Store.VerifyHistory(); err != nil {
				t.Error(err)
			}
			// Refused row by row, the file is done: the next run reads nothing.
			if counts, err := c.run(richiesteJob); err != nil || counts["files"] != 0 {
				t.Errorf("second run: counts %v, err %v; want nothing read", counts, err)
			}
		})
	}
}
