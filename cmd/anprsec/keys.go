package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"anprsec/store"
)

func init() { extraCommands = append(extraCommands, (*app).keysCmd) }

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Operations on the service's keys",
	}
	rotate := &cobra.Command{
		Use:   "rotate seal|store",
		Short: "Rotate the seal key or the store key; run again to resume a rotation stopped half way",
		Long: `rotate seal makes a new seal key (keys.seal) and seals every sealed value of
the store again with it (the PKCS#12 files and passwords of the postazioni,
the secret halves of the smart cards, the pooled keys, the OCSP responder
keys, the seal check value), batch by batch. The new key is written first
to <keys.seal>.new; at the end the old key is archived as
<keys.seal>.<YYYYMMDDHHMMSS>.old and the new one takes its place.

rotate store makes a new store key (keys.store) and builds a copy of the
store encrypted with it in <data_dir>.new, verifies it (history chain, every
record), then swaps: the old store stays in <data_dir>.<YYYYMMDDHHMMSS>.old,
the old key is archived as <keys.store>.<YYYYMMDDHHMMSS>.old.

Both are recorded in the history (chiavi.rotazione, with the keys'
fingerprints). A rotation stopped half way (a crash, kill -9) leaves the
commands that need the key refusing to start; run the same rotate again to
finish it: nothing is lost. The daemon must be stopped (the store is held
by one process). Keep the archived keys with the backups they open (see
the README).`,
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"seal", "store"},
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			src := store.Source{Actor: a.actor()}
			switch args[0] {
			case "seal":
				st, err := a.openStore()
				if err != nil {
					return err
				}
				defer st.Close()
				res, err := st.RotateSealKey(a.cfg.Path(a.cfg.Keys.Seal), src, store.SealRotationOptions{})
				if err != nil {
					return fmt.Errorf("keys rotate seal: %w", err)
				}
				if res.Resumed {
					fmt.Fprintln(out, "rotazione ripresa")
				}
				fmt.Fprintf(out, "chiave di sigillo ruotata: impronta %s → %s, %d valori sigillati di nuovo\nchiave precedente archiviata in %s\n",
					res.Old, res.New, res.Resealed, relPath(res.Archive))
				return nil
			case "store":
				dir := a.cfg.Path(a.cfg.DataDir)
				res, err := store.RotateStoreKey(dir, a.cfg.Path(a.cfg.Keys.Store), src, store.StoreRotationOptions{})
				if err != nil {
					return fmt.Errorf("keys rotate store: %w", err)
				}
				if res.Resumed {
					fmt.Fprintln(out, "rotazione ripresa")
				}
				fmt.Fprintf(out, "chiave dello store ruotata: impronta %s → %s, %d record copiati\nstore precedente in %s (cancellabile dopo le verifiche)\nchiave precedente archiviata in %s\n",
					res.Old, res.New, res.Records, relPath(res.OldDir), relPath(res.KeyArchive))
				return nil
			}
			return fmt.Errorf("keys rotate %s: want seal or store", args[0])
		},
	}
	cmd.AddCommand(rotate)
	return cmd
}
