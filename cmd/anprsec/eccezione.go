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
		Use:   "eccezione-cf CF --motivo TESTO [--revoca]",
		Short: "Fa passare i controlli di nome e luogo di nascita a un codice fiscale reale fuori regola",
		Long: `eccezione-cf registra un'eccezione per un codice fiscale: un codice reale che
non segue le regole (i codici attribuiti per errore restano validi a vita)
supera i controlli di cognome, nome e luogo di nascita rispetto al codice,
nel censimento e nelle richieste da console, e la ricevuta di ogni riga che
lascia passare lo dice. Il codice deve comunque essere ben formato, con il
carattere di controllo giusto. L'eccezione e il suo motivo sono registrati
nello storico; --revoca la toglie.`,
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
	cmd.Flags().StringVar(&motivo, "motivo", "", "il motivo (`TESTO`), registrato nello storico (obbligatoria)")
	cmd.Flags().BoolVar(&revoca, "revoca", false, "toglie l'eccezione")
	cmd.MarkFlagRequired("motivo")
	return cmd
}
