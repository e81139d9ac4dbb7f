package ops

import (
	"strings"
	"testing"
	"time"

	"anprsec/store"
)

// A failed expiry warning is listed on /status with its outbox ID, and the
// ID of an expiry warning ends with the recipient's codice fiscale
// (jobs/scadenze.go: "avviso/<ISTAT>/<what>/<tag>/<CF>"). Status promises
// "no secret and no codice fiscale" (ops/status.go), and FailedMail is
// documented as "without its recipient's codice fiscale"; issue 7: codici
// fiscali only where an operator needs them.
func TestReviewStatusFailedAvvisoLeaksCF(t *testing.T) {
	st := openStore(t)
	const cf = "MRTMRA70A41H501K"
	err := st.Update(func(tx *store.Tx) error {
		// The ID exactly as queueWarnings builds it.
		return tx.PutMail(&store.Mail{ID: "avviso/058091/certificati/20261125-0a1b2c3d4e5f/" + cf, Kind: store.MailAvviso,
			CF: cf, ISTAT: "058091", To: "maria.martini@example.it", State: store.MailFailed,
			Queued: t0.Add(-time.Hour), Attempts: 1, LastError: "550 5.1.1 mailbox unavailable"})
	})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	s := newServer(t, st, &now, t0.Add(-time.Hour))
	code, body := get(t, s.Handler(), "/status")
	if code != 200 {
		t.Fatalf("/status = %d %s", code, body)
	}
	if strings.Contains(body, cf) {
		t.Errorf("/status shows the recipient's codice fiscale in a failed mail:\n%s", body)
	}
}

// /healthz judges a job by the gap between its NEXT two activations, not
// by the activations it should have run since its last success. With a
// schedule that is not evenly spaced (config schedules.*: e.g. scadenze on
// weekdays only, "0 9 * * 1-5"), Monday morning before 09:00 the job last
// succeeded at its last activation (Friday 09:00) and missed nothing, yet
// /healthz answers 503 (issue 7: "every job's last successful run within
// its expected interval").
func TestReviewHealthzUnevenSchedule(t *testing.T) {
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
