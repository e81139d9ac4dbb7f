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
		Short: "The tamper-evident history of every change",
	}
	var checkpoints []string
	var checkpointKey string
	verify := &cobra.Command{
		Use:   "verify [--checkpoint FILE...]",
		Short: "Check the history hash chain; non-zero exit if it is broken",
		Long: `verify recomputes the hash chain of the history: every entry carries the hash
of the previous one, so a modified, removed or reordered entry breaks it. It
prints the number of entries and the head hash; keep the head hash elsewhere
(a ticket, a signed mail) to detect a chain rewritten from scratch. It then
checks the register of installations: every record must equal what its last
history entry says (an edit of the record alone is found).

With --checkpoint FILE... it also checks checkpoints published by the
registro job (sicurezza/registro/registro-<YYYYMMDD>.asc, or the copies
mailed to registro.destinatari): the signature of each against the service
key, and that the chain still holds its hash at its number. A chain
rewritten with the store key alone fails there even when it is intact in
itself. One line per checkpoint; non-zero exit if any fails.`,
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
			fmt.Fprintf(cmd.OutOrStdout(), "history chain intact: %d entries, head %s\n", res.Entries, res.Head)
			n, err := st.VerifyInstallations()
			if err != nil {
				return fmt.Errorf("registro delle installazioni: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registro delle installazioni conforme alla storia: %d righe\n", n)
			return nil
		},
	}
	verify.Flags().StringArrayVar(&checkpoints, "checkpoint", nil, "also check this checkpoint file of the registro job; the arguments that follow are more of them")
	verify.Flags().StringVar(&checkpointKey, "key", "", "the service's public key to check the checkpoints with (default: that of keys.service)")
	cmd.AddCommand(verify)
	var (
		limit      int
		kind, key  string
		file, actr string
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "Show history entries (newest last), optionally filtered",
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
				fmt.Fprintf(cmd.ErrOrStderr(), "showing the last %d of %d entries (--limit 0 for all)\n", limit, len(es))
				es = es[len(es)-limit:]
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tWHEN\tWHO\tWHAT\tKEY\tSOURCE\tDETAIL")
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
	list.Flags().IntVarP(&limit, "limit", "n", 100, "show at most the last N entries (0 = all)")
	list.Flags().StringVar(&kind, "kind", "", "only entries of this record kind (comune, utenza, smartcard, postazione, file)")
	list.Flags().StringVar(&key, "key", "", "only entries whose key contains this text")
	list.Flags().StringVar(&file, "file", "", "only entries from a source file whose path contains this text")
	list.Flags().StringVar(&actr, "actor", "", "only entries by this actor (an operator CF, a dropping party, a job, or the OS user of a back-office command)")
	cmd.AddCommand(list)
	return cmd
}
