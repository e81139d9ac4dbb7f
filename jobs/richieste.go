package jobs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"sync"
	"time"

	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/richieste"
	"anprsec/store"
	"anprsec/trust/cades"
)

// richiesteJob: the folders comuni/<ISTAT>/richieste/ of censused comuni
// that hold files (scanRichieste) -> ingest/richieste (authorization and
// the operations of lifecycle, row by row) -> receipts, history, the files
// of the self-service requests (certificate ZIPs, STATO reports:
// publishSelfService, also those a crash left pending), and the CRL
// republished when a row changed a certificate's state
// (lifecycle.CRLDirtyMeta, also after a crash).
var richiesteJob = Job{
	Name:        "ingest-richieste",
	Description: "applica le richieste da console dei comuni (comuni/<ISTAT>/richieste/): utenze, smart card, postazioni, verificando il profilo dell'operatore; scrive i certificati e i report richiesti",
	Run:         runRichieste,
}

func runRichieste(ctx context.Context, env *Env, run *Run) error {
	istats, listed, errs := scanRichieste(ctx, env, run.Manual)
	run.Add("folders_listed", listed)
	var anchors *cades.Anchors
	if len(istats) > 0 {
		var err error
		if anchors, err = cardAnchors(env); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	prep := &ingest.Inbox{Drop: env.Drop, Store: env.Store, Kind: richieste.Kind, SpoolDir: env.SpoolDir(), Log: run.Log}
	if err := prep.Prepare(ctx); err != nil {
		return errors.Join(append(errs, err)...)
	}
	contents := new(ingest.ContentLocks)
	marks := new(ingest.Marks)
	var mu sync.Mutex // guards run's counts, errs and crl
	crl := false
	foldersAtOnce(ctx, istats, func(istat string) {
		st, dirty, known, err := richiesteOf(ctx, env, run, anchors, contents, marks, istat)
		mu.Lock()
		defer mu.Unlock()
		if known {
			addInboxStats(run, st)
		} else if err == nil {
			run.Add("unknown_folders", 1)
		}
		crl = crl || dirty
		if err != nil {
			errs = append(errs, err)
		}
	})
	if err := marks.Flush(env.Store); err != nil {
		errs = append(errs, fmt.Errorf("ingest-richieste: file spostati ma non ancora registrati come pubblicati (lo fa la prossima esecuzione): %w", err))
	}
	if err := publishSelfService(ctx, env, run); err != nil {
		errs = append(errs, err)
	}
	if crl || crlDirty(env) {
		if err := runCRL(ctx, env, run); err != nil {
			errs = append(errs, fmt.Errorf("ingest-richieste: la CRL non è stata ripubblicata dopo un blocco, sblocco o revoca: %w", err))
		}
	}
	return errors.Join(errs...)
}

// inboxWorkers is how many comuni's richieste/ folders are read at once.
// A file's cost is mostly waiting: for the syncs of its receipt, of its
// move out of the inbox and of its spool copy, while the store serializes
// the commits themselves; comuni are independent, so several overlap their
// waits. Within a comune the files are read one after the other, in name
// order.
const inboxWorkers = 16

// foldersAtOnce calls read for every folder, inboxWorkers at once, until
// ctx is done; read runs on several goroutines.
func foldersAtOnce(ctx context.Context, folders []string, read func(folder string)) {
	inParallel(len(folders), inboxWorkers, func(i int) {
		if ctx.Err() == nil {
			read(folders[i])
		}
	})
}

// richiesteOf reads comune istat's richieste/ folder; known is false (and
// nothing read) for a folder of a comune never censused; crl reports a
// change of card or certificate state that the CRL must show.
func richiesteOf(ctx context.Context, env *Env, run *Run, anchors *cades.Anchors, contents *ingest.ContentLocks, marks *ingest.Marks, istat string) (st ingest.Stats, crl, known bool, err error) {
	if err := env.Store.View(func(tx *store.Tx) error {
		_, err := tx.Comune(istat)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		known = err == nil
		return err
	}); err != nil {
		return st, false, true, err
	}
	if !known {
		run.Log.Warn("ingest-richieste: comuni/ holds a folder of a comune never censused: ignored", "folder", "comuni/"+istat)
		return st, false, false, nil
	}
	in := &ingest.Inbox{
		Drop: env.Drop, Store: env.Store, Kind: richieste.Kind, Actor: "comune " + istat, Loc: env.Loc,
		Dir: path.Join("comuni", istat, "richieste"), Exts: []string{".csv", ".xlsx", richieste.EnvelopeExt},
		Companion: richieste.DetachedExt, WaitCompanion: env.Config.Richieste.RequireSignature, SelfSigned: []string{richieste.EnvelopeExt},
		MaxSize: int64(env.Config.Drop.MaxFileSize), Settle: env.Config.Drop.Settle, MaxAttempts: env.Config.Drop.MaxAttempts, SpoolDir: env.SpoolDir(), Log: run.Log,
		Unpipelined: true, Shared: true, Contents: contents, Marks: marks,
	}
	p := &richieste.Processor{Store: env.Store, Comuni: env.Comuni, CardPrefix: env.Config.Cards.SerialPrefix,
		MaxRows: env.Config.Census.MaxRows, Loc: env.Loc, ISTAT: istat, BlockTenure: env.Config.Cards.BlockTenure, RevokeGrace: env.Config.PKI.RevokeGrace,
		Anchors: anchors, RequireSignature: env.Config.Richieste.RequireSignature, Drop: env.Drop, CompanionOf: in.CompanionOf}
	st, err = in.Run(ctx, p.Process)
	if err != nil {
		err = fmt.Errorf("comune %s: %w", istat, err)
	}
	return st, p.CRL, true, err
}

// scanWorkers is how many comuni/<ISTAT>/richieste folders are listed at
// once: over SFTP each listing is a few round trips, and 7,904 of them one
// after the other would fill the one-minute schedule on a slow link.
const scanWorkers = 16

// richiesteScanMeta is the store's record of the bounded scan
// (richiesteScan).
const richiesteScanMeta = "richieste-scan"

// richiesteScan is what the bounded scan keeps between runs (a store
// without it starts with every comune quiet and the turn at the start).
type richiesteScan struct {
	// Cursor is the last quiet comune listed in turn: the next run goes
	// on after it, in ISTAT order, round the ring.
	Cursor string `json:"cursor,omitempty"`
	// Seen is when a file was last seen in a comune's richieste/ folder
	// (entries older than richieste.hot_window are dropped).
	Seen map[string]time.Time `json:"seen,omitempty"`
}

// note records that the comuni of files held a file at now, and forgets
// the sightings older than window.
func (s *richiesteScan) note(files map[string]bool, now time.Time, window time.Duration) {
	if s.Seen == nil {
		s.Seen = map[string]time.Time{}
	}
	for istat := range files {
		s.Seen[istat] = now
	}
	for istat, seen := range s.Seen {
		if now.Sub(seen) >= window {
			delete(s.Seen, istat)
		}
	}
}

// scanRichieste lists comuni/ and then, scanWorkers at a time, the
// richieste/ folders of the comuni pickRichieste chooses (a missing one
// lists empty: one listing per comune); full lists every comune's
// (docs/rules.md#console-requests). It returns, in ISTAT order, the comuni
// whose folder holds something that is not a folder (a request, or a file
// to refuse), and those with a file committed whose publication a stop
// interrupted (Inbox.Run finishes it even when the folder is empty), with
// the number of richieste/ folders listed.
func scanRichieste(ctx context.Context, env *Env, full bool) (istats []string, listed int, errs []error) {
	entries, err := env.Drop.List(ctx, "comuni")
	if err != nil {
		return nil, 0, []error{fmt.Errorf("lettura della cartella comuni/: %w", err)}
	}
	want := map[string]bool{}
	var state richiesteScan
	var now time.Time
	if err := env.Store.View(func(tx *store.Tx) error {
		now = tx.Now
		if err := tx.Meta(richiesteScanMeta, &state); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rs, err := tx.FilesOfKind(store.FileCommitted, richieste.Kind)
		for _, r := range rs {
			want[path.Base(path.Dir(path.Dir(r.Path)))] = true // comuni/<ISTAT>/richieste/<file>
		}
		return err
	}); err != nil {
		return nil, 0, []error{err}
	}
	var dirs []drop.Entry
	for _, e := range entries {
		if e.Dir && !ingest.Skipped(e.Name) {
			dirs = append(dirs, e)
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Name < dirs[j].Name })
	window := env.Config.Richieste.HotWindow
	hot := func(e drop.Entry) bool {
		seen, ok := state.Seen[e.Name]
		return want[e.Name] || ok && now.Sub(seen) < window || now.Sub(e.ModTime) < window
	}
	perRun := env.Config.Richieste.ScanPerRun
	if full {
		perRun = 0
	}
	list, cursor := pickRichieste(dirs, hot, state.Cursor, perRun)
	files, errs := listRichieste(ctx, env, list)
	state.note(files, now, window)
	for istat := range files {
		want[istat] = true
	}
	if ctx.Err() == nil {
		state.Cursor = cursor
	}
	if err := env.Store.Update(func(tx *store.Tx) error { return tx.SetMeta(richiesteScanMeta, &state) }); err != nil {
		errs = append(errs, err)
	}
	for istat := range want {
		istats = append(istats, istat)
	}
	sort.Strings(istats)
	return istats, len(list), errs
}

// pickRichieste chooses the comuni whose richieste/ folder a run lists,
// among the comune folders dirs (in ISTAT order): every hot one, and
// perRun of the others in turn, going on after cursor round the ring; it
// returns them with the cursor for the next run. So every comune is listed
// at least once every ceil(len(dirs)/perRun) runs: each run passes perRun
// places of the ring, or all of it, and a hot comune it skips is listed
// anyway. perRun 0 lists every comune.
func pickRichieste(dirs []drop.Entry, hot func(drop.Entry) bool, cursor string, perRun int) (list []string, next string) {
	if perRun <= 0 || perRun >= len(dirs) {
		for _, d := range dirs {
			list = append(list, d.Name)
		}
		return list, cursor
	}
	for _, d := range dirs {
		if hot(d) {
			list = append(list, d.Name)
		}
	}
	next = cursor
	start := sort.Search(len(dirs), func(i int) bool { return dirs[i].Name > cursor })
	for i, taken := 0, 0; i < len(dirs) && taken < perRun; i++ {
		d := dirs[(start+i)%len(dirs)]
		if hot(d) {
			continue
		}
		list = append(list, d.Name)
		next = d.Name
		taken++
	}
	sort.Strings(list)
	return list, next
}

// listRichieste lists comuni/<ISTAT>/richieste/ of each comune in istats,
// scanWorkers at a time, and returns those holding something that is not a
// folder.
func listRichieste(ctx context.Context, env *Env, istats []string) (files map[string]bool, errs []error) {
	type result struct {
		istat string
		files bool
		err   error
	}
	work := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(scanWorkers, len(istats)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for istat := range work {
				dir := path.Join("comuni", istat, "richieste")
				sub, err := env.Drop.List(ctx, dir)
				if err != nil {
					// A file named richieste is no folder of requests:
					// nothing to read there, not a failed run.
					if e, serr := env.Drop.Stat(ctx, dir); serr == nil && !e.Dir {
						err = nil
					}
				}
				r := result{istat: istat, err: err}
				for _, s := range sub {
					r.files = r.files || !s.Dir
				}
				results <- r
			}
		}()
	}
	go func() {
		defer close(work)
		for _, d := range istats {
			select {
			case work <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	files = map[string]bool{}
	for r := range results {
		switch {
		case r.err != nil:
			errs = append(errs, fmt.Errorf("lettura della cartella comuni/%s/richieste: %w", r.istat, r.err))
		case r.files:
			files[r.istat] = true
		}
	}
	return files, errs
}

// cardAnchors loads the card CA (trust.card_ca) and its CRL
// (trust.card_crl) that console requests are signed under. Without signatures
// required a missing anchor is no error (signed files are then refused as
// untrusted); with them the job fails, naming the file, and the requests
// wait in their folders.
func cardAnchors(env *Env) (*cades.Anchors, error) {
	path := env.Config.Path(env.Config.Trust.CardCA)
	if path == "" {
		if env.Config.Richieste.RequireSignature {
			return nil, errors.New("ingest-richieste: trust.card_ca è vuoto ma richieste.require_signature è attivo: nessuna richiesta si può verificare")
		}
		return nil, nil
	}
	a, err := cades.LoadAnchors(path)
	if err != nil {
		if !env.Config.Richieste.RequireSignature {
			return nil, nil
		}
		return nil, fmt.Errorf("ingest-richieste: la CA delle smart card (trust.card_ca) non si legge (`anprsec init` ne crea una di sviluppo): %w", err)
	}
	if crl := env.Config.Path(env.Config.Trust.CardCRL); crl != "" {
		if err := a.AddCRLFile(crl); err != nil {
			return nil, fmt.Errorf("ingest-richieste: trust.card_crl: %w", err)
		}
	}
	return a, nil
}
