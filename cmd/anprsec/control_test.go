package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
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

// Commands through the control socket run in the daemon beside a running
// job: they read and change the store while the job runs, a second run of
// the job is refused by the same overlap guard as the schedule's, a change
// names the OS user of the connection, and the commands that need the
// daemon stopped are refused whatever the client sends.
func TestCommandsThroughTheSocketRunBesideAJob(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{3}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir, err := os.MkdirTemp("", "anp") // short: a socket path holds 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := config.Default(dir)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	env := &jobs.Env{Config: cfg, Store: st, Log: log}
	r, err := schedules.New(env, []jobs.Job{{Name: "ingest-censimento", Run: func(ctx context.Context, _ *jobs.Env, _ *jobs.Run) error {
		once.Do(func() { close(started) })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}}})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{cfg: cfg, log: log}
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	if err := a.serveControl(ctx, r, &bg); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code        int
		out, errout string
	}
	run := func(args ...string) result {
		conn, err := control.Dial(a.socketPath())
		if err != nil {
			t.Error(err)
			return result{code: -1}
		}
		var o, e bytes.Buffer
		code, err := control.Run(context.Background(), conn, control.Request{Args: args}, &o, &e, &control.Local{})
		if err != nil {
			t.Error(err)
		}
		return result{code, o.String(), e.String()}
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	first := make(chan result, 1)
	go func() { first <- run("jobs", "run", "ingest-censimento") }()
	<-started

	if res := run("jobs", "history"); res.code != 0 || !strings.Contains(res.out, "ingest-censimento") {
		t.Errorf("jobs history beside the job: %+v", res)
	}
	// Refused, and recorded as skipped (the words are the CLI's: checked
	// by the operator stories).
	if res := run("jobs", "run", "ingest-censimento"); res.code != 1 || !strings.Contains(res.errout, "ingest-censimento") {
		t.Errorf("a second run of a running job: %+v", res)
	}
	if res := run("utenze", "eccezione-cf", "RSSMRA68A01H501Y", "--motivo", "codice attribuito per errore"); res.code != 0 {
		t.Errorf("eccezione-cf: %+v", res)
	}
	res := run("history", "list", "--actor", me.Username)
	if res.code != 0 || !strings.Contains(res.out, "back-office:"+me.Username) || !strings.Contains(res.out, "cf.eccezione") {
		t.Errorf("the change does not name the connection's user %s: %+v", me.Username, res)
	}
	if res := run("history", "verify"); res.code != 0 || !regexp.MustCompile(`(?m) [0-9a-f]{64}$`).MatchString(res.out) {
		t.Errorf("history verify: %+v", res)
	}
	var runs []store.Run
	if err := st.View(func(tx *store.Tx) (err error) {
		runs, err = tx.Runs("ingest-censimento", 0)
		return err
	}); err != nil || len(runs) != 2 {
		t.Errorf("runs recorded: %d (%v), want the running one and the skipped one", len(runs), err)
	}
	caller := "back-office:" + me.Username
	for _, rec := range runs {
		if rec.By != caller {
			t.Errorf("run %s (%s) started by %q, want the connection's user %q", rec.ID, rec.Outcome, rec.By, caller)
		}
	}
	close(release)
	if res := <-first; res.code != 0 || !strings.HasPrefix(res.out, "ingest-censimento: ") {
		t.Errorf("the job's own run: %+v", res)
	}
	if res := run("jobs", "history"); res.code != 0 || len(regexp.MustCompile(` manuale +`+regexp.QuoteMeta(caller)+` `).FindAllString(res.out, -1)) != 2 {
		t.Errorf("jobs history does not name who started the runs (%s): %+v", caller, res)
	}

	for _, args := range [][]string{{"restore", "b.bin"}, {"run"}, {"keys", "rotate", "store"}, {"init"}} {
		if res := run(args...); res.code != 1 || !strings.Contains(res.errout, "comando non eseguibile tramite il daemon") {
			t.Errorf("%s through the socket: %+v", strings.Join(args, " "), res)
		}
	}
	if res := run("postazioni", "frobnica"); res.code != exitUsage {
		t.Errorf("an unknown subcommand through the socket: %+v, want exit %d", res, exitUsage)
	}
}

// A backup through the socket: the caller's file, written by the client in
// its folder, the progress bar drawn on the caller's terminal, and the
// same refusal to overwrite. (And the daemon's start clears what a killed
// daemon left while sending a file.)
func TestBackupThroughTheSocketIsTheCallersFile(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{4}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir, err := os.MkdirTemp("", "anp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := config.Default(dir)
	if _, err := secret.CreateKey(cfg.Path(cfg.Keys.Backup)); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	r, err := schedules.New(&jobs.Env{Config: cfg, Store: st, Log: log}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{cfg: cfg, log: log}
	// A bundle a killed daemon was sending: removed at the start.
	left := filepath.Join(filepath.Dir(cfg.Path(cfg.DataDir)), ".anprsec-invio-123")
	if err := os.MkdirAll(left, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(left, "058091-certificati.zip"), []byte("PK"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	if err := a.serveControl(ctx, r, &bg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the folder a killed daemon left is still there: %v", err)
	}
	out := filepath.Join(t.TempDir(), "copia.bin")
	backup := func(args ...string) (int, string, string) {
		conn, err := control.Dial(a.socketPath())
		if err != nil {
			t.Fatal(err)
		}
		var o, e bytes.Buffer
		code, err := control.Run(context.Background(), conn, control.Request{Args: append([]string{"backup"}, args...), Terminal: true}, &o, &e, &control.Local{})
		if err != nil {
			t.Fatal(err)
		}
		return code, o.String(), e.String()
	}
	code, stdout, stderr := backup(out)
	if code != 0 || !strings.Contains(stdout, " "+out+" (") {
		t.Fatalf("backup: %d %q %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "backup") {
		t.Errorf("no progress bar on the caller's terminal: %q", stderr)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("the backup file: %v %v", fi, err)
	}
	if !strings.Contains(stdout, fmt.Sprintf("(%d byte", fi.Size())) {
		t.Errorf("the size told is not the file's (%d): %q", fi.Size(), stdout)
	}
	if code, _, stderr := backup(out); code != 1 || !strings.Contains(stderr, out) || !strings.Contains(stderr, "--force") {
		t.Errorf("a second backup to the same file: %d %q", code, stderr)
	}
	if code, _, stderr := backup("--force", out); code != 0 {
		t.Errorf("backup --force: %d %q", code, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
