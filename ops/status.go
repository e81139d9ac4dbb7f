// Package ops tells an operator what the daemon is doing: Prometheus
// metrics (/metrics), a health check (/healthz) and a status snapshot
// (/status, and `anprsec status`), all served on a loopback address by
// `anprsec run`. It reads the store in short read-only transactions and
// learns about runs through schedules.Runner.OnRunEnd.
package ops

import (
	"errors"
	"regexp"
	"sort"
	"sync"
	"time"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/lifecycle"
	"anprsec/schedules"
	"anprsec/store"
)

// Schedules is what ops needs of the schedule table: *schedules.Runner
// has it, and CronTable builds it from the config for a process that does
// not run the jobs.
type Schedules interface {
	// Spec returns a job's cron spec ("" when unscheduled).
	Spec(job string) string
	// Next returns a job's next activation after t (zero when unscheduled).
	Next(job string, t time.Time) time.Time
}

// CronTable is a Schedules from cron specs (config schedules.*); specs
// that do not parse are left out (the daemon refuses them anyway).
func CronTable(specs map[string]string, loc *time.Location) Schedules {
	t := cronTable{specs: map[string]string{}, next: map[string]func(time.Time) time.Time{}}
	for job, spec := range specs {
		s, err := schedules.ParseSpec(spec, loc)
		if err != nil {
			continue
		}
		t.specs[job], t.next[job] = spec, s.Next
	}
	return t
}

type cronTable struct {
	specs map[string]string
	next  map[string]func(time.Time) time.Time
}

func (c cronTable) Spec(job string) string { return c.specs[job] }
func (c cronTable) Next(job string, t time.Time) time.Time {
	if f, ok := c.next[job]; ok {
		return f(t)
	}
	return time.Time{}
}

// Status is a snapshot for an operator: `anprsec status` prints it, the
// daemon serves it as JSON on /status. It holds no secret and no codice
// fiscale.
type Status struct {
	Now     time.Time `json:"now"`
	DataDir string    `json:"data_dir,omitempty"`
	// DaemonStarted is set when the snapshot comes from the running daemon.
	DaemonStarted time.Time   `json:"daemon_started,omitzero"`
	Jobs          []JobStatus `json:"jobs"`
	Backlog       Backlog     `json:"backlog"`
	KeyPool       KeyPool     `json:"key_pool"`
	CRL           *CRLStatus  `json:"crl,omitempty"`
	// Drop is the last check of the drop (`anprsec drop verifica`, and
	// the daemon's at start and every hour); nil before the first.
	Drop *drop.Report `json:"drop,omitempty"`
	// FailedRuns is the last failed run of each job that ever failed,
	// newest first.
	FailedRuns []store.Run `json:"failed_runs"`
	// FailedMails are the most recent messages set aside (at most
	// MaxFailedMails); Backlog.MailsFailed is their total.
	FailedMails []FailedMail `json:"failed_mails"`
	// LateCards are the cards late in production
	// (docs/rules.md#card-lifecycle), oldest order first.
	LateCards []lifecycle.LateCard `json:"late_cards"`
}

// JobStatus is one job's line of the snapshot.
type JobStatus struct {
	Name     string     `json:"name"`
	Schedule string     `json:"schedule,omitempty"`
	Next     time.Time  `json:"next,omitzero"`
	Last     *store.Run `json:"last,omitempty"`
	LastOK   *store.Run `json:"last_ok,omitempty"`
}

// Backlog is the work waiting, by kind.
type Backlog struct {
	CertRequested     int       `json:"cert_requested"`   // postazioni RICHIESTA IN LAVORAZIONE: waiting for a certificate
	CertRevoking      int       `json:"cert_revoking"`    // REVOCATA IN LAVORAZIONE: waiting for the end of the undo window
	CardsRequested    int       `json:"cards_requested"`  // RICHIESTA: waiting for the order to the producer
	CardsInProduction int       `json:"cards_production"` // IN PRODUZIONE: waiting for the prefettura
	CardsDelivered    int       `json:"cards_delivered"`  // CONSEGNATA DALLA PREFETTURA: waiting for the delivery to the holder
	MailsQueued       int       `json:"mails_queued"`
	OldestQueued      time.Time `json:"oldest_queued,omitzero"`
	MailsFailed       int       `json:"mails_failed"`
	PendingBundles    int       `json:"pending_bundles"` // committed ZIPs not yet published
	PendingOrders     int       `json:"pending_orders"`  // committed card orders not yet published
}

// KeyPool is the pre-generated key pool of the configured algorithm.
type KeyPool struct {
	Algorithm string `json:"algorithm"`
	Keys      int    `json:"keys"`
}

// CRLStatus is the last CRL signed.
type CRLStatus struct {
	Number     uint64    `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Entries    int       `json:"entries"`
	Published  time.Time `json:"published,omitzero"`
}

// FailedMail is a message set aside, without its recipient's codice fiscale.
type FailedMail struct {
	ID        string    `json:"id"`
	ISTAT     string    `json:"istat,omitempty"`
	Queued    time.Time `json:"queued"`
	Attempts  int       `json:"attempts"`
	LastTry   time.Time `json:"last_try,omitzero"`
	LastError string    `json:"last_error"`
}

// MaxFailedMails is the number of failed messages a snapshot lists.
const MaxFailedMails = 10

// gauges is what both a scrape and a snapshot read from the store.
type gauges struct {
	backlog Backlog
	pool    int
	crl     *store.CRL
	lastOK  map[string]*store.Run
}

// readGauges reads the counts of the backlog, the pool and the CRL in the
// caller's transaction: index scans without values, and one record per
// queued message (for the oldest). jobs names the jobs whose last success
// is wanted.
// hint, when not nil, remembers the oldest queued message across calls.
func readGauges(tx *store.Tx, alg string, jobs []string, hint *oldestHint) (*gauges, error) {
	g := &gauges{lastOK: map[string]*store.Run{}}
	b := &g.backlog
	for _, c := range []struct {
		n  *int
		fn func() ([]string, error)
	}{
		{&b.CertRequested, func() ([]string, error) { return tx.PostazioniInState(domain.CertRichiesta) }},
		{&b.CertRevoking, func() ([]string, error) { return tx.PostazioniInState(domain.CertRevocaInCorso) }},
		{&b.CardsRequested, func() ([]string, error) { return tx.CardsInState(domain.CardRichiesta) }},
		{&b.CardsInProduction, func() ([]string, error) { return tx.CardsInState(domain.CardProduzione) }},
		{&b.CardsDelivered, func() ([]string, error) { return tx.CardsInState(domain.CardConsegnata) }},
		{&b.MailsFailed, func() ([]string, error) { return tx.MailsInState(store.MailFailed) }},
		{&b.PendingBundles, tx.PendingBundles},
		{&b.PendingOrders, tx.PendingCardOrders},
	} {
		ids, err := c.fn()
		if err != nil {
			return nil, err
		}
		*c.n = len(ids)
	}
	queued, err := tx.MailsInState(store.MailQueued)
	if err != nil {
		return nil, err
	}
	b.MailsQueued = len(queued)
	if b.OldestQueued, err = oldestQueued(tx, queued, hint); err != nil {
		return nil, err
	}
	if g.pool, err = tx.PoolSize(alg); err != nil {
		return nil, err
	}
	if g.crl, err = tx.LastCRL(); errors.Is(err, store.ErrNotFound) {
		g.crl = nil
	} else if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		r, err := schedules.LastSuccess(tx, j)
		switch {
		case err == nil:
			g.lastOK[j] = r
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	return g, nil
}

// oldestHint is the oldest queued message seen by the previous scrape.
// Messages are queued with the store's clock, so one queued later is never
// older: while that message is still queued it is still the oldest, and a
// scrape reads one record instead of the whole queue.
type oldestHint struct {
	mu     sync.Mutex
	id     string
	queued time.Time
}

func oldestQueued(tx *store.Tx, queued []string, hint *oldestHint) (time.Time, error) {
	if hint != nil {
		hint.mu.Lock()
		defer hint.mu.Unlock()
		if hint.id != "" {
			m, err := tx.Mail(hint.id)
			if err == nil && m.State == store.MailQueued && m.Queued.Equal(hint.queued) {
				return m.Queued, nil
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return time.Time{}, err
			}
		}
	}
	var oldest time.Time
	var oldestID string
	for _, id := range queued {
		m, err := tx.Mail(id)
		if err != nil {
			return time.Time{}, err
		}
		if oldest.IsZero() || m.Queued.Before(oldest) {
			oldest, oldestID = m.Queued, id
		}
	}
	if hint != nil {
		hint.id, hint.queued = oldestID, oldest
	}
	return oldest, nil
}

// Snapshot reads a Status in the caller's transaction. jobs are the
// implemented jobs, in the order to show them.
func Snapshot(tx *store.Tx, sched Schedules, jobs []string, keyAlg string, now time.Time) (*Status, error) {
	g, err := readGauges(tx, keyAlg, jobs, nil)
	if err != nil {
		return nil, err
	}
	st := &Status{Now: now.UTC(), Backlog: g.backlog, KeyPool: KeyPool{Algorithm: keyAlg, Keys: g.pool},
		FailedRuns: []store.Run{}, FailedMails: []FailedMail{}}
	if st.Drop, err = lastDropReport(tx); err != nil {
		return nil, err
	}
	if c := g.crl; c != nil {
		st.CRL = &CRLStatus{Number: c.Number, ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate, Entries: c.Entries, Published: c.Published}
	}
	for _, j := range jobs {
		js := JobStatus{Name: j, Schedule: sched.Spec(j), LastOK: g.lastOK[j]}
		if n := sched.Next(j, now); !n.IsZero() {
			js.Next = n.UTC()
		}
		last, err := tx.LastRun(j)
		switch {
		case err == nil:
			js.Last = last
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		st.Jobs = append(st.Jobs, js)
		fail, err := schedules.LastFailure(tx, j)
		switch {
		case err == nil:
			st.FailedRuns = append(st.FailedRuns, *fail)
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	sort.SliceStable(st.FailedRuns, func(i, k int) bool { return st.FailedRuns[i].Start.After(st.FailedRuns[k].Start) })
	failed, err := tx.MailsInState(store.MailFailed)
	if err != nil {
		return nil, err
	}
	for _, id := range failed {
		m, err := tx.Mail(id)
		if err != nil {
			return nil, err
		}
		last := m.NextTry
		if last.IsZero() {
			last = m.Queued
		}
		st.FailedMails = append(st.FailedMails, FailedMail{ID: maskCF(m.ID), ISTAT: m.ISTAT, Queued: m.Queued,
			Attempts: m.Attempts, LastTry: last, LastError: maskCF(m.LastError)})
	}
	sort.SliceStable(st.FailedMails, func(i, k int) bool { return st.FailedMails[i].LastTry.After(st.FailedMails[k].LastTry) })
	if len(st.FailedMails) > MaxFailedMails {
		st.FailedMails = st.FailedMails[:MaxFailedMails]
	}
	return st, nil
}

// lastDropReport reads the last check of the drop recorded in the store,
// or nil when there is none.
func lastDropReport(tx *store.Tx) (*drop.Report, error) {
	var r drop.Report
	ok, err := tx.DropReport(&r)
	if !ok || err != nil {
		return nil, err
	}
	return &r, nil
}

// DropProblems splits what the last check of the drop found: problems
// keep the jobs from publishing (the drop cannot be checked, a wrong base
// path, folders not writable); warnings are input folders missing, where
// nothing can be dropped.
func DropProblems(r *drop.Report) (problems, warnings []string) {
	if r == nil || r.OK() {
		return nil, nil
	}
	if r.Error != "" || r.Base != "" {
		return r.Problems(), nil
	}
	bad := &drop.Report{Drop: r.Drop, NotWritable: r.NotWritable}
	missing := &drop.Report{Drop: r.Drop, Missing: r.Missing}
	return bad.Problems(), missing.Problems()
}

// cfLike matches a codice fiscale (with omocodia letters) inside a text.
var cfLike = regexp.MustCompile(`\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPR-T][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b`)

// maskCF hides the codici fiscali in a text shown to an operator (mail IDs
// of records written before they stopped carrying one).
func maskCF(s string) string { return cfLike.ReplaceAllString(s, "****************") }
