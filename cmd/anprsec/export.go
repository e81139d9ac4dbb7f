package main

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"anprsec/drop"
	"anprsec/export/audit"
	"anprsec/jobs"
)

func (a *app) exportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write audit exports on demand",
	}
	var comune, out, dal, al string
	auditCmd := &cobra.Command{
		Use:   "audit [--comune ISTAT] [--out DIR] [--dal GG/MM/AAAA] [--al GG/MM/AAAA]",
		Short: "Write a comune's user/authorization lists, or the national security report",
		Long: `audit writes, with --comune, that comune's lists for its ALS (the security notice):
utenti-<ISTAT>-<YYYYMMDD>.xlsx and .csv (one line per utenza with its profiles,
the state of its smart card, e-mail, PEC and last change) and
postazioni-<ISTAT>-<YYYYMMDD>.csv (its workstations and certificates).

Without --comune it writes the national report for security reviews:
sicurezza-<YYYYMMDD>.xlsx (summary with charts, anomalies, the national user
list, the history of the period) and mensile-<YYYY-MM>.csv for each month of
the period (certificates issued and revoked, cards activated, per comune).
The period is the previous month and the current one to date, or --dal/--al.

With --out the files go to that folder; without, to the drop, where the
weekly export-audit job puts them (comuni/<ISTAT>/report/, sicurezza/report/).
CSV files are UTF-8 with BOM and ';', as Italian Excel expects; a cell that a
spreadsheet would read as a formula is written as text.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The export streams the store; a soft memory limit keeps the
			// garbage collector from letting the heap double (this process only).
			if a.daemon == nil {
				debug.SetMemoryLimit(150 << 20)
			}
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			env := r.Env()
			var target audit.Target = env.Drop
			flat := false
			if out != "" && a.daemon != nil {
				// The caller's folder, written by the CLI with the caller's permissions.
				t, err := newCallerTarget(a.callerFS(), out)
				if err != nil {
					return err
				}
				target, flat = t, true
			} else if out != "" {
				l, err := drop.NewLocal(out)
				if err != nil {
					return err
				}
				target, flat = l, true
			}
			e := jobs.NewExporter(env, target, flat)
			w := cmd.OutOrStdout()
			if comune != "" {
				code, err := istatFlag(comune)
				if err != nil {
					return err
				}
				comune = code
				bar := newProgress(cmd, -1, "export of "+comune, false)
				f, err := e.Comune(cmd.Context(), comune)
				bar.Finish()
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s: %d utenze, %d postazioni\n  %s\n  %s\n  %s\n", comune, f.Utenze, f.Postazioni, f.XLSX, f.UsersCSV, f.WorkstationsCSV)
				return nil
			}
			p := audit.DefaultPeriod(time.Now(), a.loc())
			for _, d := range []struct {
				flag string
				to   *time.Time
				end  bool
			}{{dal, &p.From, false}, {al, &p.To, true}} {
				if d.flag == "" {
					continue
				}
				t, err := parseDay(d.flag, a.loc())
				if err != nil {
					return err
				}
				if d.end {
					t = t.AddDate(0, 0, 1) // --al is included
				}
				*d.to = t
			}
			if !p.From.Before(p.To) {
				return fmt.Errorf("the period is empty: --dal %s is not before --al", p.From.Format(dayLayout))
			}
			bar := newProgress(cmd, -1, "national report", false)
			f, err := e.National(cmd.Context(), p)
			bar.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "national report %s .. %s: %d utenze, %d anomalie, %d history entries\n  %s\n",
				p.From.Format("02/01/2006"), lastDay(p.To).Format("02/01/2006"), f.Utenze, f.Anomalie, f.Storico, f.XLSX)
			for _, m := range append(f.Monthly, f.Revocations...) {
				fmt.Fprintf(w, "  %s\n", m)
			}
			if f.Truncated {
				fmt.Fprintln(w, "note: the history of the period did not fit in one sheet; narrow it with --dal/--al")
			}
			return nil
		},
	}
	auditCmd.Flags().StringVar(&comune, "comune", "", "ISTAT code of the comune (default: the national report)")
	auditCmd.Flags().StringVar(&out, "out", "", "folder to write to (default: the drop)")
	auditCmd.Flags().StringVar(&dal, "dal", "", "national report: first day of the period (gg/mm/aaaa, or aaaa-mm-gg)")
	auditCmd.Flags().StringVar(&al, "al", "", "national report: last day of the period, included (gg/mm/aaaa, or aaaa-mm-gg)")
	cmd.AddCommand(auditCmd)
	return cmd
}

// lastDay is the last day a period ending (excluded) at to includes: the
// day before a midnight, else to's own day.
func lastDay(to time.Time) time.Time {
	if to.Hour() == 0 && to.Minute() == 0 && to.Second() == 0 && to.Nanosecond() == 0 {
		return to.AddDate(0, 0, -1)
	}
	return to
}
