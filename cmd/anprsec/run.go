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
		Short: "Avvia il servizio: ogni job secondo la sua pianificazione fino a SIGINT/SIGTERM",
		Long: `run avvia la pianificazione: ogni job gira secondo la sua pianificazione cron
(schedules nella configurazione, fuso orario dalla configurazione). Un job
saltato mentre il servizio era fermo gira una volta all'avvio. Con SIGINT o
SIGTERM non parte nessuna nuova esecuzione, i job in corso completano la
transazione corrente e run esce con stato 0.

Prima che partano i job, run verifica il drop come "anprsec drop verifica", e
poi di nuovo ogni ora: non parte se il percorso base è sbagliato; un drop non
raggiungibile, cartelle di ingresso mancanti o cartelle non scrivibili sono
avvisi, mostrati da "anprsec status" e da /healthz.

Su metrics.address (solo loopback, predefinito 127.0.0.1:9464; vuoto lo
disattiva) run espone /metrics (Prometheus), /healthz (200, o 503 con ciò che
non va) e /status (il quadro che stampa "anprsec status", in JSON). Se
l'indirizzo non si può aprire i job girano comunque e un avviso ne dice il
motivo.`,
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
