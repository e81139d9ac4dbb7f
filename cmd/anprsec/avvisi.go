package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"anprsec/jobs"
	"anprsec/lifecycle"
	"anprsec/store"
)

func init() { extraCommands = append(extraCommands, (*app).avvisiCmd) }

// avvisiCmd is `anprsec avvisi`: the security notice campaigns
// (docs/rules.md#security-notice-campaign).
func (a *app) avvisiCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "avvisi",
		Short: "Campagne di avvisi di sicurezza: invio straordinario, stato, chiusura",
		Long: `Una campagna di avvisi di sicurezza manda all'ALS e all'ASC di ogni comune
l'avviso sui tentativi di phishing con l'elenco degli utenti del comune da
verificare (xlsx e CSV), per posta cifrata e firmata con la chiave del
servizio. Il comune risponde con la richiesta di console CONFERMA_VERIFICA;
fino ad allora riceve un promemoria ogni avvisi.reminder_every (una
settimana), fino alla scadenza; dopo la scadenza è inadempiente.

Le campagne ordinarie le avvia il job avviso-sicurezza (due volte l'anno);
promemoria e inadempienti li gestisce ogni giorno il job avvisi-promemoria;
i messaggi li spedisce invio-pin.`,
	}
	cmd.AddCommand(a.avvisiInviaCmd(), a.avvisiStatoCmd(), a.avvisiChiudiCmd())
	return cmd
}

func (a *app) avvisiInviaCmd() *cobra.Command {
	var comune, scadenza string
	cmd := &cobra.Command{
		Use:   "invia [--comune ISTAT] [--scadenza GG/MM/AAAA]",
		Short: "Avvia una campagna straordinaria di avvisi di sicurezza",
		Long: `invia avvia una campagna straordinaria (codice AVV-<AAAAMMGG>-S<n>) a tutti i
comuni censiti, o al solo --comune, con scadenza --scadenza (gg/mm/aaaa;
predefinita: avvisi.deadline_days giorni da oggi), e accoda gli avvisi
(li spedisce il job invio-pin). Con il daemon in esecuzione il comando
passa per il suo socket di controllo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := jobs.CampaignOptions{By: a.actor()}
			if comune != "" {
				code, err := istatFlag(comune)
				if err != nil {
					return usageError{err}
				}
				o.Comune = code
			}
			if scadenza != "" {
				d, err := parseDay(scadenza, a.loc())
				if err != nil {
					return usageError{fmt.Errorf("--scadenza: %w", err)}
				}
				o.Deadline = d
			}
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			c, err := jobs.StartCampaign(r.Env(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "campagna %s avviata: %d comuni, scadenza %s\n", c.ID, len(c.Comuni), a.whenDay(c.Deadline))
			rec, err := r.RunManual(cmd.Context(), "avvisi-promemoria", a.actor())
			if rec != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "avvisi-promemoria: %s %s\n", rec.Outcome, formatCounts(rec.Counts, rec.Values))
			}
			return err
		},
	}
	cmd.Flags().StringVar(&comune, "comune", "", "solo questo comune (codice ISTAT)")
	cmd.Flags().StringVar(&scadenza, "scadenza", "", "ultimo giorno per confermare la verifica, gg/mm/aaaa")
	return cmd
}

func (a *app) avvisiStatoCmd() *cobra.Command {
	var campagna string
	cmd := &cobra.Command{
		Use:   "stato [--campagna ID]",
		Short: "Per ogni campagna: comuni avvisati, confermati, sollecitati, inadempienti, messaggi non recapitati",
		Long: `stato mostra per ogni campagna i comuni avvisati, quelli che hanno confermato
la verifica, quelli sollecitati con almeno un promemoria, gli inadempienti
(scadenza passata senza conferma) e i messaggi non recapitati (rifiutati dal
server di posta o messi da parte). Con --campagna mostra anche ogni comune:
conferma (data e codice fiscale di chi ha confermato), promemoria, stato
dei messaggi.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			return st.View(func(tx *store.Tx) error {
				if campagna == "" {
					return a.avvisiSummary(cmd.OutOrStdout(), tx)
				}
				c, err := tx.Campaign(strings.TrimSpace(campagna))
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("la campagna %s non esiste", campagna)
				}
				if err != nil {
					return err
				}
				return a.avvisiDetail(cmd.OutOrStdout(), tx, c)
			})
		},
	}
	cmd.Flags().StringVar(&campagna, "campagna", "", "il codice della campagna (AVV-...)")
	return cmd
}

// avvisiSummary prints one line per campaign.
func (a *app) avvisiSummary(out io.Writer, tx *store.Tx) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CAMPAGNA\tSTATO\tAVVIATA\tSCADENZA\tCOMUNI\tAVVISATI\tCONFERMATI\tSOLLECITATI\tINADEMPIENTI\tSENZA DESTINATARIO\tMESSAGGI NON RECAPITATI")
	n := 0
	err := tx.Campaigns(func(c *store.Campaign) error {
		f, err := tx.CampaignFiguresOf(c)
		if err != nil {
			return err
		}
		n++
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", c.ID, c.State, a.whenDay(c.Start), a.whenDay(c.Deadline),
			f.Comuni, f.Notified, f.Confirmed, f.Reminded, f.Overdue, f.NoRecipient, f.MailsFailed)
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(out, "nessuna campagna di avvisi di sicurezza")
		return nil
	}
	return w.Flush()
}

// avvisiDetail prints a campaign's figures and one line per comune.
func (a *app) avvisiDetail(out io.Writer, tx *store.Tx, c *store.Campaign) error {
	f, err := tx.CampaignFiguresOf(c)
	if err != nil {
		return err
	}
	kind := "ordinaria"
	if c.Extraordinary {
		kind = "straordinaria"
	}
	fmt.Fprintf(out, "campagna %s (%s), %s: avviata il %s, scadenza %s, promemoria %s\n",
		c.ID, kind, c.State, a.whenDay(c.Start), a.whenDay(c.Deadline), lifecycle.ReminderText(c.ReminderEvery))
	if !c.Closed.IsZero() {
		fmt.Fprintf(out, "chiusa il %s da %s\n", a.when(c.Closed), c.ClosedBy)
	}
	fmt.Fprintf(out, "comuni %d, avvisati %d, confermati %d, sollecitati %d, inadempienti %d, senza destinatario %d\n",
		f.Comuni, f.Notified, f.Confirmed, f.Reminded, f.Overdue, f.NoRecipient)
	fmt.Fprintf(out, "messaggi: inviati %d, in coda %d, non recapitati %d\n", f.MailsSent, f.MailsQueued, f.MailsFailed)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ISTAT\tCOMUNE\tAVVISATO\tDESTINATARI\tPROMEMORIA\tCONFERMA\tCONFERMATO DA\tINADEMPIENTE\tNON RECAPITATI")
	err = tx.CampaignComuni(c.ID, func(cc *store.CampaignComune) error {
		failed := 0
		var reasons []string
		for _, id := range cc.Mails {
			m, err := tx.Mail(id)
			if err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			if m.State == store.MailFailed {
				failed++
				reasons = append(reasons, m.To+": "+oneLineErr(m.LastError))
			}
		}
		confirmed, overdue := "-", "-"
		if !cc.Confirmed.IsZero() {
			confirmed = a.when(cc.Confirmed)
		}
		if !cc.Overdue.IsZero() && cc.Confirmed.IsZero() {
			overdue = a.whenDay(cc.Overdue)
		}
		nf := fmt.Sprint(failed)
		if failed > 0 {
			nf += " (" + strings.Join(reasons, "; ") + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", cc.ISTAT, cc.Name, a.whenDay(cc.Notified), cc.Recipients, cc.Reminders,
			confirmed, orDash(cc.ConfirmedBy), overdue, nf)
		return nil
	})
	if err != nil {
		return err
	}
	return w.Flush()
}

func oneLineErr(s string) string { return strings.Join(strings.Fields(s), " ") }

func (a *app) avvisiChiudiCmd() *cobra.Command {
	var motivo string
	cmd := &cobra.Command{
		Use:   "chiudi ID [--motivo TESTO]",
		Short: "Chiude una campagna: niente più promemoria né inadempienti; i dati restano",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.backOfficeOp(cmd, func(tx *store.Tx, src store.Source) (string, error) {
				c, ref, err := lifecycle.CloseCampaign(tx, src, strings.TrimSpace(args[0]), motivo)
				if err != nil {
					return "", err
				}
				if ref != nil {
					return "", ref
				}
				return fmt.Sprintf("campagna %s chiusa: nessun altro promemoria", c.ID), nil
			})
		},
	}
	cmd.Flags().StringVar(&motivo, "motivo", "", "il motivo, registrato nella storia")
	return cmd
}
