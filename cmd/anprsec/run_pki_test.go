package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/jobs"
	"anprsec/pki"
	"anprsec/pkihttp"
	"anprsec/schedules"
	"anprsec/secret"
	"anprsec/store"
)

// pkiRunner is a runner on an in-memory store with a development CA, for
// the wiring of the PKI server.
func pkiRunner(t *testing.T) (*app, *schedules.Runner, *bytes.Buffer) {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{2}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := t.TempDir()
	cfg := config.Default(dir)
	cfg.PKI.CACert, cfg.PKI.CAKey = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if _, err := pki.CreateDevCABits(cfg.PKI.CACert, cfg.PKI.CAKey, time.Now(), 2048); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	sealer, err := store.NewSealer(bytes.Repeat([]byte{5}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	r, err := schedules.New(&jobs.Env{Config: cfg, Store: st, Log: log, Sealer: sealer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &app{cfg: cfg, log: log}, r, &logs
}

// `anprsec run` serves the CA certificate on pki.http_address, and nothing
// when the address is empty; on cancel the server goes.
func TestRunServesThePKIOnItsAddress(t *testing.T) {
	a, r, logs := pkiRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	if addr := a.servePKI(ctx, r, &bg); addr != "" {
		t.Fatalf("served on %s with an empty pki.http_address", addr)
	}
	a.cfg.PKI.HTTPAddress = "127.0.0.1:0"
	addr := a.servePKI(ctx, r, &bg)
	if addr == "" {
		t.Fatalf("not served:\n%s", logs)
	}
	resp, err := http.Get("http://" + addr + pkihttp.DefaultCAPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-cert" {
		t.Errorf("GET CA: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// the address is taken: a warning, the jobs go on
	a.cfg.PKI.HTTPAddress = addr
	if got := a.servePKI(ctx, r, &bg); got != "" {
		t.Errorf("served twice on %s", got)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"PKI server not started`) {
		t.Errorf("no warning:\n%s", logs)
	}
	cancel()
	bg.Wait()
	if _, err := http.Get("http://" + addr + pkihttp.DefaultCAPath); err == nil {
		t.Error("still serving after the daemon stopped")
	}
}
