package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"anprsec/jobs"
	"anprsec/lifecycle"
	"anprsec/ops"
	"anprsec/store"
	"anprsec/workdays"
)

func init() { extraCommands = append(extraCommands, (*app).statusCmd) }

func (a *app) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One screen for the operator: jobs, backlog, last errors",
		Long: `status shows each job's last run (start, duration, outcome, counts), its last
success and its next scheduled run; the backlog (workstation certificates
waiting for the batch, cards requested, in production and at the comune,
mails queued and failed, bundles and card orders not yet published, the key
pool, the CRL); the cards late in production (IN PRODUZIONE beyond
cards.late_working_days working days); the last check of the drop (anprsec drop verifica, and the
daemon's at start and every hour), with its missing input folders as
warnings; and the last errors (the last failed run of each job, the most
recent mails set aside). It only reads the store.

While the daemon runs it holds the store: status then asks the daemon, at
http://<metrics.address>/status. With --json it prints the snapshot as JSON
(the format of /status).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, from, err := a.status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return a.printStatus(cmd.OutOrStdout(), st, from)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the snapshot as JSON")
	return cmd
}

// status reads the snapshot from the store, or from the daemon when the
// daemon holds the store. from says where it came from.
func (a *app) status(ctx context.Context) (*ops.Status, string, error) {
	dataDir := a.cfg.Path(a.cfg.DataDir)
	st, err := a.openStore()
	if errors.Is(err, store.ErrLocked) {
		return a.statusFromDaemon(ctx, dataDir, err)
	}
	if err != nil {
		return nil, "", err
	}
	defer st.Close()
	var names []string
	for _, j := range jobs.All() {
		names = append(names, j.Name)
	}
	names = inNamesOrder(names)
	cal, err := workdays.New(a.cfg.Cards.Holidays)
	if err != nil {
		return nil, "", err
	}
	late := lifecycle.LateRule{Days: a.cfg.Cards.LateWorkingDays, Calendar: cal, Loc: a.loc()}
	var snap *ops.Status
	err = st.View(func(tx *store.Tx) (err error) {
		if snap, err = ops.Snapshot(tx, ops.CronTable(a.cfg.Schedules, a.loc()), names, a.cfg.PKI.KeyAlgorithm, time.Now()); err != nil {
			return err
		}
		snap.LateCards, err = lifecycle.LateCards(tx, late, time.Now())
		return err
	})
	if err != nil {
		return nil, "", err
	}
	snap.DataDir = dataDir
	return snap, "store " + relPath(dataDir) + " (the daemon is not running)", nil
}

// statusFromDaemon asks the running daemon for its snapshot.
func (a *app) statusFromDaemon(ctx context.Context, dataDir string, locked error) (*ops.Status, string, error) {
	addr := a.cfg.Metrics.Address
	if addr == "" {
		return nil, "", fmt.Errorf("%w; metrics.address is empty, so the daemon serves no status page: stop it, or set metrics.address and restart it", locked)
	}
	url := "http://" + addr + "/status"
	st, err := fetchStatus(ctx, url)
	if err != nil {
		return nil, "", fmt.Errorf("%w, and its status page did not answer (%v); try curl http://%s/metrics and http://%s/healthz", locked, err, addr, addr)
	}
	if st.DataDir != "" && filepath.Clean(st.DataDir) != filepath.Clean(dataDir) {
		return nil, "", fmt.Errorf("%w, and the daemon at %s serves another store (%s, not %s)", locked, url, st.DataDir, dataDir)
	}
	return st, "the daemon at " + url + ", up since " + a.when(st.DaemonStarted), nil
}

func fetchStatus(ctx context.Context, url string) (*ops.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s %s", url, resp.Status, oneLine(string(body)))
	}
	var st ops.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("%s: not a status snapshot: %v", url, err)
	}
	return &st, nil
}

// inNamesOrder sorts job names in the order of jobs.Names.
func inNamesOrder(names []string) []string {
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	var out []string
	for _, n := range jobs.Names {
		if have[n] {
			out = append(out, n)
		}
	}
	return out
}

func (a *app) printStatus(w io.Writer, st *ops.Status, from string) error {
	now := st.Now
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		d := now.Sub(t)
		if d < 0 {
			return a.when(t)
		}
		return fmt.Sprintf("%s (%s ago)", a.when(t), roundAgo(d))
	}
	fmt.Fprintf(w, "anprsec status at %s, from %s\n", a.when(now), from)

	fmt.Fprintln(w, "\nJOBS")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tLAST RUN\tDURATION\tOUTCOME\tCOUNTS\tLAST SUCCESS\tNEXT RUN")
	for _, j := range st.Jobs {
		last, dur, outcome, counts, ok, next := "-", "-", "never ran", "", "-", "-"
		if r := j.Last; r != nil {
			last, outcome, counts = a.when(r.Start), r.Outcome, formatCounts(r.Counts, r.Values)
			if !r.End.IsZero() {
				dur = r.End.Sub(r.Start).Round(time.Millisecond).String()
			}
		}
		if r := j.LastOK; r != nil {
			ok = a.when(r.End)
		}
		if !j.Next.IsZero() {
			next = a.when(j.Next)
		} else if j.Schedule == "" {
			next = "not scheduled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, last, dur, outcome, dash(counts), ok, next)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	b := st.Backlog
	fmt.Fprintln(w, "\nBACKLOG")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	mails := fmt.Sprint(b.MailsQueued)
	if b.MailsQueued > 0 {
		mails += ", oldest queued " + ago(b.OldestQueued)
	}
	for _, l := range [][2]string{
		{"workstation certificates requested (RICHIESTA IN LAVORAZIONE)", fmt.Sprint(b.CertRequested)},
		{"revocations in their undo window (REVOCATA IN LAVORAZIONE)", fmt.Sprint(b.CertRevoking)},
		{"cards requested, not yet ordered (RICHIESTA)", fmt.Sprint(b.CardsRequested)},
		{"cards in production (IN PRODUZIONE)", fmt.Sprint(b.CardsInProduction)},
		{"cards at the comune, not yet handed over (CONSEGNATA DALLA PREFETTURA)", fmt.Sprint(b.CardsDelivered)},
		{"mails queued", mails},
		{"mails failed (set aside)", fmt.Sprint(b.MailsFailed)},
		{"certificate bundles not yet published", fmt.Sprint(b.PendingBundles)},
		{"card orders not yet published", fmt.Sprint(b.PendingOrders)},
		{"key pool (" + st.KeyPool.Algorithm + ")", fmt.Sprintf("%d keys", st.KeyPool.Keys)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", l[0], l[1])
	}
	crl := "none signed yet"
	if c := st.CRL; c != nil {
		crl = fmt.Sprintf("n. %d, %d entries, signed %s, next update %s", c.Number, c.Entries, ago(c.ThisUpdate), a.when(c.NextUpdate))
		if c.Published.IsZero() {
			crl += ", NOT YET PUBLISHED"
		}
	}
	fmt.Fprintf(tw, "CRL\t%s\n", crl)
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(st.LateCards) > 0 {
		fmt.Fprintf(w, "\nSMART CARD IN RITARDO (in produzione oltre i giorni lavorativi previsti: %d)\n", len(st.LateCards))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "seriale\tcomune\tordinata il\tgiorni lavorativi\tback-office avvisato")
		for _, c := range st.LateCards {
			notified := "no"
			if !c.Notified.IsZero() {
				notified = a.when(c.Notified)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", c.Serial, c.ISTAT, a.whenDay(c.Ordered), c.WorkingDays, notified)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nDROP")
	switch d := st.Drop; {
	case d == nil:
		fmt.Fprintln(w, "not checked yet: anprsec drop verifica")
	default:
		fmt.Fprintf(w, "%s checked %s: %s\n", d.Drop, ago(d.Checked), dropVerdict(d))
		problems, warnings := ops.DropProblems(d)
		for _, p := range problems {
			fmt.Fprintln(w, "ERROR   "+p)
		}
		for _, p := range warnings {
			fmt.Fprintln(w, "WARNING "+p)
		}
	}

	fmt.Fprintln(w, "\nLAST ERRORS")
	if len(st.FailedRuns) == 0 && len(st.FailedMails) == 0 {
		fmt.Fprintln(w, "none")
	}
	for _, r := range st.FailedRuns {
		fmt.Fprintf(w, "%s  %s run %s %s: %s\n", a.when(r.Start), r.Job, r.ID, r.Outcome, oneLine(r.Error))
	}
	for _, m := range st.FailedMails {
		fmt.Fprintf(w, "%s  mail %s (comune %s) set aside after %d attempts: %s\n", a.when(m.LastTry), m.ID, dash(m.ISTAT), m.Attempts, oneLine(m.LastError))
	}
	if n := st.Backlog.MailsFailed - len(st.FailedMails); n > 0 {
		fmt.Fprintf(w, "... and %d more failed mails\n", n)
	}
	return nil
}

func roundAgo(d time.Duration) time.Duration {
	switch {
	case d < time.Minute:
		return d.Round(time.Second)
	case d < time.Hour:
		return d.Round(time.Second)
	default:
		return d.Round(time.Minute)
	}
}
