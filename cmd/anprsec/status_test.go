package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/ops"
	"anprsec/secret"
	"anprsec/store"
)

// While the daemon holds the store, `anprsec status` asks its /status page,
// and only the daemon of its own store.
func TestStatusFromDaemon(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{1}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := t.TempDir()
	cfg := config.Default(dir)
	started := time.Now().Add(-time.Hour)
	srv := ops.New(ops.Options{Store: st, Schedules: ops.CronTable(cfg.Schedules, time.UTC), Jobs: []string{"certificati"},
		KeyAlgorithm: "rsa2048", DataDir: cfg.Path(cfg.DataDir), Started: started})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	a := &app{cfg: cfg}
	locked := store.ErrLocked

	for _, tc := range []struct {
		name, addr, dataDir, want string
	}{
		{"own daemon", strings.TrimPrefix(hs.URL, "http://"), cfg.Path(cfg.DataDir), ""},
		{"another store's daemon", strings.TrimPrefix(hs.URL, "http://"), dir + "/other", "usa un altro archivio"},
		{"no metrics address", "", cfg.Path(cfg.DataDir), "metrics.address è vuoto"},
		{"nobody listening", closedAddr(t), cfg.Path(cfg.DataDir), "provare curl http://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.cfg.Metrics.Address = tc.addr
			snap, from, err := a.statusFromDaemon(context.Background(), tc.dataDir, locked)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "in uso da un altro processo anprsec") {
					t.Errorf("error = %v, want one saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(from, "dal servizio su "+hs.URL+"/status") || len(snap.Jobs) != 1 || snap.Jobs[0].Name != "certificati" {
				t.Errorf("from %q, snapshot %+v", from, snap)
			}
			var out bytes.Buffer
			if err := a.printStatus(&out, snap, from); err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{"dal servizio su", "certificati", "mai eseguito", "ARRETRATO", "ULTIMI ERRORI\nnessuno"} {
				if !strings.Contains(out.String(), w) {
					t.Errorf("screen does not show %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
