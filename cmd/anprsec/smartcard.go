package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/store"
)

func (a *app) smartcardCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "smartcard",
		Short: "Register deliveries, replace, block, unblock and show smart cards (back-office)",
		Long: `smartcard acts on the smart cards of any comune, as the ministry's back-office
(the comuni's ALS do the same through console requests).

  consegna  CONSEGNATA DALLA PREFETTURA -> ATTIVA: the card was handed to its
            holder; the second halves of PIN, PUK and password are queued and
            leave with the next invio-pin run (every minute)
  nuova     loss or theft: the holder's card is REVOCATA at once and a new one
            is requested (it goes to the producer with the next ordini-sc run);
            with --motivo scadenza the current card stays ATTIVA until the
            new one is activated, and is revoked then
  blocca    ATTIVA -> BLOCCATA
  sblocca   BLOCCATA -> ATTIVA
  reinvia   the e-mail of the second halves again, after it failed (the
            address or the holder's key fixed); only while they are held
  show      a person's utenze, cards and the state of their e-mails`,
	}
	var cf, serial, motivo string
	consegna := &cobra.Command{
		Use:   "consegna --cf CF --seriale SERIALE",
		Short: "Register the delivery of a card to its holder (ATTIVA; second halves queued for e-mail)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.backOfficeOp(cmd, func(tx *store.Tx, src store.Source) (string, error) {
				c, err := lifecycle.FindCard(tx, cf, serial)
				if err != nil {
					return "", err
				}
				if err := lifecycle.ActivateCard(tx, src, c); err != nil {
					return "", err
				}
				return fmt.Sprintf("%s: %s (titolare %s); seconde metà in coda per l'invio (job invio-pin)", c.Serial, c.State, c.CF), nil
			})
		},
	}
	consegna.Flags().StringVar(&cf, "cf", "", "codice fiscale of the holder (required)")
	consegna.Flags().StringVar(&serial, "seriale", "", "serial of the card (required)")
	consegna.MarkFlagRequired("cf")
	consegna.MarkFlagRequired("seriale")

	nuova := &cobra.Command{
		Use:   "nuova --cf CF --motivo TEXT",
		Short: "Replace a lost or stolen card: the current one REVOCATA at once, a new one requested",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.backOfficeOp(cmd, func(tx *store.Tx, src store.Source) (string, error) {
				old, nw, err := lifecycle.ReplaceCard(tx, src, cf, motivo, a.cfg.Cards.SerialPrefix, "")
				if err != nil {
					return "", err
				}
				if old == "" {
					msg := fmt.Sprintf("%s: nuova smart card %s RICHIESTA", strings.ToUpper(cf), nw)
					if pe, err := tx.Person(strings.ToUpper(strings.TrimSpace(cf))); err == nil && pe.NextCard == nw {
						msg += fmt.Sprintf("; la smart card %s resta attiva fino alla consegna della nuova", pe.Card)
					}
					return msg, nil
				}
				return fmt.Sprintf("%s: smart card %s REVOCATA, nuova smart card %s RICHIESTA", strings.ToUpper(cf), old, nw), nil
			})
		},
	}
	nuova.Flags().StringVar(&cf, "cf", "", "codice fiscale of the holder (required)")
	nuova.Flags().StringVar(&motivo, "motivo", "", "the reason (loss, theft, ...), recorded in the history (required); \"scadenza\" keeps the current card active until the new one is activated")
	nuova.MarkFlagRequired("cf")
	nuova.MarkFlagRequired("motivo")
	cmd.AddCommand(consegna, nuova)

	stateMsg := func(c *domain.SmartCard) string { return fmt.Sprintf("%s: %s (titolare %s)", c.Serial, c.State, c.CF) }
	for _, op := range []struct {
		name, short string
		fn          func(*store.Tx, store.Source, *domain.SmartCard, string) error
		done        func(*domain.SmartCard) string
	}{
		{"blocca", "Block a card (ATTIVA -> BLOCCATA)", lifecycle.BlockCard, stateMsg},
		{"sblocca", "Unblock a card (BLOCCATA -> ATTIVA)", lifecycle.UnblockCard, stateMsg},
		{"reinvia", "Queue again the e-mail of an active card's second halves after it failed (address or key fixed)", lifecycle.ResendCard,
			func(c *domain.SmartCard) string {
				return fmt.Sprintf("%s: seconde metà di nuovo in coda (job invio-pin)", c.Serial)
			}},
	} {
		var cf, serial, motivo string
		sub := &cobra.Command{
			Use:   op.name + " (--cf CF | --seriale SERIALE) --motivo TEXT",
			Short: op.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.backOfficeOp(cmd, func(tx *store.Tx, src store.Source) (string, error) {
					c, err := lifecycle.FindCard(tx, cf, serial)
					if err != nil {
						return "", err
					}
					if err := op.fn(tx, src, c, motivo); err != nil {
						return "", err
					}
					return op.done(c), nil
				})
			},
		}
		sub.Flags().StringVar(&cf, "cf", "", "codice fiscale of the holder (its current card)")
		sub.Flags().StringVar(&serial, "seriale", "", "serial of the card")
		sub.Flags().StringVar(&motivo, "motivo", "", "the reason, recorded in the history (required)")
		sub.MarkFlagRequired("motivo")
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(a.smartcardShowCmd())
	return cmd
}

// backOfficeOp runs one back-office operation (cards, utenze) in a store
// transaction, with the operator running the CLI as the history actor.
func (a *app) backOfficeOp(cmd *cobra.Command, fn func(tx *store.Tx, src store.Source) (string, error)) error {
	if err := a.checkSecrets(); err != nil {
		return err
	}
	st, err := a.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	var msg string
	if err := st.Update(func(tx *store.Tx) error {
		msg, err = fn(tx, store.Source{Actor: a.actor()})
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), msg)
	return nil
}

func (a *app) smartcardShowCmd() *cobra.Command {
	var cf string
	cmd := &cobra.Command{
		Use:   "show --cf CF",
		Short: "Show a person's utenze, smart cards and the state of the e-mail of their second halves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			cf = strings.ToUpper(strings.TrimSpace(cf))
			out := cmd.OutOrStdout()
			return st.View(func(tx *store.Tx) error {
				p, err := tx.Person(cf)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("persona sconosciuta: %s", cf)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s %s %s, nato/a il %s; smart card attuale: %s\n\n", p.CF, p.Surname, p.Name, personDay(p.BirthDate), orDash(p.Card))
				comuni, err := tx.ComuniOfPerson(cf)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "COMUNE\tPROFILI\tSTATO UTENZA\tEMAIL")
				for _, c := range comuni {
					u, err := tx.Utenza(c, cf)
					if err != nil {
						return err
					}
					ps := make([]string, len(u.Profiles))
					for i, p := range u.Profiles {
						ps[i] = string(p)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c, strings.Join(ps, ","), u.State, u.Email)
				}
				w.Flush()
				fmt.Fprintln(out)
				serials, err := tx.CardsOfPerson(cf)
				if err != nil {
					return err
				}
				w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "SERIALE\tSTATO\tCOMUNE\tORDINE\tCONSEGNA\tATTIVA DAL\tSCADENZA\tSECONDE METÀ\tMOTIVO")
				for _, s := range serials {
					c, err := tx.Card(s)
					if err != nil {
						return err
					}
					mailState := "-"
					if m, err := tx.Mail(store.PINMailID(s)); err == nil {
						mailState = string(m.State)
						switch m.State {
						case store.MailSent:
							mailState = "inviate " + a.when(m.Sent)
						case store.MailQueued:
							mailState = fmt.Sprintf("in coda (tentativi %d)", m.Attempts)
						case store.MailFailed:
							mailState = "non inviate: " + m.LastError
						}
					} else if len(c.SecondSealed) > 0 {
						mailState = "sigillate, in attesa della consegna"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Serial, c.State, c.ISTAT, orDash(c.Order),
						a.whenDay(c.Delivered), a.whenDay(c.Activated), a.whenDay(c.Expires), mailState, orDash(c.Reason))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&cf, "cf", "", "codice fiscale (required)")
	cmd.MarkFlagRequired("cf")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
