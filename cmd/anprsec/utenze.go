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

func init() { extraCommands = append(extraCommands, (*app).utenzeCmd) }

func (a *app) utenzeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "utenze",
		Short: "List, block, unblock and delete utenze (back-office)",
		Long: `utenze acts on the utenze of any comune, as the ministry's back-office (the
comuni's ALS do the same through console requests). No operation may leave a
comune without its sindaco (ASC), an ALS or an ALP among its active utenze.

  list      the utenze of a comune
  blocca    ATTIVA -> BLOCCATA
  sblocca   BLOCCATA -> ATTIVA
  cancella  the utenza goes: it is removed from the store at once (the
            history names it by pseudonym; docs/personal-data.md); if it was
            the person's last one, the person's smart card is disabled for
            good, and the person is erased retention.persona_days later`,
	}
	for _, op := range []struct {
		name, short string
		op          lifecycle.Op
	}{
		{"blocca", "Block an utenza (ATTIVA -> BLOCCATA)", lifecycle.OpBlockUtente},
		{"sblocca", "Unblock an utenza (BLOCCATA -> ATTIVA)", lifecycle.OpUnblockUtente},
		{"cancella", "Delete an utenza (and, if it was the last, disable the card)", lifecycle.OpCancelUtente},
	} {
		var comune, cf, motivo string
		sub := &cobra.Command{
			Use:   op.name + " --comune ISTAT --cf CF --motivo TEXT",
			Short: op.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if strings.TrimSpace(motivo) == "" {
					return errors.New("il motivo è obbligatorio (--motivo)")
				}
				comune, err := istatFlag(comune)
				if err != nil {
					return err
				}
				return a.backOfficeOp(cmd, func(tx *store.Tx, src store.Source) (string, error) {
					code, msg, ref, err := lifecycle.ChangeUtenza(tx, src, op.op, comune, cf, motivo)
					if err != nil {
						return "", err
					}
					if ref != nil {
						return "", fmt.Errorf("%s: %s", ref.Code, ref.Message)
					}
					return code + ": " + msg, nil
				})
			},
		}
		sub.Flags().StringVar(&comune, "comune", "", "ISTAT code of the comune (required)")
		sub.Flags().StringVar(&cf, "cf", "", "codice fiscale (required)")
		sub.Flags().StringVar(&motivo, "motivo", "", "the reason, recorded in the history (required)")
		sub.MarkFlagRequired("comune")
		sub.MarkFlagRequired("cf")
		sub.MarkFlagRequired("motivo")
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(a.eccezioneCFCmd())
	var comune string
	list := &cobra.Command{
		Use:   "list --comune ISTAT",
		Short: "List the utenze of a comune: CF, name, profiles, state, card",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			comune, err := istatFlag(comune)
			if err != nil {
				return err
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "CODICE FISCALE\tCOGNOME\tNOME\tPROFILI\tSTATO\tSMART CARD\tEMAIL")
			err = st.View(func(tx *store.Tx) error {
				if _, err := tx.Comune(comune); errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("comune sconosciuto: %s", comune)
				}
				return tx.UtenzeOfComune(comune, func(u *domain.Utenza) error {
					var surname, name, card string
					if p, err := tx.Person(u.CF); err == nil {
						surname, name = p.Surname, p.Name
						if c, err := tx.Card(p.Card); err == nil {
							card = c.Serial + " " + string(c.State)
						}
					}
					ps := make([]string, len(u.Profiles))
					for i, p := range u.Profiles {
						ps[i] = string(p)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.CF, surname, name, strings.Join(ps, ","), u.State, orDash(card), u.Email)
					return nil
				})
			})
			if err != nil {
				return err
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&comune, "comune", "", "ISTAT code of the comune (required)")
	list.MarkFlagRequired("comune")
	cmd.AddCommand(list)
	return cmd
}
