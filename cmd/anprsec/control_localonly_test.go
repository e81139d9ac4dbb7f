package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"anprsec/config"
	"anprsec/internal/control"
	"anprsec/jobs"
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
func daemonForTest(t *testing.T) (cfg *config.Config, run func(fsys control.FS, args ...string) (int, string)) {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{5}, secret.KeySize)})
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
	r, err := schedules.New(&jobs.Env{Config: cfg, Store: st, Log: log}, nil)
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
	return cfg, func(fsys control.FS, args ...string) (int, string) {
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
	cfg, run := daemonForTest(t)
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
