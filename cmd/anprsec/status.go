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
		Short: "Una schermata per l'operatore: job, lavoro arretrato, ultimi errori",
		Long: `status mostra per ogni job l'ultima esecuzione (inizio, durata, esito,
conteggi), l'ultima riuscita e la prossima pianificata; il lavoro arretrato
(certificati di postazione in attesa del batch, smart card richieste, in
produzione e al comune, mail in coda e fallite, pacchetti e ordini di smart
card non ancora pubblicati, la riserva di chiavi, la CRL); le smart card in ritardo di produzione (IN
PRODUZIONE da oltre cards.late_working_days giorni lavorativi); l'ultima verifica
del drop (anprsec drop verifica, e quella del servizio all'avvio e ogni ora),
con le cartelle di ingresso mancanti come avvisi; e gli ultimi errori
(l'ultima esecuzione fallita di ogni job, le mail messe da parte più
recenti). Legge soltanto l'archivio.

Mentre il servizio è attivo tiene l'archivio: status allora chiede il quadro
al servizio, su http://<metrics.address>/status. Con --json stampa il quadro
in JSON (il formato di /status).`,
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "stampa il quadro in JSON")
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
	return snap, "dall'archivio " + relPath(dataDir) + " (il servizio non è attivo)", nil
}

// statusFromDaemon asks the running daemon for its snapshot.
func (a *app) statusFromDaemon(ctx context.Context, dataDir string, locked error) (*ops.Status, string, error) {
	addr := a.cfg.Metrics.Address
	if addr == "" {
		return nil, "", fmt.Errorf("%w; metrics.address è vuoto, quindi il servizio non espone la pagina di stato: fermarlo, oppure impostare metrics.address e riavviarlo", locked)
	}
	url := "http://" + addr + "/status"
	st, err := fetchStatus(ctx, url)
	if err != nil {
		return nil, "", fmt.Errorf("%w, e la sua pagina di stato non ha risposto (%v); provare curl http://%s/metrics e http://%s/healthz", locked, err, addr, addr)
	}
	if st.DataDir != "" && filepath.Clean(st.DataDir) != filepath.Clean(dataDir) {
		return nil, "", fmt.Errorf("%w, e il servizio su %s usa un altro archivio (%s, non %s)", locked, url, st.DataDir, dataDir)
	}
	return st, "dal servizio su " + url + ", attivo dal " + a.when(st.DaemonStarted), nil
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
		return nil, fmt.Errorf("%s: non è un quadro di stato: %v", url, err)
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
		return fmt.Sprintf("%s (%s fa)", a.when(t), roundAgo(d))
	}
	fmt.Fprintf(w, "stato di anprsec al %s, %s\n", a.when(now), from)

	fmt.Fprintln(w, "\nESECUZIONI DEI JOB")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tULTIMA ESECUZIONE\tDURATA\tESITO\tCONTEGGI\tULTIMA RIUSCITA\tPROSSIMA")
	for _, j := range st.Jobs {
		last, dur, outcome, counts, ok, next := "-", "-", "mai eseguito", "", "-", "-"
		if r := j.Last; r != nil {
			last, outcome, counts = a.when(r.Start), esito(r.Outcome), formatCounts(r.Counts, r.Values)
			if !r.End.IsZero() {
				dur = durata(r.End.Sub(r.Start))
			}
		}
		if r := j.LastOK; r != nil {
			ok = a.when(r.End)
		}
		if !j.Next.IsZero() {
			next = a.when(j.Next)
		} else if j.Schedule == "" {
			next = "non pianificato"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, last, dur, outcome, dash(counts), ok, next)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	b := st.Backlog
	fmt.Fprintln(w, "\nARRETRATO")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	mails := fmt.Sprint(b.MailsQueued)
	if b.MailsQueued > 0 {
		mails += ", la più vecchia in coda dal " + ago(b.OldestQueued)
	}
	for _, l := range [][2]string{
		{"certificati di postazione richiesti (RICHIESTA IN LAVORAZIONE)", fmt.Sprint(b.CertRequested)},
		{"revoche ancora annullabili (REVOCATA IN LAVORAZIONE)", fmt.Sprint(b.CertRevoking)},
		{"smart card richieste, non ancora ordinate (RICHIESTA)", fmt.Sprint(b.CardsRequested)},
		{"smart card in produzione (IN PRODUZIONE)", fmt.Sprint(b.CardsInProduction)},
		{"smart card al comune, non ancora consegnate al titolare (CONSEGNATA DALLA PREFETTURA)", fmt.Sprint(b.CardsDelivered)},
		{"mail in coda", mails},
		{"mail fallite (messe da parte)", fmt.Sprint(b.MailsFailed)},
		{"pacchetti di certificati non ancora pubblicati", fmt.Sprint(b.PendingBundles)},
		{"ordini di smart card non ancora pubblicati", fmt.Sprint(b.PendingOrders)},
		{"riserva di chiavi (" + st.KeyPool.Algorithm + ")", fmt.Sprintf("%d chiavi", st.KeyPool.Keys)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", l[0], l[1])
	}
	crl := "nessuna ancora firmata"
	if c := st.CRL; c != nil {
		crl = fmt.Sprintf("n. %d, %d voci, firmata il %s, prossimo aggiornamento %s", c.Number, c.Entries, ago(c.ThisUpdate), a.when(c.NextUpdate))
		if c.Published.IsZero() {
			crl += ", NON ANCORA PUBBLICATA"
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
		fmt.Fprintln(w, "non ancora verificato: anprsec drop verifica")
	default:
		fmt.Fprintf(w, "%s verificato il %s: %s\n", d.Drop, ago(d.Checked), dropVerdict(d))
		problems, warnings := ops.DropProblems(d)
		for _, p := range problems {
			fmt.Fprintln(w, "ERRORE  "+p)
		}
		for _, p := range warnings {
			fmt.Fprintln(w, "AVVISO  "+p)
		}
	}

	fmt.Fprintln(w, "\nULTIMI ERRORI")
	if len(st.FailedRuns) == 0 && len(st.FailedMails) == 0 {
		fmt.Fprintln(w, "nessuno")
	}
	for _, r := range st.FailedRuns {
		fmt.Fprintf(w, "%s  %s esecuzione %s %s: %s\n", a.when(r.Start), r.Job, r.ID, esito(r.Outcome), oneLine(r.Error))
	}
	for _, m := range st.FailedMails {
		fmt.Fprintf(w, "%s  mail %s (comune %s) messa da parte dopo %d tentativi: %s\n", a.when(m.LastTry), m.ID, dash(m.ISTAT), m.Attempts, oneLine(m.LastError))
	}
	if n := st.Backlog.MailsFailed - len(st.FailedMails); n > 0 {
		fmt.Fprintf(w, "... e altre %d mail fallite\n", n)
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
