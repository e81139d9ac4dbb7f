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
		Short: "Write a sealed full backup of the store to FILE",
		Long: `backup writes a full backup of the store, sealed with XChaCha20-Poly1305 under
the backup key (keys.backup, var/keys/backup.key): the file holds no codice
fiscale, e-mail or secret in clear. Keep the backup key apart from the
backups. An existing FILE is replaced only with --force. The daemon must be
stopped (the store is held by one process).`,
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
				return fmt.Errorf("%s exists: a backup is never overwritten without --force", out)
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
			fmt.Fprintf(cmd.OutOrStdout(), "backup written: %s (%d bytes, sealed)\n", out, int64(size))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing FILE")
	return cmd
}

func (a *app) restoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup made by `anprsec backup` into an empty data dir",
		Long: `restore loads a sealed backup into the data dir, which must be empty or absent
(it refuses to mix a backup into a live store). It needs the backup key and
the store key of the target. Run "anprsec history verify" afterwards.`,
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
				return fmt.Errorf("data dir %s is not empty: restore only into an empty data dir", dir)
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
				return fmt.Errorf("restored, but: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s: history %d entries, head %s\n", args[0], dir, res.Entries, res.Head)
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
