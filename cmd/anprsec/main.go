// Command anprsec is the batch back-office of the ANPR security console:
// see README.md and `anprsec --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"anprsec/config"
	"anprsec/drop"
	"anprsec/drop/sftpdrop"
	"anprsec/internal/clip"
	"anprsec/internal/control"
	"anprsec/istat"
	"anprsec/jobs"
	"anprsec/schedules"
	"anprsec/secret"
	"anprsec/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	err := newRootOf(&app{args: os.Args[1:]}).ExecuteContext(ctx)
	stopProfile()
	stop()
	var done exitStatus
	if errors.As(err, &done) {
		os.Exit(int(done)) // a command run by the daemon, which said everything
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "anprsec:", err)
		os.Exit(exitCode(err))
	}
}

// app carries the global flags and what commands open.
// extraCommands are the subcommands that files of this package add from
// their init functions (one file per subcommand, main.go left alone).
var extraCommands []func(a *app) *cobra.Command

type app struct {
	cfgPath string
	verbose bool
	cfg     *config.Config
	log     *slog.Logger

	// args is the command line after "anprsec" that forward sends to the
	// daemon; nil (a command tree built in a test) never goes to the daemon.
	args []string
	// daemon is set in a command the daemon runs for a caller of the
	// control socket (control.go); files are then the caller's, and
	// terminal says whether the caller's stderr is a terminal.
	daemon   *daemonSide
	files    control.FS
	terminal bool
}

func newRoot() *cobra.Command { return newRootOf(&app{}) }

// newRootOf is the command tree acting for a: the CLI's own, or one the
// daemon runs for a caller of the control socket.
func newRootOf(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "anprsec",
		Short: "Back-office batch della console di sicurezza ANPR",
		Long: `anprsec acquisisce le cartelle del censimento, le distinte di consegna delle
prefetture e le richieste da console depositate in cartelle (locali o via
SFTP), emette i certificati di postazione, invia i segreti delle smart card ed
esporta gli elenchi di audit, secondo una pianificazione.

Configurazione: anprsec.yaml nella cartella di lavoro, oppure --config PERCORSO,
oppure la variabile d'ambiente ANPRSEC_CONFIG. Per cominciare: "anprsec init".`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.daemon != nil {
				return a.daemonPreRun(cmd)
			}
			if a.cfgPath == "" {
				a.cfgPath = os.Getenv("ANPRSEC_CONFIG")
			}
			explicit := a.cfgPath != ""
			if !explicit {
				a.cfgPath = "anprsec.yaml"
			}
			a.log = newLogger(a.verbose)
			slog.SetDefault(a.log)
			if cmd.Name() == "init" {
				return nil
			}
			cfg, err := config.Load(a.cfgPath, explicit)
			if err != nil {
				return err
			}
			a.cfg = cfg
			if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(int64(cfg.MemoryLimit))
			}
			return a.forward(cmd)
		},
	}
	root.PersistentFlags().StringVar(&a.cfgPath, "config", "", "`file` di configurazione (se assente: anprsec.yaml, o $ANPRSEC_CONFIG)")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "scrive nel log anche i messaggi di debug")
	root.AddCommand(a.initCmd(), a.runCmd(), a.jobsCmd(), a.historyCmd(), a.backupCmd(), a.restoreCmd(), a.genCmd(), a.postazioniCmd(), a.smartcardCmd(), a.exportCmd())
	for _, c := range extraCommands {
		root.AddCommand(c(a))
	}
	strictCommands(root)
	italianHelp(root)
	return root
}

func newLogger(verbose bool) *slog.Logger {
	fi, err := os.Stderr.Stat()
	return slog.New(logHandler(os.Stderr, err == nil && fi.Mode()&os.ModeCharDevice != 0, verbose))
}

// logHandler writes text lines on a terminal, JSON lines otherwise.
func logHandler(w io.Writer, terminal, verbose bool) slog.Handler {
	opt := logOptions(verbose)
	if terminal {
		return slog.NewTextHandler(w, opt)
	}
	return slog.NewJSONHandler(w, opt)
}

// maxLogValue bounds a logged value, in bytes: an error may quote what a
// file held.
const maxLogValue = 4096

// logOptions are the options of the log handlers: the level, and every
// string or error value longer than maxLogValue written cut
// (clip.String), so that no input makes a log line unbounded.
func logOptions(verbose bool) *slog.HandlerOptions {
	lvl := slog.LevelInfo
	if verbose {
		lvl = slog.LevelDebug
	}
	return &slog.HandlerOptions{Level: lvl, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		var s string
		switch a.Value.Kind() {
		case slog.KindString:
			s = a.Value.String()
		case slog.KindAny:
			err, ok := a.Value.Any().(error)
			if !ok || err == nil {
				return a
			}
			s = err.Error()
		default:
			return a
		}
		if len(s) > maxLogValue {
			a.Value = slog.StringValue(clip.String(s, maxLogValue))
		}
		return a
	}}
}

// openStore opens the store with the key file named by the config.
func (a *app) openStore() (*store.Store, error) {
	if a.daemon != nil {
		return a.daemon.runner.Store().Borrow(), nil
	}
	dir := a.cfg.Path(a.cfg.DataDir)
	if err := store.StoreRotationPending(dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil, fmt.Errorf("manca la cartella dei dati %s: eseguire prima `anprsec init`", dir)
	}
	key, err := secret.ReadKey(a.cfg.Path(a.cfg.Keys.Store))
	if err != nil {
		return nil, initHint(err)
	}
	return store.Open(store.Options{Dir: dir, Key: key})
}

// openDrop opens the drop named by the config. An SFTP drop connects on
// first use and reconnects after a failure (drop.Lazy), so the daemon
// outlives a server restart and commands that do not touch the drop work
// while the server is down.
func (a *app) openDrop(context.Context) (drop.Drop, error) {
	d := a.cfg.Drop
	if d.Type != "sftp" {
		return drop.NewLocal(a.cfg.Path(d.Local))
	}
	key := a.cfg.Path(d.SFTP.KeyFile)
	if err := secret.CheckFile(key); err != nil {
		return nil, fmt.Errorf("drop.sftp.key_file: %w", err)
	}
	cfg := sftpdrop.Config{
		Address: d.SFTP.Address, User: d.SFTP.User, KeyFile: key,
		KnownHosts: a.cfg.Path(d.SFTP.KnownHosts), BasePath: d.SFTP.BasePath,
		Timeout: d.SFTP.Timeout, Keepalive: d.SFTP.Keepalive,
	}
	return &drop.Lazy{
		Name: fmt.Sprintf("sftp://%s@%s/%s", cfg.User, cfg.Address, strings.TrimPrefix(cfg.BasePath, "/")),
		Dial: func(ctx context.Context) (drop.Drop, error) { return sftpdrop.Dial(ctx, cfg) },
	}, nil
}

// comuni returns the embedded table of comuni; withPlacesInForce gives the
// one loaded with istat aggiorna when there is one.
func (a *app) comuni() (*istat.Table, error) {
	return istat.Default(), nil
}

// openRunner opens everything the jobs need. The store and drop stay open
// until close is called.
func (a *app) openRunner(ctx context.Context) (r *schedules.Runner, closeFn func(), err error) {
	if a.daemon != nil {
		return a.daemon.runner, func() {}, nil
	}
	if err := a.checkSecrets(); err != nil {
		return nil, nil, err
	}
	st, err := a.openStore()
	if err != nil {
		return nil, nil, err
	}
	closers := []func(){func() { st.Close() }}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll() // closeFn is nil on the error returns
		}
	}()
	dr, err := a.openDrop(ctx)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { dr.Close() })
	tab, err := a.comuni()
	if err != nil {
		return nil, nil, err
	}
	if tab, err = a.withPlacesInForce(st, tab); err != nil {
		return nil, nil, err
	}
	env := &jobs.Env{Config: a.cfg, Store: st, Drop: dr, Comuni: tab, Log: a.log, Loc: a.loc()}
	// The seal key is needed only by the jobs that seal secrets: a missing
	// file leaves Sealer nil (those jobs then fail with a hint); a bad one
	// is an error. The CA is loaded by the certificati job at each run.
	if sealPath := a.cfg.Path(a.cfg.Keys.Seal); sealPath != "" {
		if _, statErr := os.Stat(sealPath); statErr == nil {
			k, err := secret.ReadKey(sealPath)
			if err != nil {
				return nil, nil, fmt.Errorf("keys.seal: %w", err)
			}
			if env.Sealer, err = store.NewSealer(k); err != nil {
				return nil, nil, fmt.Errorf("keys.seal: %w", err)
			}
			if written, err := a.checkSealKey(st, env.Sealer); err != nil {
				return nil, nil, err
			} else if written {
				a.log.Info("seal check value written to the store: the seal key opens what is sealed in it", "key", sealPath)
			}
		}
	}
	r, err = schedules.New(env, jobs.All())
	if err != nil {
		return nil, nil, err
	}
	return r, closeAll, nil
}

// checkSealKey refuses a seal key that does not open the values sealed
// in st (store.CheckSealKey), naming the key file; it reports whether it
// wrote the store's seal check value.
func (a *app) checkSealKey(st *store.Store, s *store.Sealer) (bool, error) {
	written, err := st.CheckSealKey(s)
	if errors.Is(err, store.ErrSealKey) {
		p := a.cfg.Path(a.cfg.Keys.Seal)
		return false, fmt.Errorf("keys.seal %s: %w: non è la chiave di sigillo con cui è stato creato l'archivio %s, e ciò che sigillerebbe non si potrebbe leggere con quella giusta. Rimettere in %s la chiave di sigillo dell'archivio (dalla copia custodita fuori da questa macchina)",
			p, err, a.cfg.Path(a.cfg.DataDir), p)
	}
	if err != nil {
		return false, fmt.Errorf("keys.seal: %w", err)
	}
	return written, nil
}

func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && len(r) < len(p) {
		return r
	}
	return p
}

// checkSecrets refuses to start when a configured key file that exists is
// readable by group or others, or when the CA key is in an HSM that this
// build cannot reach (checkHSM).
func (a *app) checkSecrets() error {
	keys := []string{a.cfg.Keys.Store, a.cfg.Keys.Backup, a.cfg.Keys.Seal}
	if a.cfg.CAKeyInHSM() {
		if err := a.checkHSM(); err != nil {
			return err
		}
	} else {
		keys = append(keys, a.cfg.PKI.CAKey)
	}
	for _, p := range keys {
		p = a.cfg.Path(p)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := secret.CheckFile(p); err != nil {
			return err
		}
	}
	return nil
}

// loc is the config's time zone, for every date shown to an operator.
func (a *app) loc() *time.Location {
	if l, err := time.LoadLocation(a.cfg.Timezone); err == nil {
		return l
	}
	return time.Local
}

// when formats a time for an operator, in the config's time zone.
func (a *app) when(t time.Time) string {
	return t.In(a.loc()).Format(whenLayout)
}

// whenDay formats a date for an operator ("-" when unset).
func (a *app) whenDay(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(a.loc()).Format("02/01/2006")
}

// initHint adds "run anprsec init" to a missing key of the ones init makes.
func initHint(err error) error {
	if errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "non esiste") {
		return fmt.Errorf("%w (eseguire `anprsec init` per creare le chiavi di sviluppo)", err)
	}
	return err
}
