package jobs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReview4ExportValuesNotCounts: the national figures of an
// export-audit run (utenze listed, anomalies found, history lines of the
// period) are states of the store at export time, not events of the run:
// they belong in Run.Values, which /metrics never adds up.
//
// README ("Metrics and health"): anprsec_job_counts_total sums "every
// count of the run records: events such as files, rows, mails sent; a
// run's values, such as the CRL's number and entries, are shown by jobs
// history and never added up". jobs/export.go still records them with
// run.Add, so every weekly run adds the whole national list to
// anprsec_job_counts_total{job="export-audit",count="utenze"} (and the
// anomalies still open, and the history lines of a period that overlaps
// the previous run's) — the same mistake the split fixed for the CRL.
func TestReview4ExportValuesNotCounts(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	r := &Run{ID: "t", Log: discardLog()}
	if err := exportJob.Run(context.Background(), c.env, r); err != nil {
		t.Fatal(err)
	}
	if r.Values["utenze"] == 0 {
		t.Errorf("values %v, counts %v: want the national utenze as a value", r.Values, r.Counts)
	}
	for _, k := range []string{"utenze", "anomalie", "storico"} {
		if n, ok := r.Counts[k]; ok {
			t.Errorf("%s=%d recorded as a count (added up by /metrics at every weekly run); it is a value", k, n)
		}
	}
}

// TestReview4ScanRichiesteFileNamedRichieste: a comune that puts a file
// named "richieste" (no extension) in its folder has no requests folder;
// the scan passes over it, as the listing before 9e72dda did (it looked
// for a folder named richieste) — and it does not fail the run of every
// other comune.
//
// jobs/richieste.go scanRichieste lists comuni/<ISTAT>/richieste whatever
// it is: on the local drop, listing a file is an error ("not a
// directory"), appended to errs, so ingest-richieste ends in error every
// minute until somebody removes a file the comune wrote. A listing that
// finds a non-folder should count as "no requests" (or at most be
// logged), not as a failure of the job.
func TestReview4ScanRichiesteFileNamedRichieste(t *testing.T) {
	c := newCertEnv(t)
	for _, p := range []string{"comuni/001001/richieste", "comuni/001002/richieste/r.csv"} {
		full := filepath.Join(c.root, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, errs := scanRichieste(context.Background(), c.env)
	if len(errs) > 0 {
		t.Errorf("scan errors %v: a file named richieste in comuni/001001/ fails the run", errs)
	}
	if want := []string{"001002"}; !slices.Equal(got, want) {
		t.Errorf("visited %v, want %v", got, want)
	}
}
