package ops

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"anprsec/drop"
	"anprsec/store"
)

func putDropReport(t *testing.T, st *store.Store, r *drop.Report) {
	t.Helper()
	if err := st.Update(func(tx *store.Tx) error { return tx.SetMeta(store.DropReportMeta, r) }); err != nil {
		t.Fatal(err)
	}
}

// healthyServer is a server whose jobs all succeeded just now.
func healthyServer(t *testing.T) (*Server, *store.Store) {
	t.Helper()
	st := openStore(t)
	now := t0
	s := newServer(t, st, &now, t0.Add(-time.Hour))
	for _, j := range []string{"ingest-censimento", "certificati", "crl"} {
		putRun(t, st, s, store.Run{ID: j, Job: j, Start: t0.Add(-time.Second), End: t0, Outcome: "ok"})
	}
	return s, st
}

func TestHealthzFailsOnADropThatCannotTakeFiles(t *testing.T) {
	for _, r := range []*drop.Report{
		{Drop: "sftp://anpr@sftp:22/dorp", Base: "bad base path: the folder does not exist"},
		{Drop: "sftp://anpr@sftp:22/drop", Error: "connection refused"},
		{Drop: "sftp://anpr@sftp:22/drop", Folders: 9, NotWritable: []string{"crl/: permission denied"}},
	} {
		s, st := healthyServer(t)
		if code, body := get(t, s.Handler(), "/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("before the drop check: /healthz = %d %q", code, body)
		}
		putDropReport(t, st, r)
		code, body := get(t, s.Handler(), "/healthz")
		if code != 503 || !strings.Contains(body, r.Drop) || !strings.Contains(body, r.Base+r.Error+strings.Join(r.NotWritable, "")) {
			t.Errorf("report %+v: /healthz = %d %q", r, code, body)
		}
	}
}

func TestHealthzWarnsOfMissingInputFolders(t *testing.T) {
	s, st := healthyServer(t)
	putDropReport(t, st, &drop.Report{Drop: "/srv/drop", Folders: 9, Missing: []string{"censimento/", "comuni/058091/richieste/"}})
	code, body := get(t, s.Handler(), "/healthz")
	if code != 200 || !strings.HasPrefix(body, "ok\n") || strings.Count(body, "warning: ") != 2 ||
		!strings.Contains(body, "cartella di ingresso mancante") || !strings.Contains(body, "comuni/058091/richieste/") {
		t.Errorf("/healthz = %d %q, want ok and two warnings", code, body)
	}
	_, js := get(t, s.Handler(), "/status")
	var got Status
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	if got.Drop == nil || len(got.Drop.Missing) != 2 || got.Drop.OK() {
		t.Errorf("/status drop = %+v", got.Drop)
	}
}
