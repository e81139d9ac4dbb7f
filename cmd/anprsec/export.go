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
		Short: "Scrive su richiesta le esportazioni di audit",
	}
	var comune, out, dal, al string
	auditCmd := &cobra.Command{
		Use:   "audit [--comune ISTAT] [--out DIR] [--dal GG/MM/AAAA] [--al GG/MM/AAAA]",
		Short: "Scrive gli elenchi di utenze e abilitazioni di un comune, o il report nazionale di sicurezza",
		Long: `audit scrive, con --comune, gli elenchi di quel comune per il suo ALS
(l'informativa di sicurezza): utenti-<ISTAT>-<AAAAMMGG>.xlsx e .csv (una riga
per utenza con i profili, lo stato della smart card, e-mail, PEC e ultima
modifica) e postazioni-<ISTAT>-<AAAAMMGG>.csv (postazioni e certificati).

Senza --comune scrive il report nazionale per le verifiche di sicurezza:
sicurezza-<AAAAMMGG>.xlsx (riepilogo con grafici, anomalie, elenco nazionale
delle utenze, storico del periodo) e mensile-<AAAA-MM>.csv per ogni mese del
periodo (certificati emessi e revocati, smart card attivate, per comune).
Il periodo è il mese precedente più quello in corso fino a oggi, oppure
--dal/--al.

Con --out i file vanno in quella cartella (creata se manca); senza, nel drop,
dove li mette il job settimanale export-audit (comuni/<ISTAT>/report/,
sicurezza/report/). I CSV sono UTF-8 con BOM e ';', come li attende Excel in
italiano; una cella che un foglio di calcolo leggerebbe come formula è
scritta come testo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The export streams the store; a soft memory limit keeps the
			// garbage collector from letting the heap double (this process
			// only): 150 MiB unless memory_limit (or GOMEMLIMIT) is lower.
			if a.daemon == nil {
				if cur := debug.SetMemoryLimit(-1); cur > 150<<20 {
					debug.SetMemoryLimit(150 << 20)
				}
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
				bar := newProgress(cmd, -1, "esportazione di "+comune, false)
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
				return fmt.Errorf("il periodo è vuoto: --dal %s non precede --al", p.From.Format(dayLayout))
			}
			bar := newProgress(cmd, -1, "report nazionale", false)
			f, err := e.National(cmd.Context(), p)
			bar.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "report nazionale dal %s al %s: %d utenze, %d anomalie, %d voci dello storico\n  %s\n",
				p.From.Format("02/01/2006"), lastDay(p.To).Format("02/01/2006"), f.Utenze, f.Anomalie, f.Storico, f.XLSX)
			for _, m := range append(f.Monthly, f.Revocations...) {
				fmt.Fprintf(w, "  %s\n", m)
			}
			if f.Truncated {
				fmt.Fprintln(w, "nota: lo storico del periodo non è entrato in un solo foglio; restringere il periodo con --dal/--al")
			}
			return nil
		},
	}
	auditCmd.Flags().StringVar(&comune, "comune", "", "codice `ISTAT` del comune (se assente: il report nazionale)")
	auditCmd.Flags().StringVar(&out, "out", "", "`cartella` in cui scrivere (se assente: il drop)")
	auditCmd.Flags().StringVar(&dal, "dal", "", "report nazionale: primo `giorno` del periodo (gg/mm/aaaa, o aaaa-mm-gg)")
	auditCmd.Flags().StringVar(&al, "al", "", "report nazionale: ultimo `giorno` del periodo, compreso (gg/mm/aaaa, o aaaa-mm-gg)")
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
