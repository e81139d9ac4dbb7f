package ops

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"anprsec/domain"
	"anprsec/secret"
	"anprsec/store"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 30, 0, time.UTC)

// fixedSchedules: every job every interval, aligned on the minute.
type fixedSchedules map[string]time.Duration

func (f fixedSchedules) Spec(job string) string {
	if d, ok := f[job]; ok {
		return "every " + d.String()
	}
	return ""
}
func (f fixedSchedules) Next(job string, t time.Time) time.Time {
	d, ok := f[job]
	if !ok {
		return time.Time{}
	}
	return t.Truncate(d).Add(d)
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{7}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fill puts a little of everything in the store: 3 requested certificates,
// 1 revocation in its window, cards in 3 states, 2 queued mails (the oldest
// queued an hour before t0) and a failed one, 4 pool keys, a CRL signed
// 30 minutes before t0.
func fill(t *testing.T, st *store.Store) {
	t.Helper()
	err := st.Update(func(tx *store.Tx) error {
		for i, s := range []domain.CertState{domain.CertRichiesta, domain.CertRichiesta, domain.CertRichiesta, domain.CertRevocaInCorso, domain.CertAttivo} {
			code := "058091-PC-000" + string(rune('1'+i))
			if err := tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: "058091", State: s}); err != nil {
				return err
			}
		}
		for i, s := range []domain.CardState{domain.CardRichiesta, domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva} {
			c := &domain.SmartCard{Serial: "SC000000000" + string(rune('1'+i)), CF: "RSSMRA68A01H501Y", ISTAT: "058091", State: s}
			if err := tx.PutCard(c); err != nil {
				return err
			}
		}
		for i, q := range []time.Duration{time.Hour, 10 * time.Minute} {
			m := &store.Mail{ID: store.PINMailID("SC000000000" + string(rune('1'+i))), Kind: store.MailPIN, CF: "RSSMRA68A01H501Y"}
			if _, err := tx.QueueMail(m); err != nil {
				return err
			}
			m.Queued = t0.Add(-q)
			if err := tx.PutMail(m); err != nil {
				return err
			}
		}
		failed := &store.Mail{ID: "pin/SC0000000009", Kind: store.MailPIN, CF: "RSSMRA68A01H501Y", ISTAT: "058091", State: store.MailFailed,
			Queued: t0.Add(-48 * time.Hour), Attempts: 8, NextTry: t0.Add(-time.Hour), LastError: "550 5.1.1 mailbox unavailable"}
		if err := tx.PutMail(failed); err != nil {
			return err
		}
		for range 4 {
			if _, err := tx.PutPoolKey("rsa2048", func(string) []byte { return []byte("sealed") }); err != nil {
				return err
			}
		}
		if _, err := tx.PutPoolKey("ecdsa-p256", func(string) []byte { return []byte("sealed") }); err != nil {
			return err
		}
		return tx.PutCRL(&store.CRL{Number: 7, ThisUpdate: t0.Add(-30 * time.Minute), NextUpdate: t0.Add(25 * time.Hour), Entries: 2})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newServer(t *testing.T, st *store.Store, now *time.Time, started time.Time) *Server {
	return New(Options{
		Store:        st,
		Schedules:    fixedSchedules{"ingest-censimento": time.Minute, "certificati": 5 * time.Minute, "crl": time.Hour},
		Jobs:         []string{"ingest-censimento", "certificati", "crl", "export-audit"},
		KeyAlgorithm: "rsa2048",
		DataDir:      "/srv/anprsec/var/data",
		Started:      started,
		Grace:        time.Minute,
		Now:          func() time.Time { return *now },
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// putRun records a finished run as the runner does (final record, and the
// last success or failure).
func putRun(t *testing.T, st *store.Store, s *Server, rec store.Run) {
	t.Helper()
	err := st.Update(func(tx *store.Tx) error {
		if err := tx.PutRun(&rec); err != nil {
			return err
		}
		switch rec.Outcome {
		case "ok":
			return tx.SetMeta("run-ok/"+rec.Job, &rec)
		case "error":
			return tx.SetMeta("run-fail/"+rec.Job, &rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s != nil {
		s.ObserveRun(&rec)
	}
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:9464/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want ("k=v" pairs); ok false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	st := openStore(t)
	fill(t, st)
	now := t0
	s := newServer(t, st, &now, t0.Add(-time.Hour))
	putRun(t, st, s, store.Run{ID: "a1", Job: "ingest-censimento", Start: t0.Add(-90 * time.Second), End: t0.Add(-88 * time.Second),
		Outcome: "ok", Counts: map[string]int{"files": 1, "rows_ok": 5, "rows_refused": 13}})
	putRun(t, st, s, store.Run{ID: "a2", Job: "ingest-censimento", Start: t0.Add(-30 * time.Second), End: t0.Add(-20 * time.Second),
		Outcome: "ok", Counts: map[string]int{"files": 1, "rows_ok": 230}})
	putRun(t, st, s, store.Run{ID: "c1", Job: "certificati", Start: t0.Add(-4 * time.Minute), End: t0.Add(-3 * time.Minute),
		Outcome: "ok", Counts: map[string]int{"issued": 40, "bundles": 4}})
	putRun(t, st, s, store.Run{ID: "c2", Job: "certificati", Start: t0.Add(-2 * time.Minute), End: t0.Add(-2 * time.Minute),
		Outcome: "error", Error: "CA key unreadable"})
	s.ObserveRun(&store.Run{Job: "crl", Outcome: "running"}) // ignored
	// A CRL run's number and entries are values, not events: never added up.
	putRun(t, st, s, store.Run{ID: "l1", Job: "crl", Start: t0.Add(-time.Hour), End: t0.Add(-time.Hour),
		Outcome: "ok", Values: map[string]int{"crl_number": 7, "crl_held": 2}})

	fams := scrape(t, s.Handler())
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"anprsec_job_runs_total", []string{"job=ingest-censimento", "outcome=ok"}, 2},
		{"anprsec_job_runs_total", []string{"job=certificati", "outcome=ok"}, 1},
		{"anprsec_job_runs_total", []string{"job=certificati", "outcome=error"}, 1},
		{"anprsec_job_runs_total", []string{"job=crl", "outcome=ok"}, 1},
		{"anprsec_job_runs_total", []string{"job=crl", "outcome=error"}, 0}, // pre-declared
		{"anprsec_job_run_duration_seconds", []string{"job=ingest-censimento"}, 2},
		{"anprsec_rows_accepted_total", []string{"job=ingest-censimento"}, 235},
		{"anprsec_rows_refused_total", []string{"job=ingest-censimento"}, 13},
		{"anprsec_certificates_issued_total", nil, 40},
		{"anprsec_job_counts_total", []string{"job=certificati", "count=bundles"}, 4},
		{"anprsec_job_counts_total", []string{"job=ingest-censimento", "count=files"}, 2},
		{"anprsec_store_up", nil, 1},
		{"anprsec_keypool_keys", []string{"algorithm=rsa2048"}, 4},
		{"anprsec_outbox_queued_mails", nil, 2},
		{"anprsec_outbox_oldest_queued_age_seconds", nil, 3600},
		{"anprsec_outbox_failed_mails", nil, 1},
		{"anprsec_crl_age_seconds", nil, 1800},
		{"anprsec_crl_next_update_timestamp_seconds", nil, float64(t0.Add(25 * time.Hour).Unix())},
		{"anprsec_certificates_pending", []string{"state=RICHIESTA IN LAVORAZIONE"}, 3},
		{"anprsec_certificates_pending", []string{"state=REVOCATA IN LAVORAZIONE"}, 1},
		{"anprsec_cards_pending", []string{"state=RICHIESTA"}, 2},
		{"anprsec_cards_pending", []string{"state=IN PRODUZIONE"}, 1},
		{"anprsec_cards_pending", []string{"state=CONSEGNATA DALLA PREFETTURA"}, 1},
		{"anprsec_bundles_pending", nil, 0},
		{"anprsec_card_orders_pending", nil, 0},
		{"anprsec_job_last_success_timestamp_seconds", []string{"job=certificati"}, float64(t0.Add(-3 * time.Minute).Unix())},
	} {
		got, ok := value(fams, tc.name, tc.labels...)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if _, ok := value(fams, "anprsec_job_last_success_timestamp_seconds", "job=ordini-sc"); ok {
		t.Error("a last success for ordini-sc, which never ran")
	}
	for _, count := range []string{"count=number", "count=held"} {
		if v, ok := value(fams, "anprsec_job_counts_total", "job=crl", count); ok {
			t.Errorf("anprsec_job_counts_total{job=crl,%s} = %v: a value added up as a count", count, v)
		}
	}
	// the process and Go collectors of the daemon's own registry
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	// nothing of ours in the global default registry
	def, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range def {
		if strings.HasPrefix(f.GetName(), "anprsec_") {
			t.Errorf("%s registered in the global default registry", f.GetName())
		}
	}
}

// A store that cannot be read: the scrape still answers, with store_up 0.
func TestMetricsStoreDown(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{7}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	s := newServer(t, st, &now, t0)
	st.Close()
	fams := scrape(t, s.Handler())
	if v, ok := value(fams, "anprsec_store_up"); !ok || v != 0 {
		t.Errorf("anprsec_store_up = %v, %v; want 0", v, ok)
	}
	if _, ok := value(fams, "anprsec_outbox_queued_mails"); ok {
		t.Error("store gauges reported while the store is closed")
	}
}

// get asks path of h as a client on the loopback does (Host 127.0.0.1).
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:9464"+path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthz(t *testing.T) {
	type run struct {
		job     string
		ago     time.Duration // end of the run before now
		outcome string
		err     string
	}
	for _, tc := range []struct {
		name    string
		started time.Duration // daemon up for
		runs    []run
		want    []string // problems, by substring; none = 200
	}{
		{"all fresh", 3 * time.Hour, []run{
			{"ingest-censimento", 30 * time.Second, "ok", ""},
			{"certificati", 4 * time.Minute, "ok", ""},
			{"crl", 50 * time.Minute, "ok", ""},
		}, nil},
		{"just started, nothing ran yet", 30 * time.Second, nil, nil},
		{"succeeded since the next-to-last run due", 3 * time.Hour, []run{
			{"ingest-censimento", 2*time.Minute + 20*time.Second, "ok", ""}, // due 09:58 (09:59 may still run)
			{"certificati", 10 * time.Minute, "ok", ""},                     // due 09:50
			{"crl", 2 * time.Hour, "ok", ""},                                // due 08:00
		}, nil},
		{"stale and failing", 3 * time.Hour, []run{
			{"ingest-censimento", 30 * time.Second, "ok", ""},
			{"certificati", 12 * time.Minute, "ok", ""},
			{"certificati", 1 * time.Minute, "error", "CA key unreadable:\nopen var/pki/ca.key"},
			{"crl", 50 * time.Minute, "ok", ""},
		}, []string{"certificati: last successful run ended 2026-11-25T09:48:30Z, 12m0s ago (runs were due at 2026-11-25T09:50:00Z and 2026-11-25T09:55:00Z); last failure 2026-11-25T09:59:29Z: CA key unreadable: open var/pki/ca.key"}},
		{"never succeeded since a start long ago", 3 * time.Hour, []run{
			{"ingest-censimento", 30 * time.Second, "ok", ""},
			{"certificati", 4 * time.Minute, "ok", ""},
			{"crl", 10 * time.Minute, "error", "signing failed"},
		}, []string{"crl: no successful run yet (daemon up since 2026-11-25T07:00:30Z; runs were due at 2026-11-25T08:00:00Z and 2026-11-25T09:00:00Z); last failure"}},
		{"restarted after a long stop: one interval plus grace to catch up", 90 * time.Second, []run{
			{"ingest-censimento", 48 * time.Hour, "ok", ""},
		}, nil},
		{"restarted, catch-up overdue", 7 * time.Minute, []run{
			{"ingest-censimento", 48 * time.Hour, "ok", ""},
		}, []string{"ingest-censimento: last successful run ended", "certificati: no successful run yet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			now := t0
			s := newServer(t, st, &now, t0.Add(-tc.started))
			for i, r := range tc.runs {
				end := now.Add(-r.ago)
				putRun(t, st, nil, store.Run{ID: string(rune('a' + i)), Job: r.job, Start: end.Add(-time.Second), End: end, Outcome: r.outcome, Error: r.err})
			}
			code, body := get(t, s.Handler(), "/healthz")
			if len(tc.want) == 0 {
				if code != 200 || body != "ok\n" {
					t.Errorf("/healthz = %d %q, want 200 ok", code, body)
				}
				return
			}
			if code != 503 {
				t.Errorf("/healthz = %d, want 503", code)
			}
			lines := strings.Split(strings.TrimSpace(body), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("/healthz: %d problems, want %d:\n%s", len(lines), len(tc.want), body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("/healthz body does not say %q:\n%s", w, body)
				}
			}
			if strings.Contains(body, "export-audit") {
				t.Errorf("an unscheduled job is checked:\n%s", body)
			}
		})
	}
}

// TestHealthzWeekdayJobIsNotLateOverTheWeekend: /healthz judges a job by the
// activations its schedule had before now, not by the gap between its next
// two: a job scheduled on weekdays only ("0 9 * * 1-5") whose last run,
// Friday 09:00, succeeded has missed nothing on Monday at 08:30 (README,
// "Operations": a weekday job is not late over the weekend).
func TestHealthzWeekdayJobIsNotLateOverTheWeekend(t *testing.T) {
	st := openStore(t)
	fri := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC) // a Friday
	mon := time.Date(2026, 11, 30, 8, 30, 0, 0, time.UTC)
	now := mon
	s := New(Options{Store: st, Schedules: CronTable(map[string]string{"scadenze": "0 9 * * 1-5"}, time.UTC),
		Jobs: []string{"scadenze"}, Started: mon.Add(-7 * 24 * time.Hour), Now: func() time.Time { return now }})
	putRun(t, st, s, store.Run{ID: "s1", Job: "scadenze", Start: fri, End: fri.Add(time.Minute), Outcome: "ok"})
	if p := s.Health(); len(p) != 0 {
		t.Errorf("Monday 08:30, last run Friday 09:00 ok (no activation missed): /healthz problems %q", p)
	}
}

func TestHealthzStoreClosed(t *testing.T) {
	st, _ := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{7}, secret.KeySize)})
	now := t0
	s := newServer(t, st, &now, t0)
	st.Close()
	code, body := get(t, s.Handler(), "/healthz")
	if code != 503 || !strings.HasPrefix(body, "store: ") {
		t.Errorf("/healthz with the store closed = %d %q", code, body)
	}
}

// TestHealthzNamesAFullDisk: a failing check (free space below min_free)
// makes /healthz unhealthy with its message.
func TestHealthzNamesAFullDisk(t *testing.T) {
	st := openStore(t)
	now := t0
	s := newServer(t, st, &now, t0)
	s.o.Checks = []func() error{func() error { return errors.New("spazio su disco insufficiente: /srv ha 10.0 MiB liberi") }}
	code, body := get(t, s.Handler(), "/healthz")
	if code != 503 || !strings.Contains(body, "spazio su disco insufficiente") {
		t.Errorf("/healthz on a full disk = %d %q", code, body)
	}
}

func TestStatusJSON(t *testing.T) {
	st := openStore(t)
	fill(t, st)
	now := t0
	s := newServer(t, st, &now, t0.Add(-time.Hour))
	putRun(t, st, s, store.Run{ID: "c1", Job: "certificati", Start: t0.Add(-9 * time.Minute), End: t0.Add(-8 * time.Minute), Outcome: "ok", Counts: map[string]int{"issued": 3}})
	putRun(t, st, s, store.Run{ID: "c2", Job: "certificati", Start: t0.Add(-4 * time.Minute), End: t0.Add(-4 * time.Minute), Outcome: "error", Error: "boom"})
	putRun(t, st, s, store.Run{ID: "r1", Job: "crl", Start: t0.Add(-70 * time.Minute), End: t0.Add(-70 * time.Minute), Outcome: "error", Error: "older"})
	code, body := get(t, s.Handler(), "/status")
	if code != 200 {
		t.Fatalf("/status = %d %s", code, body)
	}
	if strings.Contains(body, "RSSMRA68A01H501Y") {
		t.Errorf("/status shows a codice fiscale:\n%s", body)
	}
	var got Status
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	b := got.Backlog
	if b.CertRequested != 3 || b.CertRevoking != 1 || b.CardsRequested != 2 || b.CardsInProduction != 1 || b.CardsDelivered != 1 ||
		b.MailsQueued != 2 || b.MailsFailed != 1 || !b.OldestQueued.Equal(t0.Add(-time.Hour)) {
		t.Errorf("backlog = %+v", b)
	}
	if got.DataDir != "/srv/anprsec/var/data" || !got.DaemonStarted.Equal(t0.Add(-time.Hour)) {
		t.Errorf("data dir %q, started %s", got.DataDir, got.DaemonStarted)
	}
	if got.KeyPool != (KeyPool{"rsa2048", 4}) || got.CRL == nil || got.CRL.Number != 7 {
		t.Errorf("pool %+v, crl %+v", got.KeyPool, got.CRL)
	}
	if len(got.Jobs) != 4 || got.Jobs[1].Name != "certificati" || got.Jobs[1].Last.ID != "c2" || got.Jobs[1].LastOK.ID != "c1" ||
		!got.Jobs[1].Next.Equal(time.Date(2026, 11, 25, 10, 5, 0, 0, time.UTC)) || got.Jobs[3].Last != nil {
		t.Errorf("jobs = %+v", got.Jobs)
	}
	if len(got.FailedRuns) != 2 || got.FailedRuns[0].ID != "c2" || got.FailedRuns[1].ID != "r1" {
		t.Errorf("failed runs = %+v, want c2 then r1", got.FailedRuns)
	}
	if len(got.FailedMails) != 1 || got.FailedMails[0].LastError != "550 5.1.1 mailbox unavailable" || got.FailedMails[0].Attempts != 8 {
		t.Errorf("failed mails = %+v", got.FailedMails)
	}
}

func TestServeShutsDown(t *testing.T) {
	st := openStore(t)
	now := t0
	s := newServer(t, st, &now, t0)
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz over TCP = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := Listen(ln.Addr().String()); err != nil {
		t.Errorf("address still held after shutdown: %v", err)
	}
}

// The oldest queued message is remembered between scrapes, and forgotten
// when it leaves the queue.
func TestOldestQueuedAcrossScrapes(t *testing.T) {
	st := openStore(t)
	fill(t, st) // queued: SC0000000001 (1h before t0), SC0000000002 (10m before)
	now := t0
	s := newServer(t, st, &now, t0)
	age := func() float64 {
		v, ok := value(scrape(t, s.Handler()), "anprsec_outbox_oldest_queued_age_seconds")
		if !ok {
			t.Fatal("no anprsec_outbox_oldest_queued_age_seconds")
		}
		return v
	}
	setState := func(id string, state store.MailState, queued time.Time) {
		st.Update(func(tx *store.Tx) error {
			m, err := tx.Mail(id)
			if err != nil {
				m = &store.Mail{ID: id, Kind: store.MailPIN}
			}
			m.State, m.Queued = state, queued
			return tx.PutMail(m)
		})
	}
	if a := age(); a != 3600 {
		t.Fatalf("age %v, want 3600", a)
	}
	setState("pin/SC0000000003", store.MailQueued, t0.Add(-time.Minute)) // newer: no change
	if a := age(); a != 3600 {
		t.Errorf("after a newer message: age %v, want 3600", a)
	}
	setState("pin/SC0000000001", store.MailSent, t0.Add(-time.Hour)) // the oldest leaves
	if a := age(); a != 600 {
		t.Errorf("after the oldest was sent: age %v, want 600", a)
	}
	setState("pin/SC0000000002", store.MailFailed, t0.Add(-10*time.Minute))
	setState("pin/SC0000000003", store.MailSent, t0.Add(-time.Minute))
	if a := age(); a != 0 {
		t.Errorf("empty queue: age %v, want 0", a)
	}
}

// A page in an operator's browser that points a name of its own at
// 127.0.0.1 (DNS rebinding) sends that name as Host: the server refuses it
// on every path, over a real connection, and still answers the loopback
// names and the configured address.
func TestForeignHostIsRefused(t *testing.T) {
	st := openStore(t)
	now := t0
	s := newServer(t, st, &now, t0)
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.o.Address = "127.0.0.1:9464"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	raw := func(host, path string) (int, string) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, host := range []string{"evil.example", "evil.example:" + port, "127.0.0.1.evil.example", "localhost.evil.example:" + port, "10.0.0.1:" + port} {
		for _, path := range []string{"/status", "/metrics", "/healthz", "/"} {
			code, body := raw(host, path)
			if code != http.StatusMisdirectedRequest {
				t.Errorf("Host %s %s = %d, want 421", host, path, code)
			}
			if strings.Contains(body, "DataDir") || strings.Contains(body, "anprsec_") || strings.Contains(body, s.o.DataDir) {
				t.Errorf("Host %s %s leaks the page: %.200s", host, path, body)
			}
		}
	}
	for _, host := range []string{"localhost:" + port, "LOCALHOST", "127.0.0.1:" + port, "127.0.0.1", "[::1]:" + port, "[::1]", "127.0.0.1:9464"} {
		if code, body := raw(host, "/status"); code != 200 || !strings.Contains(body, s.o.DataDir) {
			t.Errorf("Host %s /status = %d %.200s, want 200 with the snapshot", host, code, body)
		}
	}
}
