package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"anprsec/ingest/census/censusgen"
)

func (a *app) genCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Genera file di ingresso di prova (cartelle del censimento, richieste da console firmate, distinte di consegna) per prove e misure",
	}
	var opt censusgen.Options
	var out string
	c := &cobra.Command{
		Use:               "censimento --out FILE",
		Short:             "Scrive una cartella del censimento di utenze sintetiche valide (se non indicato, alla scala dell'Italia)",
		Args:              cobra.NoArgs,
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			total := int64(opt.TotalUsers)
			if total == 0 {
				total = censusgen.DefaultTotalUsers
			}
			if opt.UsersPerComune > 0 {
				total = -1 // known only once the comuni are chosen
			}
			bar := newProgress(cmd, total, "scrittura di "+out, false)
			opt.Progress = func(rows int) { bar.Set(rows) }
			st, err := censusgen.WriteFile(out, opt)
			bar.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d righe di utenze, %d comuni\n", out, st.Rows, st.Comuni)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "censimento.xlsx", "`file` xlsx da scrivere")
	c.Flags().IntVar(&opt.Comuni, "comuni", 0, "`numero` di comuni (0 = tutti i 7.904)")
	c.Flags().IntVar(&opt.TotalUsers, "users", 0, "`numero` totale di righe di utenze (0 = circa 100.000)")
	c.Flags().IntVar(&opt.Workstations, "postazioni", 0, "\"Numero postazioni\" di ogni comune (`numero`; 0 = 3)")
	c.Flags().Int64Var(&opt.Seed, "seed", 1, "`seme` casuale (stesso seme, stessa cartella)")
	c.Flags().BoolVar(&opt.NumericISTAT, "numeric-istat", false, "scrive i codici ISTAT come numeri, come fanno i fogli di calcolo")
	c.Flags().BoolVar(&opt.DateCells, "date-cells", false, "scrive le date di nascita come celle di tipo data")
	cmd.AddCommand(c)
	for _, sub := range genSubcommands {
		cmd.AddCommand(sub(a))
	}
	return cmd
}
