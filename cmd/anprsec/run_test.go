package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/jobs"
	"anprsec/schedules"
	"anprsec/secret"
	"anprsec/store"
)

// The daemon's wiring: runs reach /metrics through the runner's hook, and
// a busy address leaves the jobs running with a warning.
func TestServeOps(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{2}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default(t.TempDir())
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	env := &jobs.Env{Config: cfg, Store: st, Log: log}
	r, err := schedules.New(env, []jobs.Job{{Name: "ingest-censimento", Run: func(_ context.Context, _ *jobs.Env, run *jobs.Run) error {
		run.Add("rows_ok", 7)
		run.Add("rows_refused", 2)
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

	cfg.Metrics.Address = "127.0.0.1:0"
	addr := a.serveOps(ctx, r, &bg)
	if addr == "" {
		t.Fatalf("not served:\n%s", logs.String())
	}
	if _, err := r.Run(ctx, "ingest-censimento", schedules.TriggerManual, time.Time{}); err != nil {
		t.Fatal(err)
	}
	body := httpGet(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`anprsec_job_runs_total{job="ingest-censimento",outcome="ok"} 1`,
		`anprsec_rows_accepted_total{job="ingest-censimento"} 7`,
		`anprsec_rows_refused_total{job="ingest-censimento"} 2`,
		`anprsec_store_up 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if h := httpGet(t, "http://"+addr+"/healthz"); h != "ok\n" {
		t.Errorf("/healthz = %q", h)
	}

	// the address is taken: a warning, no server, nothing else
	cfg.Metrics.Address = addr
	if got := a.serveOps(ctx, r, &bg); got != "" {
		t.Errorf("served twice on %s", got)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"metrics server not started`) {
		t.Errorf("no warning:\n%s", logs.String())
	}
	cfg.Metrics.Address = ""
	if got := a.serveOps(ctx, r, &bg); got != "" {
		t.Errorf("served on %s with an empty metrics.address", got)
	}

	// on cancel the server goes, before the store closes
	cancel()
	bg.Wait()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still listening after the daemon stopped")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
