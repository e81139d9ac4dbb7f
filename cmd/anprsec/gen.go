package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"anprsec/ingest/census/censusgen"
)

func (a *app) genCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate test inputs (census workbooks, signed console requests and delivery manifests) for trials and benchmarks",
	}
	var opt censusgen.Options
	var out string
	c := &cobra.Command{
		Use:               "censimento --out FILE",
		Short:             "Write a census workbook of valid synthetic users (Italy-scale by default)",
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
			bar := newProgress(cmd, total, "writing "+out, false)
			opt.Progress = func(rows int) { bar.Set(rows) }
			st, err := censusgen.WriteFile(out, opt)
			bar.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d user rows, %d comuni\n", out, st.Rows, st.Comuni)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "censimento.xlsx", "workbook to write")
	c.Flags().IntVar(&opt.Comuni, "comuni", 0, "number of comuni (0 = all 7,904)")
	c.Flags().IntVar(&opt.TotalUsers, "users", 0, "total user rows (0 = about 100,000)")
	c.Flags().IntVar(&opt.Workstations, "postazioni", 0, "\"Numero postazioni\" of every comune (0 = 3)")
	c.Flags().Int64Var(&opt.Seed, "seed", 1, "random seed (same seed, same workbook)")
	c.Flags().BoolVar(&opt.NumericISTAT, "numeric-istat", false, "write ISTAT codes as numbers, like spreadsheet programs do")
	c.Flags().BoolVar(&opt.DateCells, "date-cells", false, "write birth dates as date cells")
	cmd.AddCommand(c)
	for _, sub := range genSubcommands {
		cmd.AddCommand(sub(a))
	}
	return cmd
}
