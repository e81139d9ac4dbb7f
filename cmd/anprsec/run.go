package main

import (
	"sync"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) runCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: every job on its schedule until SIGINT/SIGTERM",
		Long: `run starts the scheduler: every job runs on its cron schedule (schedules in
the config, time zone from the config). A job missed while the daemon was
down runs once at start. On SIGINT or SIGTERM no new run starts, running jobs
finish their current transaction, and run exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			// Reclaim value-log space now and then; stop before the store closes.
			var gc sync.WaitGroup
			defer gc.Wait()
			gc.Add(1)
			go func() {
				defer gc.Done()
				t := time.NewTicker(10 * time.Minute)
				defer t.Stop()
				for {
					select {
					case <-cmd.Context().Done():
						return
					case <-t.C:
						r.Store().GC()
					}
				}
			}()
			return r.Serve(cmd.Context())
		},
	}
}
