package jobs

import (
	"context"
	"testing"
)

// TestExportAuditFiguresAreValues: the national figures of an export-audit
// run (utenze listed, anomalies found, history lines of the period) are
// states of the store at export time, not events of the run: they are
// Run.Values, which /metrics never adds up (README, "Operations":
// anprsec_job_counts_total sums every count of the runs, while a run's
// values are shown by jobs history and never added up), so a weekly run
// does not add the whole national list to the counts again.
func TestExportAuditFiguresAreValues(t *testing.T) {
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
