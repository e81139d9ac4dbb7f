package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"anprsec/secret"
)

func (a *app) backupCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Scrive in FILE un backup completo e cifrato dell'archivio",
		Long: `backup scrive un backup completo dell'archivio, cifrato con XChaCha20-Poly1305
con la chiave di backup (keys.backup, var/keys/backup.key): il file non
contiene in chiaro codici fiscali, e-mail o segreti. La chiave di backup va
custodita lontano dai backup. Un FILE esistente è sostituito solo con --force.
Il servizio deve essere fermo (l'archivio è usato da un solo processo alla
volta).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := secret.ReadKey(a.cfg.Path(a.cfg.Keys.Backup))
			if err != nil {
				return initHint(err)
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			// A backup taken half way through a rotation of the seal key
			// would hold values sealed with either key.
			if err := st.SealRotationPending(); err != nil {
				return err
			}
			// The file is the caller's: through the control socket the CLI
			// writes it, with the caller's permissions.
			fsys := a.callerFS()
			out := args[0]
			if _, err := fsys.Lstat(out); err == nil && !force {
				return fmt.Errorf("%s esiste già: un backup non viene mai sovrascritto senza --force", out)
			}
			f, err := fsys.Create(out, 0o600)
			if err != nil {
				return err
			}
			defer f.Abort()
			bar := newProgress(cmd, -1, "backup", true)
			var size countWriter
			err = st.Backup(io.MultiWriter(f, bar, &size), key)
			bar.Finish()
			if err != nil {
				return err
			}
			if err := f.Commit(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup scritto: %s (%d byte, cifrato)\n", out, int64(size))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "sostituisce un FILE esistente")
	return cmd
}

func (a *app) restoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Ripristina un backup fatto con `anprsec backup` in una cartella dati vuota",
		Long: `restore carica un backup cifrato nella cartella dei dati, che deve essere vuota
o assente (un backup non viene mai mescolato a un archivio in uso). Servono la
chiave di backup e la chiave dell'archivio di destinazione. Dopo il ripristino
eseguire "anprsec history verify".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.daemonAnswers() {
				return errDaemonRunning
			}
			key, err := secret.ReadKey(a.cfg.Path(a.cfg.Keys.Backup))
			if err != nil {
				return initHint(err)
			}
			dir := a.cfg.Path(a.cfg.DataDir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			in, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			empty, err := st.IsEmpty()
			if err != nil {
				return err
			}
			if !empty {
				return fmt.Errorf("la cartella dei dati %s non è vuota: il ripristino si fa solo in una cartella dati vuota", dir)
			}
			size := int64(-1)
			if fi, err := in.Stat(); err == nil {
				size = fi.Size()
			}
			bar := newProgress(cmd, size, "restore", true)
			err = st.Restore(io.TeeReader(in, bar), key)
			bar.Finish()
			if err != nil {
				return err
			}
			res, err := st.VerifyHistory()
			if err != nil {
				return fmt.Errorf("ripristinato, ma: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ripristinato %s in %s: storico di %d voci, ultima %s\n", args[0], dir, res.Entries, res.Head)
			return nil
		},
	}
}

// countWriter counts the bytes written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
