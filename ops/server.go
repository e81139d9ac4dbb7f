package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"anprsec/internal/httpserve"
	"anprsec/lifecycle"
	"anprsec/schedules"
	"anprsec/store"
)

// DefaultGrace is added to twice a job's interval before /healthz calls
// its last success too old (a batch may run for minutes).
const DefaultGrace = 15 * time.Minute

// Options configure a Server.
type Options struct {
	Store     *store.Store
	Schedules Schedules
	// Jobs are the implemented jobs, in the order to show them; the
	// scheduled ones are checked by /healthz.
	Jobs []string
	// KeyAlgorithm is pki.key_algorithm: the pool reported is that one's.
	KeyAlgorithm string
	// DataDir is shown on /status, so that `anprsec status` knows it asks
	// the daemon of its own store.
	DataDir string
	// Address is metrics.address: a request's Host must be it, localhost
	// or a loopback IP (with any port), see Handler.
	Address string
	// Started is when the daemon started (default: New's time).
	Started time.Time
	// Grace, see DefaultGrace (0 = DefaultGrace).
	Grace time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
	// Checks are further conditions of /healthz (free disk space): each
	// non-nil error is a problem.
	Checks []func() error
	// Late is the rule of cards late in production (a zero rule finds
	// none): /status lists them, /metrics counts them.
	Late lifecycle.LateRule
}

// Server holds the metrics registry of one daemon and serves /metrics,
// /healthz and /status. It registers nothing in Prometheus's global
// default registry.
type Server struct {
	o        Options
	reg      *prometheus.Registry
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	counts   *prometheus.CounterVec
	accepted *prometheus.CounterVec
	refused  *prometheus.CounterVec
	issued   prometheus.Counter
	oldest   oldestHint
}

// New makes a Server; feed it runs with ObserveRun
// (schedules.Runner.OnRunEnd).
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Started.IsZero() {
		o.Started = o.Now()
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{o: o, reg: prometheus.NewRegistry()}
	s.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anprsec_job_runs_total", Help: "Finished job runs since the daemon started, by job and outcome (ok, error, panic, interrupted).",
	}, []string{"job", "outcome"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "anprsec_job_run_duration_seconds", Help: "Duration of finished job runs, by job.",
		Buckets: []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600},
	}, []string{"job"})
	s.counts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anprsec_job_counts_total", Help: "Sum of the counts recorded by job runs (files, rows_ok, issued, sent, ...), by job and count.",
	}, []string{"job", "count"})
	s.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anprsec_rows_accepted_total", Help: "Input rows accepted (OK in the receipt), by job.",
	}, []string{"job"})
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anprsec_rows_refused_total", Help: "Input rows refused (SCARTATO in the receipt), by job.",
	}, []string{"job"})
	s.issued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "anprsec_certificates_issued_total", Help: "Workstation certificates issued by the certificati job.",
	})
	for _, j := range o.Jobs {
		for _, oc := range []string{"ok", "error"} {
			s.runs.WithLabelValues(j, oc)
		}
	}
	s.reg.MustRegister(s.runs, s.duration, s.counts, s.accepted, s.refused, s.issued,
		storeCollector{s}, campaignCollector{s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// Registry returns the server's own registry (tests, extra collectors).
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ObserveRun records a finished run; it has the signature of
// schedules.Runner.OnRunEnd.
func (s *Server) ObserveRun(rec *store.Run) {
	if rec == nil || rec.Outcome == "running" {
		return
	}
	s.runs.WithLabelValues(rec.Job, rec.Outcome).Inc()
	if !rec.End.IsZero() {
		s.duration.WithLabelValues(rec.Job).Observe(rec.End.Sub(rec.Start).Seconds())
	}
	for k, n := range rec.Counts {
		if n <= 0 || k == "" {
			continue
		}
		s.counts.WithLabelValues(rec.Job, k).Add(float64(n))
		switch k {
		case "rows_ok":
			s.accepted.WithLabelValues(rec.Job).Add(float64(n))
		case "rows_refused":
			s.refused.WithLabelValues(rec.Job).Add(float64(n))
		case "issued":
			s.issued.Add(float64(n))
		}
	}
}

var (
	descStoreUp = prometheus.NewDesc("anprsec_store_up",
		"1 when the store answered the scrape's read transaction, else 0.", nil, nil)
	descLastOK = prometheus.NewDesc("anprsec_job_last_success_timestamp_seconds",
		"End of the job's last successful run (Unix time).", []string{"job"}, nil)
	descPool = prometheus.NewDesc("anprsec_keypool_keys",
		"Pre-generated keys in the pool, for pki.key_algorithm.", []string{"algorithm"}, nil)
	descQueued = prometheus.NewDesc("anprsec_outbox_queued_mails",
		"Messages in the outbox waiting to be sent.", nil, nil)
	descOldest = prometheus.NewDesc("anprsec_outbox_oldest_queued_age_seconds",
		"Age of the oldest message waiting in the outbox (0 when none).", nil, nil)
	descFailed = prometheus.NewDesc("anprsec_outbox_failed_mails",
		"Messages set aside after a permanent refusal or too many attempts.", nil, nil)
	descCRLAge = prometheus.NewDesc("anprsec_crl_age_seconds",
		"Seconds since the thisUpdate of the last CRL signed (absent before the first).", nil, nil)
	descCRLNext = prometheus.NewDesc("anprsec_crl_next_update_timestamp_seconds",
		"nextUpdate of the last CRL signed (Unix time).", nil, nil)
	descCerts = prometheus.NewDesc("anprsec_certificates_pending",
		"Workstation certificates waiting for the certificati batch, by state.", []string{"state"}, nil)
	descCards = prometheus.NewDesc("anprsec_cards_pending",
		"Smart cards on their way to the holder, by state.", []string{"state"}, nil)
	descBundles = prometheus.NewDesc("anprsec_bundles_pending",
		"Certificate ZIP bundles committed but not yet published.", nil, nil)
	descOrders = prometheus.NewDesc("anprsec_card_orders_pending",
		"Card orders committed but not yet published.", nil, nil)
	descLate = prometheus.NewDesc("anprsec_cards_late",
		"Smart cards IN PRODUZIONE for more working days than cards.late_working_days.", nil, nil)
)

// storeCollector reads the store's gauges at scrape time, in one read
// transaction.
type storeCollector struct{ s *Server }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStoreUp, descLastOK, descPool, descQueued, descOldest, descFailed,
		descCRLAge, descCRLNext, descCerts, descCards, descBundles, descOrders, descLate} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	var g *gauges
	var late []lifecycle.LateCard
	err := s.o.Store.View(func(tx *store.Tx) (err error) {
		if g, err = readGauges(tx, s.o.KeyAlgorithm, s.o.Jobs, &s.oldest); err != nil {
			return err
		}
		late, err = lifecycle.LateCards(tx, s.o.Late, s.o.Now())
		return err
	})
	if err != nil {
		s.o.Log.Warn("metrics: cannot read the store", "err", err)
		ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 0)
		return
	}
	now := s.o.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descStoreUp, 1)
	for _, j := range s.o.Jobs {
		if r := g.lastOK[j]; r != nil {
			gauge(descLastOK, float64(r.End.UnixMilli())/1000, j)
		}
	}
	b := g.backlog
	gauge(descPool, float64(g.pool), s.o.KeyAlgorithm)
	gauge(descQueued, float64(b.MailsQueued))
	age := 0.0
	if !b.OldestQueued.IsZero() {
		age = max(0, now.Sub(b.OldestQueued).Seconds())
	}
	gauge(descOldest, age)
	gauge(descFailed, float64(b.MailsFailed))
	if g.crl != nil {
		gauge(descCRLAge, max(0, now.Sub(g.crl.ThisUpdate).Seconds()))
		gauge(descCRLNext, float64(g.crl.NextUpdate.Unix()))
	}
	gauge(descCerts, float64(b.CertRequested), "RICHIESTA IN LAVORAZIONE")
	gauge(descCerts, float64(b.CertRevoking), "REVOCATA IN LAVORAZIONE")
	gauge(descCards, float64(b.CardsRequested), "RICHIESTA")
	gauge(descCards, float64(b.CardsInProduction), "IN PRODUZIONE")
	gauge(descCards, float64(b.CardsDelivered), "CONSEGNATA DALLA PREFETTURA")
	gauge(descBundles, float64(b.PendingBundles))
	gauge(descOrders, float64(b.PendingOrders))
	gauge(descLate, float64(len(late)))
}

// Health checks that the store answers, that the last check of the drop
// found it usable (DropProblems), and that every scheduled job's last
// successful run is recent enough: within twice the interval between its
// next two activations plus the grace. A job without a success since the
// daemon started is given one interval plus the grace from the start. It
// returns what is wrong, one line each (none when healthy).
func (s *Server) Health() []string {
	now := s.o.Now()
	var problems []string
	lastOK := map[string]*store.Run{}
	lastFail := map[string]*store.Run{}
	err := s.o.Store.View(func(tx *store.Tx) error {
		rep, err := lastDropReport(tx)
		if err != nil {
			return err
		}
		problems, _ = DropProblems(rep)
		for _, j := range s.o.Jobs {
			if s.o.Schedules.Next(j, now).IsZero() {
				continue
			}
			g, err := readLast(tx, j)
			if err != nil {
				return err
			}
			lastOK[j], lastFail[j] = g[0], g[1]
		}
		return nil
	})
	if err != nil {
		return []string{"store: " + err.Error()}
	}
	for _, c := range s.o.Checks {
		if err := c(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, j := range s.o.Jobs {
		// The last two activations the schedule had before now - Grace: the
		// job must have succeeded since the earlier one (the later one may
		// still be running, or skipped by the overlap guard). Taken from
		// the schedule itself, so uneven ones (weekdays, office hours) are
		// judged by the runs they really asked for.
		t0, t1, ok0 := s.lastActivations(j, now.Add(-s.o.Grace))
		if !ok0 {
			continue
		}
		// Since a restart, only the runs the daemon was up for count.
		due := t0
		if !t0.After(s.o.Started) {
			if !t1.After(s.o.Started) {
				continue // no run due since the start yet
			}
			due = t1
		}
		ok := lastOK[j]
		if ok != nil && !ok.End.Before(due) {
			continue
		}
		var msg string
		if ok == nil {
			msg = fmt.Sprintf("%s: no successful run yet (daemon up since %s; runs were due at %s and %s)", j, stamp(s.o.Started), stamp(t0), stamp(t1))
		} else {
			msg = fmt.Sprintf("%s: last successful run ended %s, %s ago (runs were due at %s and %s)", j, stamp(ok.End), now.Sub(ok.End).Round(time.Second), stamp(t0), stamp(t1))
		}
		if f := lastFail[j]; f != nil && (ok == nil || f.Start.After(ok.Start)) {
			msg += fmt.Sprintf("; last failure %s: %s", stamp(f.Start), oneLine(f.Error))
		}
		problems = append(problems, msg)
	}
	return problems
}

// Warnings are what /healthz shows below "ok": the input folders of the
// drop that are missing (DropProblems).
func (s *Server) Warnings() []string {
	var warnings []string
	s.o.Store.View(func(tx *store.Tx) error {
		rep, err := lastDropReport(tx)
		_, warnings = DropProblems(rep)
		return err
	})
	return warnings
}

// lastActivations returns the last two activations of job's schedule at
// or before until (t0 before t1); false when the schedule has none in the
// window looked at (10 intervals, at least 25 hours).
func (s *Server) lastActivations(job string, until time.Time) (t0, t1 time.Time, ok bool) {
	n1 := s.o.Schedules.Next(job, until)
	if n1.IsZero() {
		return t0, t1, false
	}
	window := max(10*s.o.Schedules.Next(job, n1).Sub(n1), 25*time.Hour)
	for t := s.o.Schedules.Next(job, until.Add(-window)); !t.IsZero() && !t.After(until); t = s.o.Schedules.Next(job, t) {
		t0, t1 = t1, t
	}
	return t0, t1, !t0.IsZero()
}

func readLast(tx *store.Tx, job string) ([2]*store.Run, error) {
	var out [2]*store.Run
	for i, fn := range []func(*store.Tx, string) (*store.Run, error){schedules.LastSuccess, schedules.LastFailure} {
		r, err := fn(tx, job)
		switch {
		case err == nil:
			out[i] = r
		case !errors.Is(err, store.ErrNotFound):
			return out, err
		}
	}
	return out, nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Status reads a snapshot from the store, as the daemon sees it.
func (s *Server) Status() (*Status, error) {
	var st *Status
	err := s.o.Store.View(func(tx *store.Tx) (err error) {
		if st, err = Snapshot(tx, s.o.Schedules, s.o.Jobs, s.o.KeyAlgorithm, s.o.Now()); err != nil {
			return err
		}
		st.LateCards, err = lifecycle.LateCards(tx, s.o.Late, s.o.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	st.DataDir, st.DaemonStarted = s.o.DataDir, s.o.Started.UTC()
	return st, nil
}

// Handler serves /metrics (Prometheus text format), /healthz (200 "ok",
// followed by "warning: ..." lines for missing input folders, or 503 with
// a plain-text list of what is wrong) and /status (JSON Status).
// It answers only a request whose Host is the configured address,
// localhost or a loopback IP, with or without a port; any other Host gets
// 421 Misdirected Request, so that a page in an operator's browser cannot
// read these pages by pointing a name of its own at 127.0.0.1 (DNS
// rebinding).
func (s *Server) Handler() http.Handler {
	mux := s.mux()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.localHost(r.Host) {
			http.Error(w, "misdirected request: this server answers only a Host of the loopback (localhost, 127.0.0.1, [::1])", http.StatusMisdirectedRequest)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// localHost reports whether a request's Host header names this server on
// the loopback: the configured address itself, or localhost or a loopback
// IP with any port (or none). An empty Host (HTTP/1.0) is refused.
func (s *Server) localHost(host string) bool {
	if host == "" {
		return false
	}
	if s.o.Address != "" && strings.EqualFold(host, s.o.Address) {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		name = host[1 : len(host)-1]
	}
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		problems := s.Health()
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(problems, "\n"))
			return
		}
		fmt.Fprintln(w, "ok")
		for _, l := range s.Warnings() {
			fmt.Fprintln(w, "warning: "+l)
		}
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		st, err := s.Status()
		if err != nil {
			http.Error(w, "store: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "anprsec: /metrics /healthz /status")
	})
	return mux
}

// Listen opens the address (loopback, checked by the config).
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.address %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves Handler on ln until ctx is done, then shuts down (in-flight
// requests get a few seconds). It returns nil after a shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	return httpserve.Serve(ctx, hs, ln)
}
