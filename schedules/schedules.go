// Package schedules runs the jobs: on their cron schedules (robfig/cron,
// time zone from the config), on demand (`anprsec jobs run`) through the
// same guard, once at start when a scheduled run was missed while the
// process was down. A job never overlaps itself, a panic is recorded as a
// failed run, and every run is recorded in the store.
package schedules

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"anprsec/jobs"
	"anprsec/store"
)

// Triggers of a run.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
	TriggerCatchUp  = "catch-up"
)

// ErrRunning is returned when a job is asked to run while it runs.
var ErrRunning = errors.New("già in esecuzione")

// Runner owns the jobs, their schedules and their overlap guards.
type Runner struct {
	env   *jobs.Env
	loc   *time.Location
	jobs  map[string]jobs.Job
	specs map[string]string
	sched map[string]cron.Schedule
	locks map[string]*sync.Mutex
	log   *slog.Logger

	// OnRunEnd, when set, is called after each run's final record is
	// committed (metrics observe runs through it). It must return quickly.
	OnRunEnd func(rec *store.Run)
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSpec validates a cron spec; robfig/cron panics on some bad specs,
// which becomes an error here.
func ParseSpec(spec string, loc *time.Location) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pianificazione %q non valida", spec)
		}
	}()
	s, err = parser.Parse("CRON_TZ=" + loc.String() + " " + spec)
	if err != nil {
		return nil, fmt.Errorf("pianificazione %q non valida: %v", spec, err)
	}
	return s, nil
}

// New checks the schedule table against the jobs.
func New(env *jobs.Env, all []jobs.Job) (*Runner, error) {
	loc, err := time.LoadLocation(env.Config.Timezone)
	if err != nil {
		return nil, err
	}
	r := &Runner{env: env, loc: loc, jobs: map[string]jobs.Job{}, specs: map[string]string{},
		sched: map[string]cron.Schedule{}, locks: map[string]*sync.Mutex{}, log: env.Log}
	for name, spec := range env.Config.Schedules {
		if !slices.Contains(jobs.Names, name) {
			return nil, fmt.Errorf("schedules: nessun job si chiama %q; i job sono:\n  %s", name, strings.Join(jobs.Names, "\n  "))
		}
		s, err := ParseSpec(spec, loc)
		if err != nil {
			return nil, fmt.Errorf("schedules.%s: %w", name, err)
		}
		r.sched[name] = s
		r.specs[name] = spec
	}
	for _, j := range all {
		r.jobs[j.Name] = j
		r.locks[j.Name] = &sync.Mutex{}
	}
	// The store is held by one process at a time, so a run still marked
	// "running" was cut short by a crash or a kill.
	if err := r.closeStale(); err != nil {
		return nil, err
	}
	return r, nil
}

// Jobs returns the implemented jobs, in the order of jobs.Names.
func (r *Runner) Jobs() []jobs.Job {
	var out []jobs.Job
	for _, n := range jobs.Names {
		if j, ok := r.jobs[n]; ok {
			out = append(out, j)
		}
	}
	return out
}

// Spec returns a job's cron spec ("" when it has none).
func (r *Runner) Spec(name string) string { return r.specs[name] }

// Next returns a job's next scheduled time after t (zero when unscheduled).
func (r *Runner) Next(name string, t time.Time) time.Time {
	if s, ok := r.sched[name]; ok {
		return s.Next(t)
	}
	return time.Time{}
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Run runs a job now, unless it is already running (ErrRunning). The run
// is recorded; a panic is recovered and recorded as outcome "panic".
func (r *Runner) Run(ctx context.Context, name, trigger string, scheduled time.Time) (*store.Run, error) {
	return r.run(ctx, name, trigger, scheduled, "")
}

// RunManual runs a job now at the request of by (the history's actor of
// the person asking: the operator at the CLI, or the caller of the
// control socket), as Run does with TriggerManual; the run's record names
// by.
func (r *Runner) RunManual(ctx context.Context, name, by string) (*store.Run, error) {
	return r.run(ctx, name, TriggerManual, time.Time{}, by)
}

func (r *Runner) run(ctx context.Context, name, trigger string, scheduled time.Time, by string) (*store.Run, error) {
	j, ok := r.jobs[name]
	if !ok && slices.Contains(jobs.Names, name) {
		return nil, fmt.Errorf("il job %s non è ancora disponibile in questa versione", name)
	}
	if !ok {
		known := []string{}
		for _, x := range r.Jobs() {
			known = append(known, x.Name)
		}
		return nil, fmt.Errorf("nessun job si chiama %q; i job sono:\n  %s", name, strings.Join(known, "\n  "))
	}
	mu := r.locks[name]
	if !mu.TryLock() {
		return r.skipped(name, trigger, scheduled, by)
	}
	defer mu.Unlock()

	rec := &store.Run{ID: newID(), Job: name, Trigger: trigger, By: by, Scheduled: scheduled, Start: time.Now().UTC(), Outcome: "running"}
	log := r.log.With("job", name, "run", rec.ID)
	if by != "" {
		log = log.With("by", by)
	}
	if err := r.env.Store.Update(func(tx *store.Tx) error { return tx.PutRun(rec) }); err != nil {
		return nil, err
	}
	run := &jobs.Run{ID: rec.ID, Log: log, Counts: map[string]int{}, Manual: trigger == TriggerManual}
	log.Info("job started", "trigger", trigger)
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				rec.Outcome = "panic"
				err = fmt.Errorf("panic: %v", p)
				log.Error("job panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}()
		if err := jobs.CheckFreeSpace(r.env); err != nil {
			return err
		}
		defer jobs.Running(name)()
		return j.Run(ctx, r.env, run)
	}()
	rec.End = time.Now().UTC()
	rec.Counts, rec.Values = run.Counts, run.Values
	switch {
	case err != nil && rec.Outcome == "panic":
		rec.Error = err.Error()
	case err != nil:
		rec.Outcome, rec.Error = "error", err.Error()
	case ctx.Err() != nil:
		rec.Outcome = "interrupted"
	default:
		rec.Outcome = "ok"
	}
	if uerr := r.env.Store.Update(func(tx *store.Tx) error { return putFinal(tx, rec) }); uerr != nil && err == nil {
		err = uerr
	}
	attrs := []any{"outcome", rec.Outcome, "seconds", rec.End.Sub(rec.Start).Seconds(), "counts", rec.Counts}
	if len(rec.Values) > 0 {
		attrs = append(attrs, "values", rec.Values)
	}
	log.Info("job finished", attrs...)
	if r.OnRunEnd != nil {
		r.OnRunEnd(rec)
	}
	if err != nil {
		return rec, fmt.Errorf("job %s: %w", name, err)
	}
	return rec, nil
}

// runID is the ID of a run record ("" when the run did not start).
func runID(rec *store.Run) string {
	if rec == nil {
		return ""
	}
	return rec.ID
}

// Meta keys of a job's last successful and last failed run, written in the
// transaction of the run's final record, so that /healthz and
// `anprsec status` read them without scanning the run history.
const (
	metaLastOK   = "run-ok/"
	metaLastFail = "run-fail/"
)

// putFinal stores a run's final record and, for an ok or a failed
// (error, panic) run, keeps it as the job's last success or failure.
// OutcomeSkipped is the outcome of a run that did not start because the
// previous run of the same job was still running.
const OutcomeSkipped = "saltato"

// skipped logs and records a run that does not start because the previous
// one still runs, and returns ErrRunning with it.
func (r *Runner) skipped(name, trigger string, scheduled time.Time, by string) (*store.Run, error) {
	now := time.Now().UTC()
	rec := &store.Run{ID: newID(), Job: name, Trigger: trigger, By: by, Scheduled: scheduled, Start: now, End: now,
		Outcome: OutcomeSkipped, Error: "la run precedente del job è ancora in corso"}
	r.log.Info("job skipped: its previous run is still running", "job", name, "run", rec.ID, "trigger", trigger)
	if err := r.env.Store.Update(func(tx *store.Tx) error { return tx.PutSkippedRun(rec) }); err != nil {
		return nil, err
	}
	return rec, fmt.Errorf("job %s: %w", name, ErrRunning)
}

func putFinal(tx *store.Tx, rec *store.Run) error {
	if err := tx.PutRun(rec); err != nil {
		return err
	}
	switch rec.Outcome {
	case "ok":
		return tx.SetMeta(metaLastOK+rec.Job, rec)
	case "error", "panic":
		return tx.SetMeta(metaLastFail+rec.Job, rec)
	}
	return nil
}

// LastSuccess returns the last run of a job with outcome "ok"
// (store.ErrNotFound when there is none). Stores written before this
// record existed fall back on the job's last run when it was ok.
func LastSuccess(tx *store.Tx, job string) (*store.Run, error) {
	return lastWith(tx, metaLastOK, job, func(o string) bool { return o == "ok" })
}

// LastFailure returns the last run of a job with outcome "error" or
// "panic" (store.ErrNotFound when there is none), with the same fallback.
func LastFailure(tx *store.Tx, job string) (*store.Run, error) {
	return lastWith(tx, metaLastFail, job, func(o string) bool { return o == "error" || o == "panic" })
}

func lastWith(tx *store.Tx, prefix, job string, match func(string) bool) (*store.Run, error) {
	var rec store.Run
	err := tx.Meta(prefix+job, &rec)
	if err == nil {
		return &rec, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	last, err := tx.LastRun(job)
	if err != nil {
		return nil, err
	}
	if !match(last.Outcome) {
		return nil, store.ErrNotFound
	}
	return last, nil
}

// cronJob adapts a job to cron.Job.
type cronJob struct {
	r    *Runner
	ctx  context.Context
	name string
}

func (c cronJob) Run() {
	scheduled := time.Now().In(c.r.loc).Truncate(time.Minute)
	if rec, err := c.r.Run(c.ctx, c.name, TriggerSchedule, scheduled); err != nil && !errors.Is(err, ErrRunning) {
		c.r.log.Error("scheduled run failed", "job", c.name, "run", runID(rec), "err", err)
	}
}

type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}

// Serve runs the schedule until ctx is done: first it closes runs left
// "running" by a crash and catches up missed runs, then cron takes over.
// On return no job is running.
func (r *Runner) Serve(ctx context.Context) error {
	cl := cronLogger{r.log}
	c := cron.New(cron.WithLocation(r.loc), cron.WithParser(parser),
		cron.WithChain(cron.SkipIfStillRunning(cl), cron.Recover(cl)), cron.WithLogger(cl))
	names := make([]string, 0, len(r.jobs))
	for n := range r.jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if s, ok := r.sched[n]; ok {
			c.Schedule(s, cronJob{r: r, ctx: ctx, name: n})
		}
	}
	c.Start()
	r.log.Info("scheduler started", "jobs", len(names), "timezone", r.loc.String())
	var wg sync.WaitGroup
	for _, n := range r.missed(time.Now()) {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			r.log.Info("catching up a run missed while stopped", "job", n)
			if rec, err := r.Run(ctx, n, TriggerCatchUp, time.Now().In(r.loc)); err != nil && !errors.Is(err, ErrRunning) {
				r.log.Error("catch-up run failed", "job", n, "run", runID(rec), "err", err)
			}
		}(n)
	}
	<-ctx.Done()
	r.log.Info("stopping: waiting for running jobs to finish their transaction")
	<-c.Stop().Done()
	wg.Wait()
	return nil
}

// missed lists jobs whose next run after their last scheduled run is
// already past (by more than a minute): they run once now.
func (r *Runner) missed(now time.Time) []string {
	var out []string
	for _, j := range r.Jobs() {
		s, ok := r.sched[j.Name]
		if !ok {
			continue
		}
		var last *store.Run
		err := r.env.Store.View(func(tx *store.Tx) error {
			var err error
			last, err = tx.LastRun(j.Name)
			return err
		})
		if err != nil {
			continue // never ran: nothing was missed
		}
		ref := last.Scheduled
		if ref.IsZero() || last.Start.After(ref) {
			ref = last.Start
		}
		if next := s.Next(ref); next.Before(now.Add(-time.Minute)) {
			out = append(out, j.Name)
		}
	}
	return out
}

// closeStale marks runs left "running" by a killed process as interrupted.
func (r *Runner) closeStale() error {
	return r.env.Store.Update(func(tx *store.Tx) error {
		for _, j := range r.Jobs() {
			last, err := tx.LastRun(j.Name)
			if err != nil || last.Outcome != "running" {
				continue
			}
			last.Outcome, last.Error = "interrupted", "the process stopped during the run"
			if err := tx.PutRun(last); err != nil {
				return err
			}
		}
		return nil
	})
}

// Store returns the store the jobs work on.
func (r *Runner) Store() *store.Store { return r.env.Store }

// Env returns the environment the jobs run with.
func (r *Runner) Env() *jobs.Env { return r.env }
