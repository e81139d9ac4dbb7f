package schedules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"anprsec/jobs"
	"anprsec/store"
)

// The observer sees every final record, after it is committed; the last
// success and the last failure of each job are kept apart from the last run.
func TestOnRunEndAndLastSuccess(t *testing.T) {
	fail := true
	r := newRunner(t, jobs.Job{Name: "certificati", Run: func(_ context.Context, _ *jobs.Env, run *jobs.Run) error {
		run.Add("issued", 2)
		if fail {
			return errors.New("CA key unreadable")
		}
		return nil
	}})
	var seen []store.Run
	r.OnRunEnd = func(rec *store.Run) {
		// committed already: the store says the same
		var last *store.Run
		r.Store().View(func(tx *store.Tx) (err error) { last, err = tx.LastRun(rec.Job); return err })
		if last == nil || last.ID != rec.ID || last.Outcome != rec.Outcome {
			t.Errorf("OnRunEnd before the record was committed: store has %+v", last)
		}
		seen = append(seen, *rec)
	}
	last := func() (ok, ko *store.Run) {
		r.Store().View(func(tx *store.Tx) error {
			ok, _ = LastSuccess(tx, "certificati")
			ko, _ = LastFailure(tx, "certificati")
			return nil
		})
		return
	}
	if ok, ko := last(); ok != nil || ko != nil {
		t.Fatalf("before any run: last success %+v, last failure %+v", ok, ko)
	}
	r.Run(context.Background(), "certificati", TriggerManual, time.Time{})
	fail = false
	r.Run(context.Background(), "certificati", TriggerManual, time.Time{})
	fail = true
	r.Run(context.Background(), "certificati", TriggerManual, time.Time{})

	if len(seen) != 3 || seen[0].Outcome != "error" || seen[1].Outcome != "ok" || seen[2].Outcome != "error" || seen[1].Counts["issued"] != 2 {
		t.Fatalf("observed %+v", seen)
	}
	ok, ko := last()
	if ok == nil || ok.ID != seen[1].ID {
		t.Errorf("last success = %+v, want run %s", ok, seen[1].ID)
	}
	if ko == nil || ko.ID != seen[2].ID || ko.Error != "CA key unreadable" {
		t.Errorf("last failure = %+v, want run %s with its error", ko, seen[2].ID)
	}
}

// A store written before the meta records existed: the last run stands in.
func TestLastSuccessFallback(t *testing.T) {
	r := newRunner(t)
	start := time.Now().UTC()
	r.Store().Update(func(tx *store.Tx) error {
		tx.PutRun(&store.Run{ID: "a", Job: "crl", Start: start, End: start, Outcome: "ok"})
		return tx.PutRun(&store.Run{ID: "b", Job: "scadenze", Start: start, End: start, Outcome: "error", Error: "x"})
	})
	r.Store().View(func(tx *store.Tx) error {
		if rec, err := LastSuccess(tx, "crl"); err != nil || rec.ID != "a" {
			t.Errorf("LastSuccess(crl) = %+v, %v", rec, err)
		}
		if _, err := LastFailure(tx, "crl"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LastFailure(crl) = %v, want not found", err)
		}
		if _, err := LastSuccess(tx, "scadenze"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LastSuccess(scadenze) = %v, want not found", err)
		}
		if rec, err := LastFailure(tx, "scadenze"); err != nil || rec.ID != "b" {
			t.Errorf("LastFailure(scadenze) = %+v, %v", rec, err)
		}
		return nil
	})
}

// Every line a job logs, and the runner's own lines about the run, carry
// the job name and the run ID.
func TestRunLogsCarryJobAndRun(t *testing.T) {
	var buf bytes.Buffer
	r := newRunner(t,
		jobs.Job{Name: "crl", Run: func(_ context.Context, _ *jobs.Env, run *jobs.Run) error {
			run.Log.Warn("something to say")
			return errors.New("failed")
		}},
		jobs.Job{Name: "scadenze", Run: func(context.Context, *jobs.Env, *jobs.Run) error { panic("kaboom") }},
	)
	r.log = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ids := map[string]bool{}
	for _, j := range []string{"crl", "scadenze"} {
		rec, _ := r.Run(context.Background(), j, TriggerManual, time.Time{})
		ids[rec.ID] = true
		// the scheduled path logs the failure once more
		cronJob{r: r, ctx: context.Background(), name: j}.Run()
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 8 {
		t.Fatalf("only %d lines:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		job, _ := m["job"].(string)
		run, _ := m["run"].(string)
		if job == "" || run == "" {
			t.Errorf("line without job or run: %s", l)
		}
	}
	if !strings.Contains(buf.String(), `"msg":"something to say"`) || !strings.Contains(buf.String(), `"msg":"scheduled run failed"`) {
		t.Errorf("missing lines:\n%s", buf.String())
	}
}
