package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"anprsec/istat"
)

func init() { extraCommands = append(extraCommands, (*app).istatCmd) }

func (a *app) istatCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "istat",
		Short: "Reference data of comuni and foreign states",
		Long: `istat looks up the embedded reference data: the history of Belfiore codes
(the birthplaces of the codice fiscale: comuni in force and ceased, foreign
states) with their periods of validity, and the comuni of today with their
ISTAT codes. Sources, dates and licences: docs/reference-data.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.istatCercaCmd())
	return cmd
}

func (a *app) istatCercaCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "cerca TESTO|CODICE",
		Short: "Look a comune or a state up by name, ISTAT code or Belfiore code",
		Long: `cerca prints every period of a Belfiore code (H579, Z118), of an ISTAT code
(078108), or of the comuni and states whose name contains TESTO (case,
accents, apostrophes and blanks ignored): code, name, province or state,
ISTAT code, period of validity and, for a comune that ceased, the comune
that took over when the table tells it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			places := istat.DefaultPlaces()
			found := places.Search(args[0], limit+1)
			if len(found) == 0 {
				return fmt.Errorf("nessun comune o stato estero per %q", args[0])
			}
			more := limit > 0 && len(found) > limit
			if more {
				found = found[:limit]
			}
			printPlaces(cmd.OutOrStdout(), places, found)
			if more {
				fmt.Fprintf(cmd.OutOrStdout(), "... altri risultati: precisare la ricerca o usare --limit\n")
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "most periods to print (0 = all)")
	return cmd
}

// printPlaces prints places as a table, in Italian for the operator.
func printPlaces(w io.Writer, places *istat.Places, found []istat.Place) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CODICE\tNOME\tPROV./STATO\tISTAT\tVALIDITÀ\tPOI")
	for _, p := range found {
		where, code := p.Sigla, p.ISTAT
		if p.Foreign() {
			where, code = "stato estero", "-"
			if p.Sigla != "" {
				where += " " + p.Sigla
			}
		}
		next := ""
		if !p.InForce() && !p.Foreign() {
			if s, ok := places.Successor(p); ok {
				next = fmt.Sprintf("%s %s %s (%s)", s.Belfiore, s.ISTAT, s.Name, s.Sigla)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Belfiore, p.Name, where, code, p.Period(), next)
	}
	tw.Flush()
}
