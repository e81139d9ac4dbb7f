package main

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"anprsec/jobs"
	"anprsec/store"
)

func (a *app) jobsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Elenca, esegue ed esamina i job batch",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Ogni job: pianificazione, ultima esecuzione, esito, prossima esecuzione",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "JOB\tPIANIFICAZIONE\tULTIMA ESECUZIONE\tESITO\tPROSSIMA\tCOSA FA")
			now := time.Now()
			for _, j := range r.Jobs() {
				last, outcome := "-", "-"
				var lr *store.Run
				verr := r.Store().View(func(tx *store.Tx) (err error) {
					lr, err = tx.LastRun(j.Name)
					return err
				})
				switch {
				case verr == nil:
					last, outcome = a.when(lr.Start), esito(lr.Outcome)
				case !errors.Is(verr, store.ErrNotFound):
					return verr
				}
				next := "-"
				if n := r.Next(j.Name, now); !n.IsZero() {
					next = a.when(n)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, r.Spec(j.Name), last, outcome, next, j.Description)
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "run NOME...",
		Short: "Esegue subito i job, come farebbe la pianificazione; uscita non zero se uno fallisce",
		Long: `run esegue subito i job indicati, uno dopo l'altro, con la stessa protezione
dalle esecuzioni sovrapposte e la stessa registrazione di un'esecuzione
pianificata (avvio "manuale"). Esce con stato non zero quando un job fallisce.
Con il daemon in esecuzione il job gira nel daemon (tramite il socket di
controllo), con la stessa protezione dalle esecuzioni sovrapposte; i suoi
messaggi di log vanno nel log del daemon.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range args {
				if !slices.Contains(jobs.Names, name) {
					return unknownJob(name)
				}
			}
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			var failed []string
			for _, name := range args {
				rec, err := r.RunManual(cmd.Context(), name, a.actor())
				if rec != nil {
					fmt.Fprintln(cmd.OutOrStdout(), runLine(name, rec))
				}
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err) // names the job
					failed = append(failed, name)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("job falliti: %s", strings.Join(failed, ", "))
			}
			return nil
		},
	})
	var limit int
	hist := &cobra.Command{
		Use:   "history [NOME]",
		Short: "Le esecuzioni registrate di un job (o di tutti), la più recente in fondo",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			name := ""
			if len(args) == 1 {
				name = args[0]
				if !slices.Contains(jobs.Names, name) {
					return unknownJob(name)
				}
			}
			var runs []store.Run
			if err := st.View(func(tx *store.Tx) error {
				runs, err = tx.Runs(name, 0)
				return err
			}); err != nil {
				return err
			}
			sort.SliceStable(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
			if limit > 0 && len(runs) > limit {
				runs = runs[len(runs)-limit:]
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "INIZIO\tJOB\tESECUZIONE\tAVVIO\tDA\tESITO\tDURATA\tCONTEGGI\tERRORE")
			for _, r := range runs {
				dur := "-"
				if !r.End.IsZero() {
					dur = durata(r.End.Sub(r.Start))
				}
				by := r.By
				if by == "" {
					by = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.when(r.Start),
					r.Job, r.ID, avvio(r.Trigger), by, esito(r.Outcome), dur, formatCounts(r.Counts, r.Values), r.Error)
			}
			return w.Flush()
		},
	}
	hist.Flags().IntVarP(&limit, "limit", "n", 50, "mostra al più le ultime `N` esecuzioni (0 = tutte)")
	cmd.AddCommand(hist)
	return cmd
}

// formatCounts prints a run's counts, then its values, each set in name
// order: "files=2 rows_ok=40 crl_number=7".
// runLine is the line that says how a run of job name ended: outcome,
// duration and counts.
func runLine(name string, rec *store.Run) string {
	line := fmt.Sprintf("%s: %s in %s", name, esito(rec.Outcome), durata(rec.End.Sub(rec.Start)))
	if c := formatCounts(rec.Counts, rec.Values); c != "" {
		line += " " + c
	}
	return line
}

func formatCounts(sets ...map[string]int) string {
	var parts []string
	for _, c := range sets {
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
		}
	}
	return strings.Join(parts, " ")
}

// unknownJob is the usage error of a job name anprsec does not have: it
// lists the jobs, one per line.
func unknownJob(name string) error {
	return usageError{fmt.Errorf("nessun job si chiama %q; i job sono:\n  %s", name, strings.Join(jobs.Names, "\n  "))}
}
