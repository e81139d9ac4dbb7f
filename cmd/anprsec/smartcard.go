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
		Short: "Registra consegne, sostituisce, blocca, sblocca e mostra le smart card (back-office)",
		Long: `smartcard agisce sulle smart card di qualunque comune, come back-office del
ministero (gli ALS dei comuni fanno lo stesso con le richieste da console).

  consegna  CONSEGNATA DALLA PREFETTURA -> ATTIVA: la smart card è stata
            consegnata al titolare; le seconde metà di PIN, PUK e password
            vanno in coda e partono con la prossima esecuzione di invio-pin
            (ogni minuto)
  nuova     smarrimento o furto: la smart card del titolare diventa subito
            REVOCATA e ne viene richiesta una nuova (va al produttore con la
            prossima esecuzione di ordini-sc);
            con --motivo scadenza la smart card attuale resta ATTIVA finché
            la nuova non è attivata, e allora è revocata
  blocca    ATTIVA -> BLOCCATA
  sblocca   BLOCCATA -> ATTIVA
  reinvia   di nuovo la mail delle seconde metà, dopo un invio fallito
            (indirizzo o chiave del titolare corretti); solo finché sono
            conservate
  show      le utenze di una persona, le sue smart card e lo stato delle mail`,
	}
	var cf, serial, motivo string
	consegna := &cobra.Command{
		Use:   "consegna --cf CF --seriale SERIALE",
		Short: "Registra la consegna di una smart card al titolare (ATTIVA; seconde metà in coda per la mail)",
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
	consegna.Flags().StringVar(&cf, "cf", "", "codice fiscale `CF` del titolare (obbligatoria)")
	consegna.Flags().StringVar(&serial, "seriale", "", "numero di serie `SERIALE` della smart card (obbligatoria)")
	consegna.MarkFlagRequired("cf")
	consegna.MarkFlagRequired("seriale")

	nuova := &cobra.Command{
		Use:   "nuova --cf CF --motivo TESTO",
		Short: "Sostituisce una smart card smarrita o rubata: l'attuale subito REVOCATA, una nuova richiesta",
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
	nuova.Flags().StringVar(&cf, "cf", "", "codice fiscale `CF` del titolare (obbligatoria)")
	nuova.Flags().StringVar(&motivo, "motivo", "", "il motivo (`TESTO`: smarrimento, furto, scadenza, ...), registrato nello storico (obbligatoria); \"scadenza\" lascia attiva la smart card attuale finché la nuova non è attivata")
	nuova.MarkFlagRequired("cf")
	nuova.MarkFlagRequired("motivo")
	cmd.AddCommand(consegna, nuova)

	stateMsg := func(c *domain.SmartCard) string { return fmt.Sprintf("%s: %s (titolare %s)", c.Serial, c.State, c.CF) }
	for _, op := range []struct {
		name, short string
		fn          func(*store.Tx, store.Source, *domain.SmartCard, string) error
		done        func(*domain.SmartCard) string
	}{
		{"blocca", "Blocca una smart card (ATTIVA -> BLOCCATA)", lifecycle.BlockCard, stateMsg},
		{"sblocca", "Sblocca una smart card (BLOCCATA -> ATTIVA)", lifecycle.UnblockCard, stateMsg},
		{"reinvia", "Rimette in coda la mail delle seconde metà di una smart card attiva dopo un invio fallito (indirizzo o chiave corretti)", lifecycle.ResendCard,
			func(c *domain.SmartCard) string {
				return fmt.Sprintf("%s: seconde metà di nuovo in coda (job invio-pin)", c.Serial)
			}},
	} {
		var cf, serial, motivo string
		sub := &cobra.Command{
			Use:   op.name + " (--cf CF | --seriale SERIALE) --motivo TESTO",
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
		sub.Flags().StringVar(&cf, "cf", "", "codice fiscale `CF` del titolare (la sua smart card attuale)")
		sub.Flags().StringVar(&serial, "seriale", "", "numero di serie `SERIALE` della smart card")
		sub.Flags().StringVar(&motivo, "motivo", "", "il motivo (`TESTO`), registrato nello storico (obbligatoria)")
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
		Short: "Mostra le utenze e le smart card di una persona e lo stato della mail delle seconde metà",
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
	cmd.Flags().StringVar(&cf, "cf", "", "codice fiscale `CF` (obbligatoria)")
	cmd.MarkFlagRequired("cf")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
