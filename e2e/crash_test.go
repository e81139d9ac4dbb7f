package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/ingest"
	"anprsec/store"
)

// TestKillDuringIngest: a crash at any moment loses nothing and duplicates
// nothing (docs/architecture.md). A large census workbook is ingested by
// `anprsec jobs run ingest-censimento`, which is killed with SIGKILL at
// moments spread over the ingest (reading, committing chunks, publishing);
// a second run completes it. The outcome must equal an uninterrupted
// reference run: the same receipt, the same store, the same history.
func TestKillDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and ingests 12,800 rows several times")
	}
	t0 := time.Now()
	bin := binary(t)
	t.Logf("binary built in %v", time.Since(t0).Round(time.Millisecond))
	base := t.TempDir()

	gen := &workdir{t: t, bin: bin, dir: base}
	wbPath := filepath.Join(base, "big.xlsx")
	gen.run("gen", "censimento", "--comuni", "800", "--users", "12000", "-o", wbPath)
	workbook, err := os.ReadFile(wbPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(workbook)
	sha := hex.EncodeToString(sum[:])
	keys, cfs := workbookRows(t, wbPath)
	if len(keys) != 12000+800 {
		t.Fatalf("workbook has %d data rows, want 12800", len(keys))
	}

	// Reference: one uninterrupted run, timed.
	ref := newWorkdir(t, bin, filepath.Join(base, "ref"), workbook)
	tr := ref.measure()
	want := ref.snapshot(sha, cfs)
	checkOutcome(t, ref, want, want, keys)
	t.Logf("reference run: %v wall, job starts at %v, read+validate %v, commit %v (trace %v); %d history entries, counts %v",
		tr.wall.Round(time.Millisecond), tr.toJob.Round(time.Millisecond), tr.read.Round(time.Millisecond),
		tr.commit.Round(time.Millisecond), tr.haveTrace, want.entries, want.counts)
	totalChunks := want.fileRec.Chunks

	commitStart := tr.toJob + tr.read
	after := tr.wall - commitStart - tr.commit // publish, close
	kills := []struct {
		name  string
		delay time.Duration
	}{
		{"reading", tr.toJob + tr.read/2},
		{"commit-10pct", commitStart + tr.commit/10},
		{"commit-40pct", commitStart + tr.commit*4/10},
		{"commit-70pct", commitStart + tr.commit*7/10},
		{"commit-95pct", commitStart + tr.commit*95/100},
		{"publishing", commitStart + tr.commit + after/4},
	}
	midCommit := 0
	for i, k := range kills {
		t.Run(k.name, func(t *testing.T) {
			w := newWorkdir(t, bin, filepath.Join(base, fmt.Sprintf("kill%d", i)), workbook)
			killed, _ := w.killAfter(k.delay)
			at := w.progress(sha)
			t.Logf("SIGKILL after %v (hit the process: %v): store then held %s (of %d chunks)", k.delay.Round(time.Millisecond), killed, at, totalChunks)
			if strings.HasPrefix(at, "processing") && !strings.Contains(at, "chunks 0 ") {
				midCommit++
			}
			w.run("jobs", "run", "ingest-censimento")
			got := w.snapshot(sha, cfs)
			checkOutcome(t, w, got, want, keys)
		})
	}
	if midCommit == 0 {
		t.Logf("WARNING: no kill landed between two chunk commits (timing differs from the reference run); the test was weaker than intended")
	}

	// A file whose processing was cut by ingest.DefaultMaxAttempts crashes in a
	// row: a crash (kill, OOM, power cut) is not a failure of the file, so
	// the next run must still complete it like the reference.
	t.Run("repeated-kills", func(t *testing.T) {
		w := newWorkdir(t, bin, filepath.Join(base, "repeated"), workbook)
		for i := 0; i < ingest.DefaultMaxAttempts; i++ {
			killed, _ := w.killAfter(commitStart + tr.commit*6/10)
			t.Logf("kill %d (hit: %v): store held %s", i+1, killed, w.progress(sha))
		}
		w.run("jobs", "run", "ingest-censimento")
		got := w.snapshot(sha, cfs)
		checkOutcome(t, w, got, want, keys)
	})
	t.Logf("total %v", time.Since(t0).Round(time.Millisecond))
}

// progress describes the file record in a copy of the store as the killed
// process left it.
func (w *workdir) progress(sha string) string {
	w.t.Helper()
	st := w.openStore(true)
	defer st.Close()
	var out string
	err := st.View(func(tx *store.Tx) error {
		f, err := tx.File(sha)
		if errors.Is(err, store.ErrNotFound) {
			out = "no record of the file"
			return nil
		}
		if err != nil {
			return err
		}
		out = fmt.Sprintf("%s, chunks %d (rows %d), attempts %d", f.State, f.Chunks, f.Rows, f.Attempts)
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// checkOutcome checks a finished working directory against the reference.
func checkOutcome(t *testing.T, w *workdir, got, want snapshot, keys map[string]bool) {
	t.Helper()
	// Exactly one receipt, one line per data row, each (sheet,row) once.
	var receipts []string
	for _, n := range w.ls("var/drop/censimento/esiti") {
		if strings.HasSuffix(n, ".esito.csv") {
			receipts = append(receipts, n)
		}
	}
	if strings.Join(receipts, ",") != "big.xlsx.esito.csv" {
		t.Errorf("receipts = %v, want only big.xlsx.esito.csv", receipts)
	}
	lines := receiptLines(t, got.receipt)
	seen := map[string]bool{}
	for _, l := range lines {
		k := l[0] + ":" + l[1]
		if seen[k] {
			t.Errorf("receipt line %s twice", k)
		}
		seen[k] = true
		if !keys[k] {
			t.Errorf("receipt line %q is not a data row of the workbook", l)
		}
	}
	if len(lines) != len(keys) || len(seen) != len(keys) {
		t.Errorf("receipt has %d lines (%d distinct), the workbook %d data rows; first lines %q", len(lines), len(seen), len(keys), lines[:min(3, len(lines))])
	}
	if !bytes.Equal(got.receipt, want.receipt) {
		norm := func(b []byte) []byte { return cardSerial.ReplaceAll(b, []byte("SC#")) }
		if bytes.Equal(norm(got.receipt), norm(want.receipt)) {
			t.Errorf("receipt differs from the reference only by card serials")
		} else {
			t.Errorf("receipt differs from the reference: %s", firstDiff(got.receipt, want.receipt))
		}
	}

	// The file moved once to elaborati/.
	if l := w.ls("var/drop/censimento/elaborati"); strings.Join(l, ",") != "big.xlsx" {
		t.Errorf("elaborati/ = %v, want [big.xlsx]", l)
	}
	for _, n := range w.ls("var/drop/censimento") {
		if n != "elaborati" && n != "esiti" && n != "scartati" {
			t.Errorf("censimento/ still holds %q", n)
		}
	}
	if l := w.ls("var/drop/censimento/scartati"); len(l) > 0 {
		t.Errorf("scartati/ = %v, want empty", l)
	}

	// The history chain, checked by the binary too.
	if out, _ := w.run("history", "verify"); !strings.Contains(out, "integra") {
		t.Errorf("history verify: %q", out)
	}
	if got.entries != want.entries {
		t.Errorf("history has %d entries, reference %d", got.entries, want.entries)
	}
	for i := 0; i < min(len(got.history), len(want.history)); i++ {
		if got.history[i] != want.history[i] {
			t.Errorf("history entry %d = %q, reference %q", i+1, got.history[i], want.history[i])
			break
		}
	}

	// The store holds what the reference holds; one card per person.
	for k, n := range want.counts {
		if got.counts[k] != n {
			t.Errorf("store %q: %d keys, reference %d", k, got.counts[k], n)
		}
	}
	if len(got.multiCF) > 0 {
		t.Errorf("persons with more than one card: %v", got.multiCF[:min(5, len(got.multiCF))])
	}
	f := got.fileRec
	if f.State != store.FilePublished || f.Rejected || f.Chunks != want.fileRec.Chunks || f.Rows != want.fileRec.Rows ||
		f.Accepted != want.fileRec.Accepted || f.Refused != want.fileRec.Refused || f.Moved != "censimento/elaborati/big.xlsx" {
		t.Errorf("file record = %+v, reference %+v", f, want.fileRec)
	}
	if len(got.runs) == 0 || got.runs[len(got.runs)-1] != "ok" {
		t.Errorf("runs of ingest-censimento: %v, want the last ok", got.runs)
	}
	for _, r := range got.runs {
		if r == "running" {
			t.Errorf("a run is still marked running: %v", got.runs)
		}
	}
	if len(got.spool) > 0 {
		t.Logf("NOTE: the spool keeps %d local copies left by killed runs: %v", len(got.spool), got.spool)
	}
	if len(got.tmpFiles) > 0 {
		t.Logf("NOTE: temporary files left in the drop: %v", got.tmpFiles)
	}
}

func firstDiff(a, b []byte) string {
	al, bl := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < min(len(al), len(bl)); i++ {
		if !bytes.Equal(al[i], bl[i]) {
			return fmt.Sprintf("line %d: %q vs reference %q", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines vs reference %d", len(al), len(bl))
}
