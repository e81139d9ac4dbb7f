package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/domain"
	"anprsec/internal/control"
	"anprsec/jobs"
	"anprsec/lifecycle"
	"anprsec/schedules"
	"anprsec/secret"
	"anprsec/store"
)

// denyFS is a caller that lets the daemon touch none of its files: a file
// that appears was written by the daemon itself.
type denyFS struct{}

var errDenied = errors.New("denied by the test's caller")

func (denyFS) Lstat(string) (control.Info, error)               { return control.Info{}, errDenied }
func (denyFS) MkdirAll(string, fs.FileMode) error               { return errDenied }
func (denyFS) ReadFile(string) ([]byte, error)                  { return nil, errDenied }
func (denyFS) Create(string, fs.FileMode) (control.File, error) { return nil, errDenied }
func (denyFS) Stdin() io.Reader                                 { return strings.NewReader("") }

// daemonForTest serves the control socket of a daemon on an in-memory
// store; run sends one command line as a client whose files are fsys.
func daemonForTest(t *testing.T) (st *store.Store, cfg *config.Config, run func(fsys control.FS, args ...string) (int, string)) {
	t.Helper()
	var err error
	st, err = store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{5}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir, err := os.MkdirTemp("", "anp") // short: a socket path holds 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg = config.Default(dir)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// The notices' job stands idle: only who asked is looked at.
	idle := jobs.Job{Name: "avvisi-promemoria", Run: func(context.Context, *jobs.Env, *jobs.Run) error { return nil }}
	r, err := schedules.New(&jobs.Env{Config: cfg, Store: st, Log: log, Loc: time.UTC}, []jobs.Job{idle})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{cfg: cfg, log: log}
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	t.Cleanup(bg.Wait)
	t.Cleanup(cancel)
	if err := a.serveControl(ctx, r, &bg); err != nil {
		t.Fatal(err)
	}
	return st, cfg, func(fsys control.FS, args ...string) (int, string) {
		conn, err := control.Dial(a.socketPath())
		if err != nil {
			t.Fatal(err)
		}
		var o, e bytes.Buffer
		code, err := control.Run(context.Background(), conn, control.Request{Args: args}, &o, &e, fsys)
		if err != nil {
			t.Fatal(err)
		}
		return code, e.String()
	}
}

// A command that never goes through the daemon is refused whatever the
// client sends, even one with its own pre-run (gen censimento): the
// daemon never writes a file of its own user at a path a caller names.
func TestLocalOnlyCommandWithItsOwnPreRunIsRefusedByTheDaemon(t *testing.T) {
	_, cfg, run := daemonForTest(t)
	target := filepath.Join(filepath.Dir(cfg.Path(cfg.DataDir)), "scritto-dal-daemon.xlsx")
	for _, args := range [][]string{
		{"gen", "censimento", "--out", target, "--comuni", "1", "--users", "1"},
		{"--verbose", "gen", "censimento", "-o", target, "--comuni", "1", "--users", "1"},
		{"gen", "firma", "--cf", "RSSMRA68A01H501Y", target},
	} {
		code, stderr := run(denyFS{}, args...)
		if code != 1 || !strings.Contains(stderr, "comando non eseguibile tramite il daemon") {
			t.Errorf("%s through the socket: exit %d, %q", strings.Join(args, " "), code, stderr)
		}
		if _, err := os.Lstat(target); err == nil {
			t.Fatalf("%s through the socket: the daemon wrote %s", strings.Join(args, " "), target)
		}
	}
}

// Every change a command makes through the daemon names the caller of
// the socket, never the daemon's own user nor the operator who started
// it with sudo: the renewal of a certificate and an extraordinary notice
// campaign too.
func TestChangesThroughTheDaemonNameTheCaller(t *testing.T) {
	// The daemon was started by "amministratore" through sudo.
	t.Setenv("SUDO_USER", "amministratore")
	t.Setenv("SUDO_UID", "4321")
	st, _, run := daemonForTest(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	const code = "058091-PC-0001"
	if err := st.Update(func(tx *store.Tx) error {
		if err := tx.PutComune(&domain.Comune{ISTAT: "058091", Name: "Roma"}); err != nil {
			return err
		}
		return tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: "058091", State: domain.CertAttivo, Serial: "0A1B", Created: tx.Now, Updated: tx.Now})
	}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"postazioni", "rinnova", code, "--motivo", "chiave compromessa"},
		{"avvisi", "invia", "--comune", "058091"},
	} {
		if code, stderr := run(&control.Local{}, args...); code != 0 {
			t.Fatalf("%s: exit %d, %q", strings.Join(args, " "), code, stderr)
		}
	}
	es, err := st.History(0, 0, func(e *store.Entry) bool {
		return e.Action == lifecycle.RenewalAction || strings.HasPrefix(e.Action, "avviso.")
	})
	if err != nil || len(es) == 0 {
		t.Fatalf("no entries: %v", err)
	}
	want := lifecycle.BackOfficeOperator(me.Username)
	seen := map[string]bool{}
	for _, e := range es {
		if e.Actor != want {
			t.Errorf("%s by %q, want the caller %q", e.Action, e.Actor, want)
		}
		seen[e.Action] = true
	}
	if !seen[lifecycle.RenewalAction] {
		t.Errorf("no renewal entry among %v", seen)
	}
	st.View(func(tx *store.Tx) error {
		return tx.Campaigns(func(c *store.Campaign) error {
			if c.By != want {
				t.Errorf("campaign %s started by %q, want the caller %q", c.ID, c.By, want)
			}
			return nil
		})
	})
}

// Commands name the author of a change with a.actor(), which is the
// socket's caller in the daemon: operatorActor() alone, the process's own
// user, is called only by a.actor().
func TestOnlyTheAppNamesTheOperator(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "operator.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.Count(string(b), "operatorActor()")
		if f == "control.go" {
			n-- // a.actor() itself
		}
		if n > 0 {
			t.Errorf("%s calls operatorActor() %d times: use a.actor()", f, n)
		}
	}
}
