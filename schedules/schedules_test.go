package schedules

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/jobs"
	"anprsec/secret"
	"anprsec/store"
)

func newRunner(t *testing.T, all ...jobs.Job) *Runner {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir(), Key: bytes.Repeat([]byte{3}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default(t.TempDir())
	env := &jobs.Env{Config: cfg, Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r, err := New(env, all)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseSpec(t *testing.T) {
	rome, _ := time.LoadLocation("Europe/Rome")
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"* * * * *", true},
		{"*/5 * * * *", true},
		{"30 4 * * 1", true},
		{"@hourly", true},
		{"61 * * * *", false},
		{"* * *", false},
		{"", false},
		{"CRON_TZ=Europe/Rome", false},
		{"bogus", false},
	} {
		_, err := ParseSpec(tc.spec, rome)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSpec(%q) error = %v, want ok=%v", tc.spec, err, tc.ok)
		}
	}
}

func TestUnknownScheduleName(t *testing.T) {
	st, _ := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{3}, secret.KeySize)})
	defer st.Close()
	cfg := config.Default(t.TempDir())
	cfg.Schedules["ingest-censimneto"] = "* * * * *"
	if _, err := New(&jobs.Env{Config: cfg, Store: st, Log: slog.Default()}, nil); err == nil {
		t.Fatal("a schedule for an unknown job was accepted")
	}
}

func TestRunRecordsOutcomes(t *testing.T) {
	boom := errors.New("boom")
	r := newRunner(t,
		jobs.Job{Name: "ingest-censimento", Run: func(ctx context.Context, env *jobs.Env, run *jobs.Run) error { run.Add("rows", 3); return nil }},
		jobs.Job{Name: "certificati", Run: func(context.Context, *jobs.Env, *jobs.Run) error { return boom }},
		jobs.Job{Name: "crl", Run: func(context.Context, *jobs.Env, *jobs.Run) error { panic("kaboom") }},
	)
	for _, tc := range []struct {
		job, outcome string
		wantErr      bool
	}{
		{"ingest-censimento", "ok", false},
		{"certificati", "error", true},
		{"crl", "panic", true},
	} {
		rec, err := r.Run(context.Background(), tc.job, TriggerManual, time.Time{})
		if (err != nil) != tc.wantErr || rec == nil || rec.Outcome != tc.outcome {
			t.Errorf("%s: run = %+v, %v; want outcome %s", tc.job, rec, err, tc.outcome)
		}
		var last *store.Run
		r.Store().View(func(tx *store.Tx) error { last, err = tx.LastRun(tc.job); return err })
		if last == nil || last.Outcome != tc.outcome || last.Trigger != TriggerManual || last.End.IsZero() {
			t.Errorf("%s: recorded run = %+v", tc.job, last)
		}
	}
	if _, err := r.Run(context.Background(), "nosuch", TriggerManual, time.Time{}); err == nil {
		t.Error("unknown job ran")
	}
}

func TestNoOverlap(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var runs atomic.Int32
	r := newRunner(t, jobs.Job{Name: "certificati", Run: func(context.Context, *jobs.Env, *jobs.Run) error {
		runs.Add(1)
		close(started)
		<-release
		return nil
	}})
	done := make(chan error)
	go func() { _, err := r.Run(context.Background(), "certificati", TriggerSchedule, time.Now()); done <- err }()
	<-started
	rec, err := r.Run(context.Background(), "certificati", TriggerManual, time.Time{})
	if !errors.Is(err, ErrRunning) {
		t.Errorf("second run while running = %v, want ErrRunning", err)
	}
	// The skipped run is recorded, so that `jobs history` shows it.
	var runsSeen []store.Run
	r.env.Store.View(func(tx *store.Tx) error {
		var err error
		runsSeen, err = tx.Runs("certificati", 0)
		return err
	})
	skipped := 0
	for _, x := range runsSeen {
		if x.Outcome == OutcomeSkipped {
			skipped++
		}
	}
	if rec == nil || rec.Outcome != OutcomeSkipped || skipped != 1 {
		t.Errorf("skipped run: returned %+v, %d recorded; want one %q record", rec, skipped, OutcomeSkipped)
	}
	// The job's last run stays the one in progress (a crash now leaves it
	// to be marked interrupted at the next start).
	r.env.Store.View(func(tx *store.Tx) error {
		if last, err := tx.LastRun("certificati"); err != nil || last.Outcome != "running" {
			t.Errorf("last run after a skip: %+v, %v; want the one running", last, err)
		}
		return nil
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 1 {
		t.Errorf("ran %d times", runs.Load())
	}
}

func TestMissedAndStale(t *testing.T) {
	r := newRunner(t,
		jobs.Job{Name: "certificati", Run: func(context.Context, *jobs.Env, *jobs.Run) error { return nil }},
		jobs.Job{Name: "export-audit", Run: func(context.Context, *jobs.Env, *jobs.Run) error { return nil }},
		jobs.Job{Name: "crl", Run: func(context.Context, *jobs.Env, *jobs.Run) error { return nil }},
	)
	now := time.Now()
	r.Store().Update(func(tx *store.Tx) error {
		// certificati (every 5 minutes) last ran an hour ago: missed.
		tx.PutRun(&store.Run{ID: "a", Job: "certificati", Scheduled: now.Add(-time.Hour), Start: now.Add(-time.Hour), Outcome: "ok"})
		// export-audit (weekly) ran an hour ago: not missed.
		tx.PutRun(&store.Run{ID: "b", Job: "export-audit", Scheduled: now.Add(-time.Hour), Start: now.Add(-time.Hour), Outcome: "ok"})
		// crl never ran: nothing to catch up.
		return nil
	})
	got := r.missed(now)
	if len(got) != 1 || got[0] != "certificati" {
		t.Errorf("missed = %v, want [certificati]", got)
	}

	// A run left "running" by a killed process is closed as interrupted
	// when the store is opened again.
	r.Store().Update(func(tx *store.Tx) error {
		return tx.PutRun(&store.Run{ID: "c", Job: "crl", Start: now, Outcome: "running"})
	})
	if err := r.closeStale(); err != nil {
		t.Fatal(err)
	}
	var last *store.Run
	r.Store().View(func(tx *store.Tx) (err error) { last, err = tx.LastRun("crl"); return })
	if last.Outcome != "interrupted" {
		t.Errorf("stale run outcome = %s", last.Outcome)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	var runs atomic.Int32
	r := newRunner(t, jobs.Job{Name: "certificati", Run: func(context.Context, *jobs.Env, *jobs.Run) error { runs.Add(1); return nil }})
	now := time.Now()
	r.Store().Update(func(tx *store.Tx) error {
		return tx.PutRun(&store.Run{ID: "a", Job: "certificati", Scheduled: now.Add(-time.Hour), Start: now.Add(-time.Hour), Outcome: "ok"})
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Serve(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if runs.Load() != 1 {
		t.Errorf("catch-up ran %d times, want 1", runs.Load())
	}
	var last *store.Run
	r.Store().View(func(tx *store.Tx) (err error) { last, err = tx.LastRun("certificati"); return })
	if last.Trigger != TriggerCatchUp {
		t.Errorf("last trigger = %s, want catch-up", last.Trigger)
	}
}

// TestJobDoesNotStartOnAFullDisk: below min_free on the store's file
// system the job does not start: a named error in its run record, nothing
// done; with the floor met it runs.
func TestJobDoesNotStartOnAFullDisk(t *testing.T) {
	ran := 0
	r := newRunner(t, jobs.Job{Name: "crl", Run: func(context.Context, *jobs.Env, *jobs.Run) error { ran++; return nil }})
	r.env.Config.DataDir = t.TempDir()
	r.env.Config.MinFree = 1 << 62 // more than any disk has
	rec, err := r.Run(context.Background(), "crl", TriggerManual, time.Time{})
	if !errors.Is(err, jobs.ErrLowDisk) || ran != 0 {
		t.Fatalf("below min_free: err %v, ran %d times; want ErrLowDisk and no run", err, ran)
	}
	if rec == nil || rec.Outcome != "error" || !strings.Contains(rec.Error, "min_free") || !strings.Contains(rec.Error, r.env.Config.DataDir) {
		t.Errorf("run record %+v: want an error naming min_free and the folder", rec)
	}
	r.env.Config.MinFree = 1
	if _, err := r.Run(context.Background(), "crl", TriggerManual, time.Time{}); err != nil || ran != 1 {
		t.Errorf("with the floor met: err %v, ran %d times", err, ran)
	}
}

// TestRunKnowsWhetherItWasAskedByHand: a job sees a manual run as asked
// by hand, and a scheduled one as not.
func TestRunKnowsWhetherItWasAskedByHand(t *testing.T) {
	var manual []bool
	r := newRunner(t, jobs.Job{Name: "ingest-richieste", Run: func(_ context.Context, _ *jobs.Env, run *jobs.Run) error {
		manual = append(manual, run.Manual)
		return nil
	}})
	for _, trigger := range []string{TriggerManual, TriggerSchedule} {
		if _, err := r.Run(context.Background(), "ingest-richieste", trigger, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(manual) != 2 || !manual[0] || manual[1] {
		t.Errorf("manual seen %v, want [true false]", manual)
	}
}
