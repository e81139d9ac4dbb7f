package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"anprsec/drop"
	"anprsec/internal/control"
	"anprsec/jobs"
	"anprsec/lifecycle"
	"anprsec/schedules"
)

// The control socket (docs/architecture.md#the-control-socket): while
// `anprsec run` holds the store, every command that needs it goes through
// the daemon, which runs the same command tree against its open store and
// streams the output back; the caller's files are read and written by the
// CLI, with the caller's permissions.

// daemonSide is what a command run by the daemon for the control socket
// uses instead of opening its own: the daemon's runner (and so its store,
// drop and job locks) and the caller as the socket names it.
type daemonSide struct {
	runner *schedules.Runner
	user   string // the caller's OS user, from the peer credentials
}

// localOnly are the commands that never go through the daemon: those
// that make or replace the store or its keys (they need the daemon
// stopped), the CA rollover (a new CA key; the daemon serves the CAs it
// found at its start), the daemon itself, status (which asks the daemon
// over HTTP), the generators that do not read the store, and help.
var localOnly = []string{
	"anprsec", "anprsec help", "anprsec completion", "anprsec __complete", "anprsec __completeNoDesc",
	"anprsec init", "anprsec run", "anprsec restore", "anprsec status", "anprsec keys", "anprsec ca rinnova",
	"anprsec gen censimento", "anprsec gen firma",
}

// isLocalOnly says whether cmd is, or is under, a localOnly command.
func isLocalOnly(cmd *cobra.Command) bool {
	p := cmd.CommandPath()
	for _, l := range localOnly {
		if p == l || (l != "anprsec" && strings.HasPrefix(p, l+" ")) {
			return true
		}
	}
	return false
}

// exitStatus ends main with a command's exit code, the command having
// said everything already (a command run by the daemon).
type exitStatus int

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// socketPath is the control socket of the config.
func (a *app) socketPath() string { return a.cfg.Path(a.cfg.Control.Socket) }

// daemonAnswers says whether a daemon answers on the control socket.
func (a *app) daemonAnswers() bool {
	c, err := control.Dial(a.socketPath())
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// forward runs cmd through the daemon when one answers on the control
// socket: it returns exitStatus with the command's exit code, or nil
// when no daemon answers (the command then opens the store itself).
func (a *app) forward(cmd *cobra.Command) error {
	if isLocalOnly(cmd) || a.args == nil {
		return nil
	}
	conn, err := control.Dial(a.socketPath())
	if errors.Is(err, fs.ErrPermission) {
		// The socket is there but not for this user: opening the store
		// would fail too, less clearly.
		return fmt.Errorf("socket di controllo %s: permesso negato: possono usarlo solo i membri del gruppo %s (control.group), il suo utente e root", a.socketPath(), a.groupName())
	}
	if err != nil {
		return nil
	}
	args := a.args
	cwd, _ := os.Getwd()
	req := control.Request{Args: args, Cwd: cwd, Terminal: isTerminal(os.Stderr), DataDir: a.cfg.Path(a.cfg.DataDir)}
	code, err := control.Run(cmd.Context(), conn, req, cmd.OutOrStdout(), cmd.ErrOrStderr(), a.callerFS())
	if err != nil {
		return fmt.Errorf("socket di controllo %s: %w", a.socketPath(), err)
	}
	return exitStatus(code)
}

// callerFS is the file system of the person running the command: the
// process's own, or, in a command run by the daemon, the caller's through
// the CLI.
func (a *app) callerFS() control.FS {
	if a.files == nil {
		a.files = &control.Local{}
	}
	return a.files
}

// actor is the history actor of a change made by this command: the caller
// named by the socket's peer credentials in the daemon, else the operator
// running the CLI (operatorActor).
func (a *app) actor() string {
	if a.daemon != nil {
		return lifecycle.BackOfficeOperator(a.daemon.user)
	}
	return operatorActor()
}

// controlGroup is the group of the socket: control.group, or the
// process's own group.
func (a *app) controlGroup() (gid int, name string, err error) {
	if g := a.cfg.Control.Group; g != "" {
		grp, err := user.LookupGroup(g)
		if err != nil {
			return 0, "", fmt.Errorf("control.group %q: %w", g, err)
		}
		gid, err := strconv.Atoi(grp.Gid)
		if err != nil {
			return 0, "", fmt.Errorf("control.group %q: gid %q", g, grp.Gid)
		}
		return gid, g, nil
	}
	gid = os.Getegid()
	name = strconv.Itoa(gid)
	if grp, err := user.LookupGroupId(name); err == nil {
		name = grp.Name
	}
	return gid, name, nil
}

// groupName names control.group for a message ("del servizio" when it is
// the daemon's own group).
func (a *app) groupName() string {
	if g := a.cfg.Control.Group; g != "" {
		return g
	}
	return "del servizio"
}

// serveControl listens on the control socket and runs the commands of its
// callers against r, until ctx ends; the sessions end before bg is done.
// A socket it cannot make (another daemon answering on it, a file in its
// place) stops the daemon.
func (a *app) serveControl(ctx context.Context, r *schedules.Runner, bg *sync.WaitGroup) error {
	gid, group, err := a.controlGroup()
	if err != nil {
		return err
	}
	a.removeDaemonTempDirs()
	ln, err := control.Listen(a.socketPath(), gid)
	if err != nil {
		return err
	}
	a.log.Info("control socket listening", "socket", a.socketPath(), "group", group)
	policy := control.Policy{DaemonUID: uint32(os.Geteuid()), GID: uint32(gid), Group: group}
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := control.Serve(ctx, ln, policy, a.controlHandler(r), a.log); err != nil {
			a.log.Warn("control socket stopped", "err", err)
		}
	}()
	return nil
}

// controlHandler runs one caller's command with the daemon's runner: the
// same command tree as the CLI's, its output to the caller, its changes
// signed with the caller's name.
func (a *app) controlHandler(r *schedules.Runner) control.Handler {
	return func(ctx context.Context, s *control.Session) (code int) {
		stderr := s.Stderr()
		req := s.Request
		if dd := a.cfg.Path(a.cfg.DataDir); req.DataDir != "" && filepath.Clean(req.DataDir) != filepath.Clean(dd) {
			fmt.Fprintf(stderr, "anprsec: il daemon sul socket %s usa l'archivio %s, non %s: controlla control.socket e data_dir delle due configurazioni\n", a.socketPath(), dd, req.DataDir)
			return 1
		}
		a.log.Info("control command", "user", s.User, "uid", s.Cred.UID, "pid", s.Cred.PID, "args", strings.Join(req.Args, " "))
		// The key pool starts no new batch while a command of a caller
		// runs, as while a job runs.
		defer jobs.Running("control")()
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("control command panicked", "user", s.User, "args", strings.Join(req.Args, " "), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				fmt.Fprintln(stderr, "anprsec: errore interno del daemon (panic), registrato nel suo log")
				code = 1
			}
			a.log.Info("control command done", "user", s.User, "pid", s.Cred.PID, "exit", code)
		}()
		sub := &app{cfg: a.cfg, files: s.FS(), daemon: &daemonSide{runner: r, user: s.User}, terminal: req.Terminal}
		root := newRootOf(sub)
		root.SetArgs(req.Args)
		root.SetOut(s.Stdout())
		root.SetErr(stderr)
		root.SetIn(s.FS().Stdin())
		// The command is checked before it runs, not only by the root's
		// pre-run: a subcommand with a pre-run of its own (gen censimento)
		// skips the root's, and would run with the daemon's permissions.
		if c, _, err := root.Find(req.Args); err == nil && isLocalOnly(c) {
			fmt.Fprintf(stderr, "anprsec: %s: comando non eseguibile tramite il daemon\n", c.CommandPath())
			return 1
		}
		if err := root.ExecuteContext(ctx); err != nil {
			fmt.Fprintln(stderr, "anprsec:", err)
			return exitCode(err)
		}
		return 0
	}
}

// daemonPreRun prepares a command run by the daemon: the daemon's config
// and a logger to the caller's stderr; the commands that need the daemon
// stopped, or are the daemon, are refused.
func (a *app) daemonPreRun(cmd *cobra.Command) error {
	a.log = slog.New(logHandler(cmd.ErrOrStderr(), a.terminal, a.verbose))
	if isLocalOnly(cmd) {
		return fmt.Errorf("%s: comando non eseguibile tramite il daemon", cmd.CommandPath())
	}
	return nil
}

// callerTarget is an audit.Target in a folder of the caller: the files
// go through callerFS.
type callerTarget struct {
	fs  control.FS
	dir string
}

// newCallerTarget makes the folder dir of the caller (as drop.NewLocal
// does) and returns the target writing in it.
func newCallerTarget(fsys control.FS, dir string) (*callerTarget, error) {
	if err := fsys.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("drop folder %s: %w", dir, err)
	}
	return &callerTarget{fs: fsys, dir: dir}, nil
}

// Write implements audit.Target: the file appears complete at its name.
func (t *callerTarget) Write(_ context.Context, name string, r io.Reader) error {
	c, err := drop.Clean(name)
	if err != nil {
		return err
	}
	p := filepath.Join(t.dir, filepath.FromSlash(c))
	if d := path.Dir(c); d != "." {
		if err := t.fs.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return err
		}
	}
	return writeTo(t.fs, p, 0o640, r)
}

// writeTo writes r to the caller's file p, which appears complete or not
// at all.
func writeTo(fsys control.FS, p string, perm os.FileMode, r io.Reader) error {
	f, err := fsys.Create(p, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return f.Commit()
}

// writeNewFor is writeNew for the file of a folder the caller named
// (toCaller) in a command the daemon runs: written by the CLI, with the
// caller's permissions, never replacing a file (an existing one is an
// error wrapping fs.ErrExist). Otherwise it is writeNew.
func (a *app) writeNewFor(toCaller bool) func(path string, data []byte, perm os.FileMode) error {
	if a.daemon == nil || !toCaller {
		return writeNew
	}
	fsys := a.callerFS()
	return func(p string, data []byte, perm os.FileMode) error {
		if err := fsys.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if _, err := fsys.Lstat(p); err == nil {
			return &os.LinkError{Op: "link", Old: p + ".tmp", New: p, Err: fs.ErrExist}
		}
		return writeTo(fsys, p, perm, bytes.NewReader(data))
	}
}

// sendFile sends the file at local (a file of the daemon) to the caller
// at p, with mode perm.
func sendFile(fsys control.FS, local, p string, perm os.FileMode) error {
	in, err := os.Open(local)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeTo(fsys, p, perm, in)
}

// daemonTempPattern names the private folders of daemonTempDir.
const daemonTempPattern = ".anprsec-invio-*"

// daemonTempDir is a private folder of the daemon beside the data dir, for
// a file built there before it is sent to the caller; remove it after.
func (a *app) daemonTempDir() (string, error) {
	return os.MkdirTemp(filepath.Dir(a.cfg.Path(a.cfg.DataDir)), daemonTempPattern)
}

// removeDaemonTempDirs removes the folders of daemonTempDir that a daemon
// killed while sending left behind (a bundle in one holds passwords).
func (a *app) removeDaemonTempDirs() {
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(a.cfg.Path(a.cfg.DataDir)), daemonTempPattern))
	for _, d := range left {
		if err := os.RemoveAll(d); err != nil {
			a.log.Warn("control socket: a temporary folder left by a killed daemon could not be removed", "path", d, "err", err)
		}
	}
}

// errDaemonRunning is restore's refusal while the daemon runs.
var errDaemonRunning = errors.New("il daemon (anprsec run) è in esecuzione e tiene l'archivio: fermalo (ad esempio systemctl stop anprsec) prima di ripristinare un backup")
