package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"anprsec/domain"
	"anprsec/export/bundle"
	"anprsec/lifecycle"
	"anprsec/schedules"
	"anprsec/secret"
	"anprsec/store"
)

func (a *app) postazioniCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "postazioni",
		Short: "Block, unblock, revoke, list and download workstation certificates (back-office)",
		Long: `postazioni acts on a workstation certificate of any comune, as the ministry's
back-office. After a successful operation the crl job runs at once (the same
path as "anprsec jobs run crl"), so the published CRL shows the change.

  blocca   ATTIVO -> BLOCCATO: in the CRL with reason certificateHold
  sblocca  BLOCCATO -> ATTIVO: out of the next CRL
  revoca   ATTIVO|BLOCCATO -> REVOCATA IN LAVORAZIONE: in the CRL on hold at
           once; the first certificati batch after pki.revoke_grace (default
           24h, the undo window) makes it REVOCATO, for good
  annulla-revoca
           REVOCATA IN LAVORAZIONE -> the state before the revoke (ATTIVO or
           BLOCCATO), only inside the undo window

  rinnova  chiede un nuovo certificato per la postazione (stesso codice): lo
           emette il prossimo batch certificati; il precedente resta valido
           per pki.renew_overlap o fino all'installazione del nuovo, poi è
           revocato (superseded)

  list     the postazioni of a comune, in code order
  show     una postazione: certificato attuale, rinnovo, certificati precedenti
  registro il registro delle installazioni di un comune
  bundle   "Scarica tutti": one ZIP of a comune's certificates with password.txt
  reinvia-primo
           rimette in coda l'e-mail al sindaco (ASC) con il primo certificato
           del comune e la sua password, dopo un invio non riuscito`,
	}
	for _, op := range []struct {
		name  string
		op    lifecycle.Op
		short string
	}{
		{"blocca", lifecycle.OpBlockPostazione, "Block a certificate (ATTIVO -> BLOCCATO) and republish the CRL"},
		{"sblocca", lifecycle.OpUnblockPostazione, "Unblock a certificate (BLOCCATO -> ATTIVO) and republish the CRL"},
		{"revoca", lifecycle.OpRevokePostazione, "Revoke a certificate (ATTIVO|BLOCCATO -> REVOCATA IN LAVORAZIONE) and republish the CRL"},
		{"annulla-revoca", lifecycle.OpUndoRevocation, "Undo a revoke inside pki.revoke_grace (back to ATTIVO or BLOCCATO) and republish the CRL"},
	} {
		var motivo string
		sub := &cobra.Command{
			Use:   op.name + " CODICE --motivo TEXT",
			Short: op.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, closeFn, err := a.openRunner(cmd.Context())
				if err != nil {
					return err
				}
				defer closeFn()
				src := store.Source{Actor: a.actor()}
				var p *domain.Postazione
				if op.op == lifecycle.OpUndoRevocation {
					p, err = lifecycle.UndoRevocation(r.Store(), src, args[0], motivo, a.cfg.PKI.RevokeGrace, a.loc())
				} else {
					p, err = lifecycle.ChangePostazioneWithin(r.Store(), src, op.op, args[0], motivo, a.cfg.PKI.RevokeGrace, a.loc())
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (seriale %s)\n", p.Code, p.State, p.Serial)
				rec, err := r.Run(cmd.Context(), "crl", schedules.TriggerManual, time.Time{})
				if rec != nil {
					line := fmt.Sprintf("crl: %s in %s", rec.Outcome, rec.End.Sub(rec.Start).Round(time.Millisecond))
					if c := formatCounts(rec.Counts, rec.Values); c != "" {
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
	cmd.AddCommand(a.postazioniListCmd(), a.postazioniBundleCmd(), a.postazioniReinviaPrimoCmd(), a.postazioniRinnovaCmd(), a.postazioniShowCmd(), a.postazioniRegistroCmd())
	return cmd
}

func (a *app) postazioniListCmd() *cobra.Command {
	var comune, stato string
	cmd := &cobra.Command{
		Use:   "list --comune ISTAT [--stato S]",
		Short: "List the postazioni of a comune (code, label, state, serial, expiry, last error)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			comune, err := istatFlag(comune)
			if err != nil {
				return err
			}
			var state domain.CertState
			if cmd.Flags().Changed("stato") {
				var err error
				if state, err = lifecycle.ParseCertState(stato); err != nil {
					return err
				}
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			var ps []*domain.Postazione
			if err := st.View(func(tx *store.Tx) error {
				ps, err = lifecycle.PostazioniOf(tx, comune, state)
				return err
			}); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "CODICE\tETICHETTA\tSTATO\tSERIALE\tSCADENZA\tULTIMO ERRORE")
			for _, p := range ps {
				expiry := "-"
				if !p.NotAfter.IsZero() {
					expiry = a.when(p.NotAfter)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Code, dash(p.Label), p.State, dash(p.Serial), expiry, dash(oneLine(p.LastError)))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d postazioni\n", len(ps))
			return nil
		},
	}
	cmd.Flags().StringVar(&comune, "comune", "", "ISTAT code of the comune (required)")
	cmd.Flags().StringVar(&stato, "stato", "", "only the postazioni in this state ("+statesList()+")")
	cmd.MarkFlagRequired("comune")
	return cmd
}

func (a *app) postazioniBundleCmd() *cobra.Command {
	var comune, stato, out string
	cmd := &cobra.Command{
		Use:   "bundle --comune ISTAT [--stato ATTIVO] --out DIR",
		Short: "Write one ZIP of a comune's certificates with password.txt (\"Scarica tutti\")",
		Long: `bundle writes DIR/<ISTAT>-certificati-<YYYYMMDD-HHMMSS>.zip (mode 0600: it holds
the passwords) with <code>.p12 for each certificate of the comune in the state
(ATTIVO by default) and password.txt, the format of the certificati job's
bundles. The ZIP is verified before it is renamed into place.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			comune, err := istatFlag(comune)
			if err != nil {
				return err
			}
			state, err := lifecycle.ParseCertState(stato)
			if err != nil {
				return err
			}
			// The folder is the caller's: through the control socket the
			// CLI makes it and writes the ZIP, with the caller's permissions.
			if err := a.callerFS().MkdirAll(out, 0o700); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			if a.daemon == nil {
				if fi, err := os.Stat(out); err != nil {
					return fmt.Errorf("--out: %w", err)
				} else if !fi.IsDir() {
					return fmt.Errorf("--out %s is not a folder", out)
				}
			}
			if err := a.checkSecrets(); err != nil {
				return err
			}
			sealer, err := a.openSealer()
			if err != nil {
				return err
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := a.checkSealKey(st, sealer); err != nil {
				return err
			}
			bar := newProgress(cmd, -1, "bundle of "+comune, false)
			p, n, err := a.writeBundle(cmd.Context(), st, sealer, comune, state, out)
			bar.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d certificati\n", p, n)
			return nil
		},
	}
	cmd.Flags().StringVar(&comune, "comune", "", "ISTAT code of the comune (required)")
	cmd.Flags().StringVar(&stato, "stato", string(domain.CertAttivo), "the state of the certificates ("+statesList()+")")
	cmd.Flags().StringVar(&out, "out", "", "folder the ZIP is written to, created when missing (required)")
	cmd.MarkFlagRequired("comune")
	cmd.MarkFlagRequired("out")
	return cmd
}

// writeBundle writes the ZIP of bundle.WriteComune into out. In a command
// the daemon runs, the ZIP is built in a private folder of the daemon and
// sent to the caller's out (mode 0600, as bundle.WriteComune makes it).
func (a *app) writeBundle(ctx context.Context, st *store.Store, sealer *store.Sealer, comune string, state domain.CertState, out string) (string, int, error) {
	if a.daemon == nil {
		return bundle.WriteComune(ctx, st, sealer, comune, state, out, time.Now(), a.loc())
	}
	tmp, err := a.daemonTempDir()
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	p, n, err := bundle.WriteComune(ctx, st, sealer, comune, state, tmp, time.Now(), a.loc())
	if err != nil {
		return "", 0, err
	}
	dst := filepath.Join(out, filepath.Base(p))
	if err := sendFile(a.callerFS(), p, dst, 0o600); err != nil {
		return "", 0, err
	}
	return dst, n, nil
}

// openSealer reads keys.seal.
func (a *app) openSealer() (*store.Sealer, error) {
	k, err := secret.ReadKey(a.cfg.Path(a.cfg.Keys.Seal))
	if err != nil {
		return nil, initHint(fmt.Errorf("keys.seal: %w", err))
	}
	s, err := store.NewSealer(k)
	if err != nil {
		return nil, fmt.Errorf("keys.seal: %w", err)
	}
	return s, nil
}

func statesList() string {
	names := make([]string, len(lifecycle.CertStates))
	for i, s := range lifecycle.CertStates {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// postazioniReinviaPrimoCmd queues again the first-certificate e-mail of a
// comune to its ASC (docs/rules.md#the-first-certificate).
func (a *app) postazioniReinviaPrimoCmd() *cobra.Command {
	var istat, motivo string
	cmd := &cobra.Command{
		Use:   "reinvia-primo --comune ISTAT [--motivo TESTO]",
		Short: "Rimette in coda l'e-mail al sindaco con il primo certificato del comune, dopo un invio non riuscito",
		Long: `reinvia-primo rimette in coda il messaggio che porta al sindaco (ASC), nella
sua e-mail personale, il primo certificato di postazione del comune con la
sua password (cifrato e firmato come le seconde metà dei codici delle smart
card). Serve quando l'invio non è riuscito: il comune senza ASC, un indirizzo
o una chiave sbagliati, poi corretti. Il job invio-pin lo spedisce al suo
prossimo giro, all'indirizzo dell'ASC di quel momento.

Rifiutato (nessun invio da ripetere) quando il messaggio è già in coda o è
già stato inviato, quando il certificato non è più ATTIVO, o quando il comune
non ha un primo certificato registrato.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.backOfficeOp(cmd, func(tx *store.Tx, src store.Source) (string, error) {
				code, err := lifecycle.ResendFirstCertificate(tx, src, istat, motivo, a.loc())
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%s: primo certificato di nuovo in coda per l'e-mail del sindaco (job invio-pin)", code), nil
			})
		},
	}
	cmd.Flags().StringVar(&istat, "comune", "", "codice ISTAT del comune (obbligatorio)")
	cmd.Flags().StringVar(&motivo, "motivo", "", "il motivo, registrato nello storico")
	cmd.MarkFlagRequired("comune")
	return cmd
}
