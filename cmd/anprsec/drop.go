package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"anprsec/drop"
	"anprsec/jobs"
)

func init() { extraCommands = append(extraCommands, (*app).dropCmd) }

// dropRecheck is how often the daemon checks the drop again.
const dropRecheck = time.Hour

func (a *app) dropCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drop",
		Short: "Check and prepare the drop (local folder or SFTP server)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verifica",
		Short: "Check the drop: connection, host key, base path, every folder the jobs read or write",
		Long: `verifica connects to the drop (for SFTP: the server, its host key against
known_hosts, the login), checks that the base path is a folder where files
can be written, and then every folder the jobs read or write: the input
folders (censimento/, prefetture/<PPP>/consegne/ of every prefettura,
comuni/<ISTAT>/richieste/ of every censused comune) must exist, and files
must be written in them and in the output folders (crl/, produttore/ordini/,
sicurezza/report/, comuni/<ISTAT>/certificati/ and report/; a missing output
folder is created by its job, so the folder above it must take files). A
probe file (.anprsec-prova-*) is written and removed in each.

It prints what is missing or not writable, records the result in the store
(shown by "anprsec status" and /healthz) and exits 1 when anything is wrong.
"anprsec run" runs the same check at start and refuses to start on a wrong
base path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			rep, err := jobs.VerifyDrop(cmd.Context(), r.Env())
			if err != nil {
				return err
			}
			printDropReport(cmd.OutOrStdout(), rep, true)
			if !rep.OK() {
				return fmt.Errorf("the drop %s is not ready: %s", rep.Drop, dropVerdict(rep))
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "prepara",
		Short: "Create the input folders partners drop into (idempotent)",
		Long: `prepara creates, on the drop (local folder or SFTP server), the input folders
that the ministry, the prefetture and the comuni drop their files into and
that do not exist yet: censimento/, prefetture/<PPP>/consegne/ of every
prefettura, comuni/<ISTAT>/richieste/ of every censused comune (run it again
after a census that adds comuni). It never creates the base path itself: a
wrong base path is an error. Running it again creates nothing. Then it checks
the drop as "anprsec drop verifica" does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			out := cmd.OutOrStdout()
			created, err := jobs.PrepareDrop(cmd.Context(), r.Env())
			for _, c := range created {
				fmt.Fprintf(out, "created %s\n", c)
			}
			if err != nil {
				return fmt.Errorf("drop %s: %w", r.Env().Drop, err)
			}
			if len(created) == 0 {
				fmt.Fprintln(out, "every input folder exists: nothing to create")
			}
			rep, err := jobs.VerifyDrop(cmd.Context(), r.Env())
			if err != nil {
				return err
			}
			printDropReport(out, rep, false)
			if !rep.OK() {
				return fmt.Errorf("the drop %s is not ready: %s", rep.Drop, dropVerdict(rep))
			}
			return nil
		},
	})
	return cmd
}

// dropVerdict sums up a report in a few words.
func dropVerdict(r *drop.Report) string {
	switch {
	case r.Error != "":
		return "it cannot be checked: " + r.Error
	case r.Base != "":
		return "wrong base path: " + r.Base
	case r.OK():
		return fmt.Sprintf("ok, %d folders checked", r.Folders)
	}
	return fmt.Sprintf("%d folders checked: %d not writable, %d input folders missing", r.Folders, len(r.NotWritable), len(r.Missing))
}

// printDropReport prints a report: its verdict, then every folder not
// writable and every input folder missing (all of them when full, else
// at most drop.MaxListed of each).
func printDropReport(w io.Writer, r *drop.Report, full bool) {
	fmt.Fprintf(w, "drop %s: %s\n", r.Drop, dropVerdict(r))
	if full {
		for _, f := range r.NotWritable {
			fmt.Fprintf(w, "NOT WRITABLE  %s\n", f)
		}
		for _, f := range r.Missing {
			fmt.Fprintf(w, "MISSING       %s (input folder: anprsec drop prepara creates it)\n", f)
		}
		return
	}
	for _, p := range r.Problems() {
		fmt.Fprintln(w, p)
	}
}

// verifyDropAtStart checks the drop before the daemon starts its jobs
// (jobs.VerifyDrop): a wrong base path refuses the start; a drop that
// cannot be reached now, folders that are missing or not writable are
// logged as warnings (the jobs try again at each run, and the publishing
// ones check their folders first).
func (a *app) verifyDropAtStart(ctx context.Context, env *jobs.Env) error {
	rep, err := jobs.VerifyDrop(ctx, env)
	if err != nil {
		return err
	}
	if rep.Base != "" {
		return fmt.Errorf("drop %s: wrong base path (drop.sftp.base_path, or drop.local): %s; \"anprsec drop verifica\" checks it again", rep.Drop, rep.Base)
	}
	a.logDropReport(rep)
	return nil
}

// logDropReport logs what a check of the drop found.
func (a *app) logDropReport(rep *drop.Report) {
	if rep.OK() {
		a.log.Info("drop checked", "drop", rep.Drop, "folders", rep.Folders)
		return
	}
	for _, p := range rep.Problems() {
		a.log.Warn(p)
	}
}

// watchDrop checks the drop again every dropRecheck until ctx is done, so
// that status and /healthz tell what the drop is now.
func (a *app) watchDrop(ctx context.Context, env *jobs.Env, bg *sync.WaitGroup) {
	bg.Add(1)
	go func() {
		defer bg.Done()
		t := time.NewTicker(dropRecheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rep, err := jobs.VerifyDrop(ctx, env)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("drop check not recorded", "err", err)
				}
				continue
			}
			a.logDropReport(rep)
		}
	}()
}
