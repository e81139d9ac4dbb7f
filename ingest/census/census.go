// Package census ingests census workbooks (censimento): sheet Utenti (one
// row per utenza) and sheet Postazioni (declared workstations per comune).
// A workbook is streamed, validated row by row, checked comune by comune
// (exactly one ASC, at least one ALS and one ALP), then committed in
// resumable chunks with a history entry for every change.
package census

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/ingest"
	"anprsec/ingest/esito"
	"anprsec/ingest/xlsx"
	"anprsec/istat"
	"anprsec/lifecycle"
	"anprsec/store"
)

// Sheet names.
const (
	SheetUsers        = "Utenti"
	SheetWorkstations = "Postazioni"
)

// Actor is the dropping party recorded in the history.
const Actor = "censimento"

// Ingester applies census workbooks to the store.
type Ingester struct {
	Store      *store.Store
	Comuni     *istat.Table
	ChunkRows  int    // rows per transaction
	MaxRows    int    // a sheet with more data rows is refused whole
	CardPrefix string // smart-card serial prefix

	known   map[string]bool
	wsAdded map[int]wsTally // by row of the Postazioni sheet: see applyWorkstations
}

// item is one data row of either sheet with its verdict.
type item struct {
	sheet string
	row   int
	user  packedUser // s is "" for a refused row or a Postazioni row
	ws    *wsRow
	err   *rowError
}

type wsRow struct {
	ISTAT  string
	Count  int
	Server bool
}

// Process implements ingest.Processor.
func (g *Ingester) Process(ctx context.Context, f *ingest.File) (ingest.Result, error) {
	t0 := time.Now()
	wb, err := openWorkbook(f.Local)
	if err != nil {
		code, msg := workbookError(f.Local, err)
		return ingest.Result{Refused: true, Code: code, Message: msg}, nil
	}
	defer wb.Close()
	usersSheet, ok := findSheet(wb, SheetUsers)
	if !ok {
		return ingest.Result{Refused: true, Code: "FOGLIO_MANCANTE", Message: fmt.Sprintf("manca il foglio %q (fogli presenti: %s)", SheetUsers, strings.Join(wb.SheetNames(), ", "))}, nil
	}
	v := &Validator{Comuni: g.Comuni}
	if err := g.Store.View(func(tx *store.Tx) error {
		ex, err := tx.CFExceptions()
		for cf, e := range ex {
			if v.Exceptions == nil {
				v.Exceptions = map[string]string{}
			}
			v.Exceptions[cf] = e.Motivo
		}
		return err
	}); err != nil {
		return ingest.Result{}, err
	}
	var items []item
	seen := map[string]int{} // istat/cf -> row
	err = readSheet(wb, usersSheet, UserColumns, nil, g.MaxRows, func(h *header, cells []string, row int) {
		u, rerr := v.User(h, cells, row)
		if rerr == nil {
			k := u.ISTAT + "/" + u.CF
			if first, dup := seen[k]; dup {
				rerr = refuse("CF_DUPLICATO", "%s: %s compare già alla riga %d per il comune %s", h.where(ColCF), u.CF, first, u.ISTAT)
				u = nil
			} else {
				seen[k] = row
			}
		}
		it := item{sheet: usersSheet, row: row, err: rerr}
		if u != nil {
			it.user = pack(u)
		}
		items = append(items, it)
	})
	if err != nil {
		return refusedSheet(usersSheet, err), nil
	}
	if wsSheet, ok := findSheet(wb, SheetWorkstations); ok {
		seenWS := map[string]int{}
		err = readSheet(wb, wsSheet, WorkstationColumns, nil, g.MaxRows, func(h *header, cells []string, row int) {
			w, rerr := v.workstations(h, cells)
			if rerr == nil {
				if first, dup := seenWS[w.ISTAT]; dup {
					rerr = refuse("ISTAT_DUPLICATO", "%s: il comune %s compare già alla riga %d", h.where(ColISTAT), w.ISTAT, first)
					w = nil
				} else {
					seenWS[w.ISTAT] = row
				}
			}
			items = append(items, item{sheet: wsSheet, row: row, ws: w, err: rerr})
		})
		if err != nil {
			return refusedSheet(wsSheet, err), nil
		}
	}
	if err := ctx.Err(); err != nil {
		return ingest.Result{}, err
	}
	tRead := time.Now()
	if err := g.checkComuni(items); err != nil {
		return ingest.Result{}, err
	}

	// Comuni known to exist: a cache valid for this file only (a failed
	// chunk aborts the whole pass).
	g.known = map[string]bool{}
	// The records a row reads (person, pseudonym, utenza, card, comune,
	// postazione) are mostly new at the first census: their misses are
	// answered without asking Badger. A row writes at most four keys there
	// (person, pseudonym, utenza, card), a Postazioni row its comune and
	// about as many postazioni as declared.
	f.TrackAbsent(6*len(items), "p/", "pv/", "u/", "s/", "c/", "w/")
	chunk := g.ChunkRows
	if chunk <= 0 {
		chunk = 1000
	}
	g.wsAdded = map[int]wsTally{}
	for k, u := range planChunks(items, chunk) {
		if err := ctx.Err(); err != nil {
			return ingest.Result{}, err
		}
		part := items[u.lo:u.hi]
		var err error
		if u.upTo > 0 {
			it := &part[0]
			err = f.Commit(k, func(tx *store.Tx, _ *bytes.Buffer) (ok, ko int, err error) {
				return 0, 0, g.requestWorkstations(tx, f.Source(Actor, it.sheet, it.row), it, u.upTo)
			})
		} else {
			err = f.CommitLines(k, len(part), func(tx *store.Tx, i int) (esito.Line, error) {
				return g.apply(tx, f, &part[i])
			})
		}
		if err != nil {
			return ingest.Result{}, err
		}
		if u.upTo == 0 {
			// The chunk's rows are in the store (or in flight, and a
			// failed commit fails the file): their memory goes back to
			// the collector, whose headroom under memory_limit the
			// commits that follow use.
			clear(part)
		}
	}
	// ANPRSEC_TRACE=1 prints the time of each phase (used by benchmarks and
	// the kill -9 campaign to aim their kills).
	if os.Getenv("ANPRSEC_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "census: read+validate %v, commit %v\n", tRead.Sub(t0), time.Since(tRead))
	}
	return ingest.Result{}, nil
}

func refusedSheet(sheet string, err error) ingest.Result {
	return ingest.Result{Refused: true, Code: "FOGLIO_NON_VALIDO", Message: fmt.Sprintf("foglio %q: %v", sheet, err)}
}

// readSheet streams a sheet: the first non-blank row is the header, then fn
// is called for every non-blank data row with its spreadsheet row number.
// Inflating and scanning the sheet's XML runs in its own goroutine while
// fn (validation) runs on the caller's, so both cores work.
func readSheet(wb *xlsx.Workbook, sheet string, required, optional []string, maxRows int, fn func(h *header, cells []string, row int)) error {
	rows, err := wb.Rows(sheet)
	if err != nil {
		return err
	}
	type rawRow struct {
		n     int
		cells []string
	}
	ch := make(chan []rawRow, 8)
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(ch)
		defer rows.Close()
		send := func(b []rawRow) bool {
			select {
			case ch <- b:
				return true
			case <-done:
				return false
			}
		}
		batch := make([]rawRow, 0, 256)
		last := 0
		for rows.Next() {
			last = rows.Row()
			cells := rows.Columns()
			if extra, _ := rows.Extra(); blank(cells) && extra == 0 { // Extra: non-blank only
				continue
			}
			if rows.MaxColumns == 0 {
				// The first non-blank row is the header: values right of
				// it are not read (a cell in column XFD would make every
				// row a slice of 16,384 strings), but a row holding only
				// such values still counts as a row, not a blank one.
				rows.MaxColumns = max(len(cells), 1)
			}
			batch = append(batch, rawRow{last, cells})
			if len(batch) == cap(batch) {
				if !send(batch) {
					return
				}
				batch = make([]rawRow, 0, 256)
			}
		}
		if err := rows.Err(); err != nil {
			readErr = fmt.Errorf("dopo la riga %d: %v", last, err)
		} else if len(batch) > 0 {
			send(batch)
		}
	}()
	defer func() {
		close(done)
		for range ch { // wait for the reader to stop
		}
	}()

	var h *header
	data := 0
	for batch := range ch {
		for _, r := range batch {
			if h == nil {
				if h, err = parseHeader(r.cells, required, optional); err != nil {
					return fmt.Errorf("riga %d: %v", r.n, err)
				}
				continue
			}
			if data++; data > maxRows {
				return fmt.Errorf("più di %d righe di dati: dividere il file", maxRows)
			}
			fn(h, r.cells, r.n)
		}
	}
	if readErr != nil {
		return readErr
	}
	if h == nil {
		return errors.New("foglio vuoto: manca la riga di intestazione")
	}
	return nil
}

func (v *Validator) workstations(h *header, cells []string) (*wsRow, *rowError) {
	if e := tooLong(h, cells); e != nil {
		return nil, e
	}
	raw := h.cell(cells, ColISTAT)
	code, err := istat.NormalizeISTAT(raw)
	if err != nil {
		return nil, refuse("ISTAT", "%s: %q non è un codice ISTAT (6 cifre)", h.where(ColISTAT), raw)
	}
	if _, ok := v.Comuni.Lookup(code); !ok {
		return nil, v.unknownComune(h.where(ColISTAT), code)
	}
	ns := h.cell(cells, ColNumPostazioni)
	f, err := strconv.ParseFloat(ns, 64)
	if err != nil || f < 0 || f != float64(int(f)) || f > 9998 {
		return nil, refuse("NUMERO_POSTAZIONI", "%s: %q: atteso un numero intero da 0 a 9998", h.where(ColNumPostazioni), ns)
	}
	sv := h.cell(cells, ColServer)
	server, ok := parseYesNo(sv)
	if !ok {
		return nil, refuse("CERTIFICATO_SERVER", "%s: %q: atteso SI o NO", h.where(ColServer), sv)
	}
	return &wsRow{ISTAT: code, Count: int(f), Server: server}, nil
}

// checkComuni applies the comune rules: together with what the store holds,
// each comune of the workbook must have exactly one ASC, at least one ALS
// and at least one ALP. Otherwise all its rows are refused.
func (g *Ingester) checkComuni(items []item) error {
	byComune := map[string]map[string][]domain.Profile{} // istat -> cf -> profiles (file rows)
	for _, it := range items {
		if it.user.s != "" && it.err == nil {
			u := it.user.unpack()
			m := byComune[u.ISTAT]
			if m == nil {
				m = map[string][]domain.Profile{}
				byComune[u.ISTAT] = m
			}
			m[u.CF] = u.Profiles
		}
	}
	known := map[string]bool{} // comuni in the store or accepted here
	reasons := map[string]string{}
	err := g.Store.View(func(tx *store.Tx) error {
		for code, fileRows := range byComune {
			all := map[string][]domain.Profile{}
			stored := map[string]bool{}
			if err := tx.UtenzeOfComune(code, func(u *domain.Utenza) error {
				if u.State != domain.UtenzaCancellata {
					all[u.CF] = u.Profiles
					stored[u.CF] = true
				}
				return nil
			}); err != nil {
				return err
			}
			for cf, p := range fileRows {
				all[cf] = p
				delete(stored, cf)
			}
			if r := lifecycle.CensusBreaches(all, stored); r != "" {
				c, _ := g.Comuni.Lookup(code)
				reasons[code] = fmt.Sprintf("comune %s (%s): %s; tutte le righe del comune sono scartate", code, c.Name, r)
			} else {
				known[code] = true
			}
		}
		return tx.Comuni(func(c *domain.Comune) error { known[c.ISTAT] = true; return nil })
	})
	if err != nil {
		return err
	}
	for i := range items {
		it := &items[i]
		if it.err != nil {
			continue
		}
		if it.user.s != "" {
			if r, bad := reasons[it.user.istat()]; bad {
				it.err = refuse("COMUNE_PROFILI", "%s", r)
			}
		} else if it.ws != nil && !known[it.ws.ISTAT] {
			it.err = refuse("COMUNE_NON_CENSITO", "comune %s: nessun utente censito (né in questo file né in precedenza): postazioni non registrate", it.ws.ISTAT)
		}
	}
	return nil
}

// workstationsPerChunk bounds the workstations one transaction requests.
// A Postazioni row may declare up to 9,998 (every code of a comune), some
// 400 bytes each with their history entries: more than a transaction holds
// (docs/architecture.md, "Memory"). Its workstations beyond this bound are
// requested in chunks of their own before the row's.
const workstationsPerChunk = 1000

// A chunk is the items lo to hi (exclusive), committed in one transaction
// with their receipt lines; or, when upTo > 0, the part of item lo's
// workstations numbered up to upTo, with no receipt line (the row's line
// comes with its own chunk, which requests the rest).
type chunk struct {
	lo, hi, upTo int
}

// planChunks divides items into chunks of at most rows rows, and gives
// each Postazioni row that declares more than workstationsPerChunk
// workstations its own chunks. The plan depends on the file only, so a
// run resumed after a crash skips the same chunks the crashed run
// committed.
func planChunks(items []item, rows int) []chunk {
	var out []chunk
	lo := 0
	for i := range items {
		w := items[i].ws
		if items[i].err != nil || w == nil || w.Count <= workstationsPerChunk {
			if i+1-lo == rows {
				out = append(out, chunk{lo: lo, hi: i + 1})
				lo = i + 1
			}
			continue
		}
		if lo < i {
			out = append(out, chunk{lo: lo, hi: i})
		}
		for upTo := workstationsPerChunk; upTo < w.Count; upTo += workstationsPerChunk {
			out = append(out, chunk{lo: i, hi: i + 1, upTo: upTo})
		}
		out = append(out, chunk{lo: i, hi: i + 1})
		lo = i + 1
	}
	if lo < len(items) {
		out = append(out, chunk{lo: lo, hi: len(items)})
	}
	return out
}

// wsTally is what the chunks of a Postazioni row before its own requested
// in this run: how many workstations, from which number.
type wsTally struct{ added, first int }

// requestWorkstations requests the workstations of it's comune numbered up
// to upTo that it declares and the comune lacks, and records the last
// number assigned on the comune, in tx: the chunk of a row that declares
// more than one transaction holds (planChunks).
func (g *Ingester) requestWorkstations(tx *store.Tx, src store.Source, it *item, upTo int) error {
	if it.err != nil || it.ws == nil {
		return nil
	}
	c, err := g.comuneRecord(tx, src, it.ws.ISTAT)
	if err != nil {
		return err
	}
	first := c.NextPC + 1
	added, err := g.addWorkstations(tx, src, c, min(upTo, it.ws.Count))
	if err != nil || added == 0 {
		return err
	}
	t := g.wsAdded[it.row]
	if t.added == 0 {
		t.first = first
	}
	t.added += added
	g.wsAdded[it.row] = t
	c.Updated = tx.Now
	return tx.PutComune(c)
}

// addWorkstations requests comune c's workstations from c.NextPC+1 to
// upTo, in tx, and advances c.NextPC (the caller stores c).
func (g *Ingester) addWorkstations(tx *store.Tx, src store.Source, c *domain.Comune, upTo int) (added int, err error) {
	for n := c.NextPC + 1; n <= upTo; n++ {
		p := &domain.Postazione{Code: domain.WorkstationCode(c.ISTAT, n), ISTAT: c.ISTAT, State: domain.CertRichiesta, Created: tx.Now, Updated: tx.Now}
		if err := tx.PutPostazione(p); err != nil {
			return added, err
		}
		if err := tx.Record(src, "postazione.richiesta", "postazione", p.Code, "certificato richiesto"); err != nil {
			return added, err
		}
		added++
	}
	c.NextPC = max(c.NextPC, upTo)
	return added, nil
}

// apply commits one item in tx and returns its receipt line.
func (g *Ingester) apply(tx *store.Tx, f *ingest.File, it *item) (esito.Line, error) {
	line := esito.Line{Sheet: it.sheet, Row: it.row}
	if it.err != nil {
		line.Outcome, line.Code, line.Message = esito.Scartato, it.err.Code, it.err.Message
		return line, nil
	}
	src := f.Source(Actor, it.sheet, it.row)
	var err error
	if it.user.s != "" {
		line.Code, line.Message, err = g.applyUser(tx, src, it.user.unpack())
	} else {
		line.Code, line.Message, err = g.applyWorkstations(tx, src, it.ws, g.wsAdded[it.row])
	}
	line.Outcome = esito.OK
	return line, err
}

func (g *Ingester) comune(tx *store.Tx, src store.Source, code string) (*domain.Comune, error) {
	if g.known[code] {
		return nil, nil
	}
	c, err := g.comuneRecord(tx, src, code)
	if err == nil {
		g.known[code] = true
	}
	return c, err
}

func (g *Ingester) comuneRecord(tx *store.Tx, src store.Source, code string) (*domain.Comune, error) {
	c, err := tx.Comune(code)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	info, _ := g.Comuni.Lookup(code)
	c = &domain.Comune{ISTAT: code, Name: info.Name, Province: info.Province, Created: tx.Now, Updated: tx.Now}
	if err := tx.PutComune(c); err != nil {
		return nil, err
	}
	return c, tx.Record(src, "comune.crea", "comune", code, info.Name)
}

// applyUser commits one row of the Utenti sheet: the comune, the person, the
// utenza, then the smart card it asks for. The receipt note tells the
// utenza's change first, then a change of name, then the card requested.
func (g *Ingester) applyUser(tx *store.Tx, src store.Source, r *UserRow) (code, msg string, err error) {
	if _, err := g.comune(tx, src, r.ISTAT); err != nil {
		return "", "", err
	}
	p, personDirty, renamed, err := updatePerson(tx, r)
	if err != nil {
		return "", "", err
	}
	code, note, err := applyUtenza(tx, src, r)
	if err != nil {
		return "", "", err
	}
	notes := []string{note}
	if renamed != "" {
		notes = append(notes, renamed)
	}
	if r.Exception != "" {
		notes = append(notes, "codice fiscale ammesso per eccezione (cognome, nome e luogo di nascita non verificati): "+r.Exception)
	}
	if r.Card {
		serial, err := lifecycle.RequestCard(tx, src, p, r.ISTAT, g.CardPrefix)
		if err != nil {
			return "", "", err
		}
		if serial != "" {
			notes = append(notes, "smart card richiesta ("+serial+")")
			personDirty = true
		}
	}
	if personDirty {
		if err := tx.PutPerson(p); err != nil {
			return "", "", err
		}
	}
	return code, strings.Join(notes, "; "), nil
}

// updatePerson returns the person of the row's codice fiscale (a new one if
// unknown) brought up to date with the row's name, sex and birth date; a
// row without a birth date keeps the one known. dirty reports a change, and
// renamed notes a change of the name of a person already known. The person
// is not stored here.
func updatePerson(tx *store.Tx, r *UserRow) (p *domain.Person, dirty bool, renamed string, err error) {
	p, err = tx.Person(r.CF)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p = &domain.Person{CF: r.CF}
	case err != nil:
		return nil, false, "", err
	}
	birth := r.BirthDate
	if birth == "" {
		birth = p.BirthDate
	}
	if p.Surname == r.Surname && p.Name == r.Name && p.Sex == r.Sex && p.BirthDate == birth {
		return p, false, "", nil
	}
	if p.Surname != "" && (p.Surname != r.Surname || p.Name != r.Name) {
		renamed = fmt.Sprintf("anagrafica: %s %s → %s %s", p.Surname, p.Name, r.Surname, r.Name)
	}
	p.Surname, p.Name, p.Sex, p.BirthDate, p.Updated = r.Surname, r.Name, r.Sex, birth, tx.Now
	return p, true, renamed, nil
}

// applyUtenza creates the row's utenza (CREATA) when there is none or it is
// cancelled, else brings it up to date (AGGIORNATA) or leaves it as it is
// (INVARIATA); it returns that code and the receipt note.
func applyUtenza(tx *store.Tx, src store.Source, r *UserRow) (code, note string, err error) {
	u, err := tx.Utenza(r.ISTAT, r.CF)
	created := errors.Is(err, store.ErrNotFound)
	if err != nil && !created {
		return "", "", err
	}
	key := r.ISTAT + "/" + r.CF
	if created || u.State == domain.UtenzaCancellata {
		return createUtenza(tx, src, key, r)
	}
	ch := utenzaChanges(u, r)
	if len(ch) == 0 {
		return "INVARIATA", "utenza già presente, nessuna modifica", nil
	}
	u.Email, u.PEC, u.Profiles, u.Environments, u.NeedsCard, u.Updated = r.Email, r.PEC, r.Profiles, r.Environments, r.Card, tx.Now
	if err := tx.PutUtenza(u); err != nil {
		return "", "", err
	}
	detail := strings.Join(ch, "; ")
	if err := tx.Record(src, "utenza.modifica", "utenza", key, detail); err != nil {
		return "", "", err
	}
	return "AGGIORNATA", "modifiche: " + detail, nil
}

// createUtenza stores a new active utenza for the row and records it.
func createUtenza(tx *store.Tx, src store.Source, key string, r *UserRow) (code, note string, err error) {
	u := &domain.Utenza{ISTAT: r.ISTAT, CF: r.CF, Email: r.Email, PEC: r.PEC, Profiles: r.Profiles,
		Environments: r.Environments, NeedsCard: r.Card, State: domain.UtenzaAttiva, Created: tx.Now, Updated: tx.Now}
	if err := tx.PutUtenza(u); err != nil {
		return "", "", err
	}
	if err := tx.Record(src, "utenza.crea", "utenza", key, "profili "+joinProfiles(r.Profiles)); err != nil {
		return "", "", err
	}
	return "CREATA", "utenza creata, profili " + joinProfiles(r.Profiles), nil
}

// utenzaChanges lists what the row changes in an utenza, in the order
// e-mail, PEC, profiles, environments, smart card; none when it is the same.
func utenzaChanges(u *domain.Utenza, r *UserRow) []string {
	var ch []string
	if u.Email != r.Email {
		ch = append(ch, fmt.Sprintf("email %s → %s", u.Email, r.Email))
	}
	if u.PEC != r.PEC {
		ch = append(ch, fmt.Sprintf("PEC %q → %q", u.PEC, r.PEC))
	}
	if !slices.Equal(sortedProfiles(u.Profiles), sortedProfiles(r.Profiles)) {
		ch = append(ch, fmt.Sprintf("profili %s → %s", joinProfiles(u.Profiles), joinProfiles(r.Profiles)))
	}
	if !slices.Equal(u.Environments, r.Environments) {
		ch = append(ch, fmt.Sprintf("ambiente %s → %s", joinEnv(u.Environments), joinEnv(r.Environments)))
	}
	if u.NeedsCard != r.Card {
		ch = append(ch, fmt.Sprintf("smart card %s → %s", yesNo(u.NeedsCard), yesNo(r.Card)))
	}
	return ch
}

// applyWorkstations applies a Postazioni row w in tx; before tells what
// the row's earlier chunks requested in this run (planChunks), counted in
// its receipt line. (A run resumed after a crash counts only what it
// requested itself; the history has an entry for every workstation.)
func (g *Ingester) applyWorkstations(tx *store.Tx, src store.Source, w *wsRow, before wsTally) (code, msg string, err error) {
	c, err := g.comuneRecord(tx, src, w.ISTAT)
	if err != nil {
		return "", "", err
	}
	var notes []string
	first := c.NextPC + 1
	added, err := g.addWorkstations(tx, src, c, w.Count)
	if err != nil {
		return "", "", err
	}
	if before.added > 0 {
		first = before.first
		added += before.added
	}
	if added > 0 {
		notes = append(notes, fmt.Sprintf("%d postazioni richieste (%s … %s)", added,
			domain.WorkstationCode(w.ISTAT, first), domain.WorkstationCode(w.ISTAT, w.Count)))
	} else if w.Count < c.NextPC {
		notes = append(notes, fmt.Sprintf("dichiarate %d postazioni, ne sono già registrate %d: nessuna rimossa (usare la revoca)", w.Count, c.NextPC))
	} else {
		notes = append(notes, fmt.Sprintf("%d postazioni già registrate", c.NextPC))
	}
	if w.Server && !c.Server {
		p := &domain.Postazione{Code: domain.ServerCode(w.ISTAT), ISTAT: w.ISTAT, Server: true, State: domain.CertRichiesta, Created: tx.Now, Updated: tx.Now}
		if err := tx.PutPostazione(p); err != nil {
			return "", "", err
		}
		if err := tx.Record(src, "postazione.richiesta", "postazione", p.Code, "certificato server richiesto"); err != nil {
			return "", "", err
		}
		c.Server = true
		notes = append(notes, "certificato server richiesto ("+p.Code+")")
	} else if !w.Server && c.Server {
		notes = append(notes, "certificato server già presente: non rimosso")
	}
	if w.Count > c.Workstations || added > 0 || w.Server {
		c.Workstations = max(c.Workstations, w.Count)
		c.Updated = tx.Now
		if err := tx.PutComune(c); err != nil {
			return "", "", err
		}
	}
	code = "INVARIATA"
	if added > 0 || strings.Contains(strings.Join(notes, ""), "server richiesto") {
		code = "AGGIORNATA"
	}
	return code, strings.Join(notes, "; "), nil
}

func sortedProfiles(ps []domain.Profile) []domain.Profile {
	out := slices.Clone(ps)
	slices.Sort(out)
	return out
}

func joinProfiles(ps []domain.Profile) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

func joinEnv(es []domain.Environment) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = string(e)
	}
	return strings.Join(s, ",")
}

func yesNo(b bool) string {
	if b {
		return "SI"
	}
	return "NO"
}
