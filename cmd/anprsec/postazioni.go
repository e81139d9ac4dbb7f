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
	"anprsec/secret"
	"anprsec/store"
)

func (a *app) postazioniCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "postazioni",
		Short: "Blocca, sblocca, revoca, elenca e scarica i certificati di postazione (back-office)",
		Long: `postazioni agisce sul certificato di una postazione di qualunque comune, come
back-office del ministero. Dopo un'operazione riuscita il job crl gira subito
(come "anprsec jobs run crl"), così la CRL pubblicata mostra la modifica.

  blocca   ATTIVO -> BLOCCATO: nella CRL con motivo certificateHold
  sblocca  BLOCCATO -> ATTIVO: fuori dalla prossima CRL
  revoca   ATTIVO|BLOCCATO -> REVOCATA IN LAVORAZIONE: subito nella CRL come
           sospeso; il primo batch certificati dopo pki.revoke_grace
           (predefinito 24h, il tempo per annullare) lo rende REVOCATO, per
           sempre
  annulla-revoca
           REVOCATA IN LAVORAZIONE -> lo stato prima della revoca (ATTIVO o
           BLOCCATO), solo entro il tempo per annullare

  rinnova  chiede un nuovo certificato per la postazione (stesso codice): lo
           emette il prossimo batch certificati; il precedente resta valido
           per pki.renew_overlap o fino all'installazione del nuovo, poi è
           revocato (superseded)

  list     le postazioni di un comune, in ordine di codice
  show     una postazione: certificato attuale, rinnovo, certificati precedenti
  registro il registro delle installazioni di un comune
  bundle   "Scarica tutti": uno ZIP dei certificati di un comune con
           password.txt
  reinvia-primo
           rimette in coda l'e-mail al sindaco (ASC) con il primo certificato
           del comune e la sua password, dopo un invio non riuscito`,
	}
	for _, op := range []struct {
		name  string
		op    lifecycle.Op
		short string
	}{
		{"blocca", lifecycle.OpBlockPostazione, "Blocca un certificato (ATTIVO -> BLOCCATO) e ripubblica la CRL"},
		{"sblocca", lifecycle.OpUnblockPostazione, "Sblocca un certificato (BLOCCATO -> ATTIVO) e ripubblica la CRL"},
		{"revoca", lifecycle.OpRevokePostazione, "Revoca un certificato (ATTIVO|BLOCCATO -> REVOCATA IN LAVORAZIONE) e ripubblica la CRL"},
		{"annulla-revoca", lifecycle.OpUndoRevocation, "Annulla una revoca entro pki.revoke_grace (torna ATTIVO o BLOCCATO) e ripubblica la CRL"},
	} {
		var motivo string
		sub := &cobra.Command{
			Use:   op.name + " CODICE --motivo TESTO",
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
				rec, err := r.RunManual(cmd.Context(), "crl", a.actor())
				if rec != nil {
					fmt.Fprintln(cmd.OutOrStdout(), runLine("crl", rec))
				}
				if err != nil {
					return fmt.Errorf("%s è %s, ma la CRL non è stata ripubblicata (lo sarà alla prossima esecuzione oraria, o con `anprsec jobs run crl`): %w", p.Code, p.State, err)
				}
				return nil
			},
		}
		sub.Flags().StringVar(&motivo, "motivo", "", "il motivo (`TESTO`), registrato nello storico (obbligatoria)")
		sub.MarkFlagRequired("motivo")
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(a.postazioniListCmd(), a.postazioniBundleCmd(), a.postazioniReinviaPrimoCmd(), a.postazioniRinnovaCmd(), a.postazioniShowCmd(), a.postazioniRegistroCmd())
	return cmd
}

func (a *app) postazioniListCmd() *cobra.Command {
	var comune, stato string
	cmd := &cobra.Command{
		Use:   "list --comune ISTAT [--stato STATO]",
		Short: "Elenca le postazioni di un comune (codice, etichetta, stato, seriale, scadenza, ultimo errore)",
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
	cmd.Flags().StringVar(&comune, "comune", "", "codice `ISTAT` del comune (obbligatoria)")
	cmd.Flags().StringVar(&stato, "stato", "", "solo le postazioni in questo `stato` ("+statesList()+")")
	cmd.MarkFlagRequired("comune")
	return cmd
}

func (a *app) postazioniBundleCmd() *cobra.Command {
	var comune, stato, out string
	cmd := &cobra.Command{
		Use:   "bundle --comune ISTAT [--stato ATTIVO] --out DIR",
		Short: "Scrive uno ZIP dei certificati di un comune con password.txt (\"Scarica tutti\")",
		Long: `bundle scrive DIR/<ISTAT>-certificati-<AAAAMMGG-HHMMSS>.zip (permessi 0600:
contiene le password) con <codice>.p12 per ogni certificato del comune nello
stato indicato (ATTIVO se non indicato) e password.txt, nel formato dei
pacchetti del job certificati. Lo ZIP è verificato prima di prendere il suo
nome definitivo.`,
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
					return fmt.Errorf("--out %s non è una cartella", out)
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
	cmd.Flags().StringVar(&comune, "comune", "", "codice `ISTAT` del comune (obbligatoria)")
	cmd.Flags().StringVar(&stato, "stato", string(domain.CertAttivo), "lo `stato` dei certificati ("+statesList()+")")
	cmd.Flags().StringVar(&out, "out", "", "`cartella` in cui scrivere lo ZIP, creata se manca (obbligatoria)")
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
