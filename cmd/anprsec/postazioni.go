package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"anprsec/jobs"
	"anprsec/schedules"
	"anprsec/store"
)

func (a *app) postazioniCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "postazioni",
		Short: "Block, unblock and revoke workstation certificates (back-office)",
		Long: `postazioni acts on a workstation certificate of any comune, as the ministry's
back-office. After a successful operation the crl job runs at once (the same
path as "anprsec jobs run crl"), so the published CRL shows the change.

  blocca   ATTIVO -> BLOCCATO: in the CRL with reason certificateHold
  sblocca  BLOCCATO -> ATTIVO: out of the next CRL
  revoca   ATTIVO|BLOCCATO -> REVOCATA IN LAVORAZIONE: in the CRL on hold at
           once; the next certificati batch makes it REVOCATO, for good`,
	}
	for _, op := range []struct {
		op    jobs.Op
		short string
	}{
		{jobs.OpBlocca, "Block a certificate (ATTIVO -> BLOCCATO) and republish the CRL"},
		{jobs.OpSblocca, "Unblock a certificate (BLOCCATO -> ATTIVO) and republish the CRL"},
		{jobs.OpRevoca, "Revoke a certificate (ATTIVO|BLOCCATO -> REVOCATA IN LAVORAZIONE) and republish the CRL"},
	} {
		var motivo string
		sub := &cobra.Command{
			Use:   string(op.op) + " CODICE --motivo TEXT",
			Short: op.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, closeFn, err := a.openRunner(cmd.Context())
				if err != nil {
					return err
				}
				defer closeFn()
				p, err := jobs.ChangePostazione(r.Store(), store.Source{Actor: jobs.BackOfficeActor}, op.op, args[0], motivo)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (seriale %s)\n", p.Code, p.State, p.Serial)
				rec, err := r.Run(cmd.Context(), "crl", schedules.TriggerManual, time.Time{})
				if rec != nil {
					line := fmt.Sprintf("crl: %s in %s", rec.Outcome, rec.End.Sub(rec.Start).Round(time.Millisecond))
					if c := formatCounts(rec.Counts); c != "" {
						line += " " + c
					}
					fmt.Fprintln(cmd.OutOrStdout(), line)
				}
				if err != nil {
					return fmt.Errorf("%s is %s, but the CRL was not republished (it will be at the next hourly run, or `anprsec jobs run crl`): %w", p.Code, p.State, err)
				}
				return nil
			},
		}
		sub.Flags().StringVar(&motivo, "motivo", "", "the reason, recorded in the history (required)")
		sub.MarkFlagRequired("motivo")
		cmd.AddCommand(sub)
	}
	return cmd
}
