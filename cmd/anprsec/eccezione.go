package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"anprsec/codfisc"
	"anprsec/store"
)

// eccezioneCFCmd is `anprsec utenze eccezione-cf`.
func (a *app) eccezioneCFCmd() *cobra.Command {
	var motivo string
	var revoca bool
	cmd := &cobra.Command{
		Use:   "eccezione-cf CF --motivo TEXT [--revoca]",
		Short: "Let one real codice fiscale that breaks the rules pass the name and birthplace checks",
		Long: `eccezione-cf records an exception for one codice fiscale: a real code that does
not follow the rules (codes assigned in error stay valid for life) passes the
checks of surname, name and birthplace against the code, in the census and
in console requests, and the receipt of every row it lets through says so.
The code must still be well formed, with the right check letter. The
exception and its reason are recorded in the history; --revoca removes it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(motivo) == "" {
				return errors.New("il motivo è obbligatorio (--motivo)")
			}
			cf := codfisc.Normalize(args[0])
			if _, err := codfisc.Parse(cf); err != nil {
				return err
			}
			return a.backOfficeOp(cmd, func(tx *store.Tx, src store.Source) (string, error) {
				old, err := tx.CFException(cf)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return "", err
				}
				if revoca {
					if old == nil {
						return "", fmt.Errorf("%s non ha un'eccezione", cf)
					}
					if err := tx.DeleteCFException(cf); err != nil {
						return "", err
					}
					return "eccezione revocata per " + cf, tx.Record(src, "cf.eccezione.revoca", "persona", cf, motivo)
				}
				if err := tx.PutCFException(&store.CFException{CF: cf, Motivo: motivo, Actor: src.Actor, Created: tx.Now}); err != nil {
					return "", err
				}
				detail := motivo
				if old != nil {
					detail = fmt.Sprintf("%s (prima: %s)", motivo, old.Motivo)
				}
				return "eccezione registrata per " + cf + ": cognome, nome e luogo di nascita non sono verificati",
					tx.Record(src, "cf.eccezione", "persona", cf, detail)
			})
		},
	}
	cmd.Flags().StringVar(&motivo, "motivo", "", "the reason, recorded in the history (required)")
	cmd.Flags().BoolVar(&revoca, "revoca", false, "remove the exception")
	cmd.MarkFlagRequired("motivo")
	return cmd
}
