package main

import (
	"anprsec/lifecycle"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"anprsec/store"
)

func (a *app) historyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Lo storico a prova di manomissione di ogni modifica",
	}
	var checkpoints []string
	var checkpointKey string
	verify := &cobra.Command{
		Use:   "verify [--checkpoint FILE...]",
		Short: "Verifica la catena di hash dello storico; uscita non zero se è spezzata",
		Long: `verify ricalcola la catena di hash dello storico: ogni voce porta l'hash della
precedente, quindi una voce modificata, tolta o spostata la spezza. Stampa il
numero di voci e l'hash dell'ultima; conservare quell'hash altrove (un ticket,
una mail firmata) permette di scoprire una catena riscritta da capo. Verifica poi il
registro delle installazioni: ogni riga deve essere uguale a quanto dice la
sua ultima voce dello storico (una modifica della sola riga è scoperta).

Con --checkpoint FILE... verifica anche i punti di controllo pubblicati dal
job registro (sicurezza/registro/registro-<YYYYMMDD>.asc, o le copie inviate
a registro.destinatari): la firma di ciascuno con la chiave del servizio, e
che la catena abbia ancora il suo hash al suo numero. Una catena riscritta
con la sola chiave dell'archivio non supera questa verifica anche quando è
integra in sé. Una riga per punto di controllo; uscita non zero se uno non
la supera.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(checkpoints) == 0 {
				return cobra.NoArgs(cmd, args)
			}
			return nil // more checkpoint files: --checkpoint registro-*.asc
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			if len(checkpoints) > 0 {
				return a.verifyCheckpoints(cmd.OutOrStdout(), st, append(checkpoints, args...), checkpointKey)
			}
			res, err := st.VerifyHistory()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena dello storico integra: %d voci, ultima %s\n", res.Entries, res.Head)
			n, err := st.VerifyInstallations()
			if err != nil {
				return fmt.Errorf("registro delle installazioni: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registro delle installazioni conforme alla storia: %d righe\n", n)
			return nil
		},
	}
	verify.Flags().StringArrayVar(&checkpoints, "checkpoint", nil, "verifica anche il punto di controllo del job registro in `FILE`; gli argomenti che seguono sono altri punti di controllo")
	verify.Flags().StringVar(&checkpointKey, "key", "", "il `FILE` della chiave pubblica del servizio con cui verificare i punti di controllo (se assente: quella di keys.service)")
	cmd.AddCommand(verify)
	var (
		limit      int
		kind, key  string
		file, actr string
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "Mostra le voci dello storico (la più recente in fondo), con filtri facoltativi",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			es, err := st.History(0, 0, func(e *store.Entry) bool {
				return (kind == "" || e.Kind == kind) && (key == "" || strings.Contains(e.Key, key)) &&
					(file == "" || strings.Contains(e.File, file)) && (actr == "" || e.Actor == actr || e.Actor == lifecycle.BackOfficeOperator(actr))
			})
			if err != nil {
				return err
			}
			if limit > 0 && len(es) > limit {
				fmt.Fprintf(cmd.ErrOrStderr(), "mostrate le ultime %d di %d voci (--limit 0 per tutte)\n", limit, len(es))
				es = es[len(es)-limit:]
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "N.\tQUANDO\tCHI\tCOSA\tCHIAVE\tORIGINE\tDETTAGLIO")
			for _, e := range es {
				src := e.File
				if e.Row > 0 {
					src = fmt.Sprintf("%s %s:%d", e.File, e.Sheet, e.Row)
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, a.when(e.Time), e.Actor, e.Action, e.Key, src, e.Detail)
			}
			return w.Flush()
		},
	}
	list.Flags().IntVarP(&limit, "limit", "n", 100, "mostra al più le ultime `N` voci (0 = tutte)")
	list.Flags().StringVar(&kind, "kind", "", "solo le voci di questo `tipo` (comune, utenza, smartcard, postazione, file)")
	list.Flags().StringVar(&key, "key", "", "solo le voci la cui chiave contiene questo `testo`")
	list.Flags().StringVar(&file, "file", "", "solo le voci da un file di origine il cui percorso contiene questo `testo`")
	list.Flags().StringVar(&actr, "actor", "", "solo le voci di questo `autore` (il CF di un operatore, chi ha depositato il file, un job, o l'utente di sistema di un comando di back-office)")
	cmd.AddCommand(list)
	return cmd
}
