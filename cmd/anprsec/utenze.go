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
		Short: "Elenca, blocca, sblocca e cancella le utenze (back-office)",
		Long: `utenze agisce sulle utenze di qualunque comune, come back-office del ministero
(gli ALS dei comuni fanno lo stesso con le richieste da console). Nessuna
operazione può lasciare un comune senza il sindaco (ASC), un ALS o un ALP tra
le utenze attive.

  list      le utenze di un comune
  blocca    ATTIVA -> BLOCCATA
  sblocca   BLOCCATA -> ATTIVA
  cancella  l'utenza è tolta subito dall'archivio (lo storico la nomina con
            uno pseudonimo; docs/personal-data.md); se era l'ultima della
            persona, la sua smart card è disattivata per sempre, e la
            persona è cancellata retention.persona_days giorni dopo`,
	}
	for _, op := range []struct {
		name, short string
		op          lifecycle.Op
	}{
		{"blocca", "Blocca un'utenza (ATTIVA -> BLOCCATA)", lifecycle.OpBlockUtente},
		{"sblocca", "Sblocca un'utenza (BLOCCATA -> ATTIVA)", lifecycle.OpUnblockUtente},
		{"cancella", "Cancella un'utenza (e, se era l'ultima, disattiva la smart card)", lifecycle.OpCancelUtente},
	} {
		var comune, cf, motivo string
		sub := &cobra.Command{
			Use:   op.name + " --comune ISTAT --cf CF --motivo TESTO",
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
		sub.Flags().StringVar(&comune, "comune", "", "codice `ISTAT` del comune (obbligatoria)")
		sub.Flags().StringVar(&cf, "cf", "", "codice fiscale `CF` (obbligatoria)")
		sub.Flags().StringVar(&motivo, "motivo", "", "il motivo (`TESTO`), registrato nello storico (obbligatoria)")
		sub.MarkFlagRequired("comune")
		sub.MarkFlagRequired("cf")
		sub.MarkFlagRequired("motivo")
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(a.eccezioneCFCmd())
	var comune string
	list := &cobra.Command{
		Use:   "list --comune ISTAT",
		Short: "Elenca le utenze di un comune: CF, nome, profili, stato, smart card",
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
	list.Flags().StringVar(&comune, "comune", "", "codice `ISTAT` del comune (obbligatoria)")
	list.MarkFlagRequired("comune")
	cmd.AddCommand(list)
	return cmd
}
