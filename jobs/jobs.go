// Package jobs holds the batch jobs of anprsec, one file each: what a job
// reads, what it changes and what it emits. Scheduling, overlap and run
// records are the schedules package's concern.
package jobs

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"anprsec/config"
	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/istat"
	"anprsec/mail"
	"anprsec/store"
)

// Env is what jobs work with.
type Env struct {
	Config *config.Config
	Store  *store.Store
	Drop   drop.Drop
	Comuni *istat.Table
	Log    *slog.Logger
	Loc    *time.Location // the config's time zone
	// Sealer seals secrets inside records (keys.seal); nil when the key
	// file is missing, and then the jobs that need it refuse to run.
	Sealer *store.Sealer
	// Mailer, when set, replaces the sender of the configuration (tests).
	Mailer mail.Sender
}

// SpoolDir is the local folder for downloaded copies of input files.
func (e *Env) SpoolDir() string {
	return filepath.Join(e.Config.Path(e.Config.DataDir), "..", "spool")
}

// Run is the context of one run of a job.
type Run struct {
	ID  string
	Log *slog.Logger
	// Counts are events of the run (rows accepted, files, certificates
	// issued): /metrics adds them up across runs.
	Counts map[string]int
	// Values are states the run saw or left (the CRL's number and
	// entries): recorded with the run, never added up.
	Values map[string]int
	// Manual is set for a run asked by hand (`anprsec jobs run`), not
	// by the schedule.
	Manual bool
}

// Add adds n to a named count of the run (rows accepted, files, ...).
func (r *Run) Add(name string, n int) {
	if n != 0 {
		if r.Counts == nil {
			r.Counts = map[string]int{}
		}
		r.Counts[name] += n
	}
}

// Set records a named value of the run (a number, a size), which is not
// a count: the last Set wins.
func (r *Run) Set(name string, n int) {
	if r.Values == nil {
		r.Values = map[string]int{}
	}
	r.Values[name] = n
}

// Job is one batch job.
type Job struct {
	Name        string
	Description string
	Run         func(ctx context.Context, env *Env, run *Run) error
}

// Names lists every job, in the order of docs/architecture.md.
var Names = []string{
	"ingest-censimento", "ingest-consegne", "ingest-richieste", "certificati", "crl",
	"ordini-sc", "invio-pin", "export-audit", "scadenze", "registro", "pulizia", "pulizia-persone",
	"avviso-sicurezza", "avvisi-promemoria",
	"pool-chiavi", // the key pool of the certificati job
}

// All returns the implemented jobs.
func All() []Job {
	return []Job{
		censimentoJob,
		consegneJob,
		richiesteJob,
		certificatiJob,
		crlJob,
		poolJob,
		scadenzeJob,
		ordiniJob,
		invioJob,
		exportJob,
		registroJob,
		avvisoJob,
		promemoriaJob,
		puliziaJob,
		puliziaPersoneJob,
	}
}

// addInboxStats adds a pass over an input folder to the run's counts:
// files (every file handled, each with its receipt: read, or refused
// unread), files_refused (of them, those refused as a whole, duplicates
// included), duplicates, rows_ok and rows_refused.
func addInboxStats(run *Run, st ingest.Stats) {
	run.Add("files", st.Files+st.Unread)
	run.Add("files_refused", st.Refused)
	run.Add("duplicates", st.Duplicates)
	run.Add("rows_ok", st.RowsOK)
	run.Add("rows_refused", st.RowsRefused)
}
