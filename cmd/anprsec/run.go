package main

import (
	"context"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"anprsec/jobs"
	"anprsec/ops"
	"anprsec/schedules"
)

func (a *app) runCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: every job on its schedule until SIGINT/SIGTERM",
		Long: `run starts the scheduler: every job runs on its cron schedule (schedules in
the config, time zone from the config). A job missed while the daemon was
down runs once at start. On SIGINT or SIGTERM no new run starts, running jobs
finish their current transaction, and run exits 0.

Before the jobs start, run checks the drop as "anprsec drop verifica" does,
and again every hour: it refuses to start on a wrong base path; a drop that
cannot be reached, input folders missing or folders not writable are
warnings, shown by "anprsec status" and /healthz.

On metrics.address (loopback only, default 127.0.0.1:9464; empty disables
it) run serves /metrics (Prometheus), /healthz (200, or 503 with what is
wrong) and /status (the snapshot "anprsec status" prints, as JSON). When the
address cannot be opened the jobs run anyway and a warning says why.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			if err := a.verifyDropAtStart(cmd.Context(), r.Env()); err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			// Deferred after closeFn, so run before it: the helpers stop
			// before the store closes.
			var bg sync.WaitGroup
			defer bg.Wait()
			defer cancel()
			// The socket opens once the store is held: a caller that reaches
			// it reaches a daemon that can run its command.
			if err := a.serveControl(ctx, r, &bg); err != nil {
				return err
			}
			a.serveOps(ctx, r, &bg)
			a.watchDrop(ctx, r.Env(), &bg)
			a.servePKI(ctx, r, &bg)
			// Reclaim value-log space now and then; stop before the store closes.
			bg.Add(1)
			go func() {
				defer bg.Done()
				t := time.NewTicker(10 * time.Minute)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						r.Store().GC()
					}
				}
			}()
			return r.Serve(ctx)
		},
	}
}

// serveOps starts the metrics server on metrics.address, if any, and hooks
// it to the runner. A busy or refused address is a warning: the jobs matter
// more than their metrics. It returns the address served ("" when none).
func (a *app) serveOps(ctx context.Context, r *schedules.Runner, bg *sync.WaitGroup) string {
	addr := a.cfg.Metrics.Address
	if addr == "" {
		a.log.Info("metrics server disabled (metrics.address is empty)")
		return ""
	}
	var names []string
	for _, j := range r.Jobs() {
		names = append(names, j.Name)
	}
	late, err := jobs.LateRule(r.Env())
	if err != nil {
		a.log.Warn("late cards not counted", "err", err)
	}
	srv := ops.New(ops.Options{
		Store: r.Store(), Schedules: r, Jobs: names, Late: late,
		KeyAlgorithm: a.cfg.PKI.KeyAlgorithm, DataDir: a.cfg.Path(a.cfg.DataDir), Address: addr, Log: a.log,
		Checks: []func() error{func() error { return jobs.CheckFreeSpace(r.Env()) }},
	})
	r.OnRunEnd = srv.ObserveRun
	ln, err := ops.Listen(addr)
	if err != nil {
		a.log.Warn("metrics server not started: the jobs run without /metrics, /healthz and /status", "err", err)
		return ""
	}
	a.log.Info("metrics server listening", "address", ln.Addr().String(), "paths", "/metrics /healthz /status")
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			a.log.Warn("metrics server stopped", "err", err)
		}
	}()
	return ln.Addr().String()
}
