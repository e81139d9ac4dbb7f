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
		Short: "Operazioni sulle chiavi del servizio",
	}
	rotate := &cobra.Command{
		Use:   "rotate seal|store",
		Short: "Ruota la chiave di sigillo o la chiave dell'archivio; rieseguire per riprendere una rotazione interrotta",
		Long: `rotate seal crea una nuova chiave di sigillo (keys.seal) e sigilla di nuovo con
essa ogni valore sigillato dell'archivio (i file PKCS#12 e le password delle
postazioni, le metà segrete delle smart card, le chiavi della riserva, le
chiavi del risponditore OCSP, il valore di controllo del sigillo), a lotti.
La nuova chiave è scritta prima in <keys.seal>.new; alla fine la vecchia
chiave è archiviata come <keys.seal>.<YYYYMMDDHHMMSS>.old e la nuova prende
il suo posto.

rotate store crea una nuova chiave dell'archivio (keys.store), costruisce in
<data_dir>.new una copia dell'archivio cifrata con essa, la verifica (catena
dello storico, ogni record), poi le scambia: il vecchio archivio resta in
<data_dir>.<YYYYMMDDHHMMSS>.old, la vecchia chiave è archiviata come
<keys.store>.<YYYYMMDDHHMMSS>.old.

Entrambe sono registrate nello storico (chiavi.rotazione, con le impronte
delle chiavi). Una rotazione interrotta a metà (un crash, kill -9) lascia i
comandi che usano la chiave in rifiuto di partire; rieseguire la stessa
rotate per completarla: nulla va perso. Il servizio deve essere fermo
(l'archivio è usato da un solo processo alla volta). Conservare le chiavi
archiviate con i backup che aprono (vedere il README).`,
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
			return fmt.Errorf("keys rotate %s: indicare seal o store", args[0])
		},
	}
	cmd.AddCommand(rotate)
	return cmd
}
