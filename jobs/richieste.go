package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/ingest/esito"
	"anprsec/ingest/richieste"
	"anprsec/ingest/table"
	"anprsec/istat"
	"anprsec/smartcard"
	"anprsec/store"
)

// richiesteJob applies the console requests of the comuni (SPEC.md
// "ingest-richieste"; issue 5): for every folder comuni/<ISTAT>/ of a
// censused comune whose richieste/ folder holds files (scanRichieste), the
// files in it (*.csv, *.xlsx), row by row in file order, each row in its own transaction:
// authorization first (richieste.Authorize: the operator, his card, his
// profile), then the operation, with an esito line per row and a history
// entry for every change and every refusal (actor = the operator's CF).
// A file in one comune's folder never touches another comune. When a row
// blocked, unblocked or revoked a certificate (CRLDirtyMeta, set in the
// row's transaction), the crl job runs at the end, or at the next run after
// a crash.
var richiesteJob = Job{
	Name:        "ingest-richieste",
	Description: "applies the console requests of the comuni (comuni/<ISTAT>/richieste/): users, cards, workstations, checking the operator's profile",
	Run:         runRichieste,
}

// richiesteKind is the Inbox kind of the request files (their records).
const richiesteKind = "ingest-richieste"

// Actions of the history for refused requests: RefusedAuthz for the
// authorization (who may ask), RefusedRow for the rest (a wrong value, a
// state that does not allow it, an invariant of the comune).
const (
	RefusedAuthz = "richiesta.rifiutata"
	RefusedRow   = "richiesta.scartata"
)

func runRichieste(ctx context.Context, env *Env, run *Run) error {
	istats, errs := scanRichieste(ctx, env)
	crl := false
	for _, istat := range istats {
		if ctx.Err() != nil {
			break
		}
		censused := true
		if err := env.Store.View(func(tx *store.Tx) error {
			_, err := tx.Comune(istat)
			if errors.Is(err, store.ErrNotFound) {
				censused = false
				return nil
			}
			return err
		}); err != nil {
			errs = append(errs, err)
			continue
		}
		if !censused {
			run.Log.Warn("ingest-richieste: comuni/ holds a folder of a comune never censused: ignored", "folder", "comuni/"+istat)
			run.Add("unknown_folders", 1)
			continue
		}
		in := &ingest.Inbox{
			Drop: env.Drop, Store: env.Store, Kind: richiesteKind, Actor: "comune " + istat, Loc: env.Loc,
			Dir: path.Join("comuni", istat, "richieste"), Exts: []string{".csv", ".xlsx"},
			MaxSize: int64(env.Config.Drop.MaxFileSize), Settle: env.Config.Drop.Settle, SpoolDir: env.SpoolDir(), Log: run.Log,
			Unpipelined: true,
		}
		p := &requestProcessor{env: env, istat: istat, run: run}
		st, err := in.Run(ctx, p.process)
		run.Add("files", st.Files)
		run.Add("files_refused", st.Refused)
		run.Add("duplicates", st.Duplicates)
		run.Add("rows_ok", st.RowsOK)
		run.Add("rows_refused", st.RowsRefused)
		crl = crl || p.crl
		if err != nil {
			errs = append(errs, fmt.Errorf("comune %s: %w", istat, err))
		}
	}
	if crl || crlDirty(env) {
		if err := runCRL(ctx, env, run); err != nil {
			errs = append(errs, fmt.Errorf("ingest-richieste: the CRL was not republished after a block, unblock or revoke: %w", err))
		}
	}
	return errors.Join(errs...)
}

// scanWorkers is how many comuni/<ISTAT>/richieste folders are listed at
// once: over SFTP each listing is a few round trips, and 7,904 of them one
// after the other would fill the one-minute schedule on a slow link.
const scanWorkers = 16

// scanRichieste lists comuni/ and then, scanWorkers at a time, each
// comune's richieste/ folder (a missing one lists empty: one listing per
// comune). It returns, in ISTAT order, the comuni whose folder holds
// something that is not a folder (a request, or a file to refuse), and
// those with a file committed whose publication a stop interrupted
// (Inbox.Run finishes it even when the folder is empty).
func scanRichieste(ctx context.Context, env *Env) (istats []string, errs []error) {
	entries, err := env.Drop.List(ctx, "comuni")
	if err != nil {
		return nil, []error{fmt.Errorf("listing comuni/: %w", err)}
	}
	want := map[string]bool{}
	if err := env.Store.View(func(tx *store.Tx) error {
		rs, err := tx.FilesOfKind(store.FileCommitted, richiesteKind)
		for _, r := range rs {
			want[path.Base(path.Dir(path.Dir(r.Path)))] = true // comuni/<ISTAT>/richieste/<file>
		}
		return err
	}); err != nil {
		return nil, []error{err}
	}
	var dirs []string
	for _, e := range entries {
		if e.Dir && !ingest.Skipped(e.Name) {
			dirs = append(dirs, e.Name)
		}
	}
	type result struct {
		istat string
		files bool
		err   error
	}
	work := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(scanWorkers, len(dirs)) {
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
		for _, d := range dirs {
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
	for r := range results {
		switch {
		case r.err != nil:
			errs = append(errs, fmt.Errorf("listing comuni/%s/richieste: %w", r.istat, r.err))
		case r.files:
			want[r.istat] = true
		}
	}
	for istat := range want {
		istats = append(istats, istat)
	}
	sort.Strings(istats)
	return istats, errs
}

// requestProcessor applies the request files of one comune.
type requestProcessor struct {
	env   *Env
	istat string
	run   *Run
	crl   bool // a certificate changed state: the CRL must be republished
}

func (p *requestProcessor) process(ctx context.Context, f *ingest.File) (ingest.Result, error) {
	data, err := os.ReadFile(f.Local)
	if err != nil {
		return ingest.Result{}, err
	}
	t, err := table.Open(f.Name, data, table.Options{Required: richieste.Required, Optional: richieste.Optional, MaxRows: p.env.Config.Census.MaxRows})
	var fe *table.FileError
	if errors.As(err, &fe) {
		return ingest.Result{Refused: true, Code: fe.Code, Message: fe.Message}, nil
	}
	if err != nil {
		return ingest.Result{}, err
	}
	// One row, one transaction (and one checkpoint): a crash resumes at
	// the first row not applied.
	for k, r := range t.Rows {
		if err := ctx.Err(); err != nil {
			return ingest.Result{}, err
		}
		err := f.CommitLines(k, 1, func(tx *store.Tx, _ int) (esito.Line, error) {
			line, err := p.apply(tx, f, t, r)
			line.Sheet, line.Row = t.Sheet, r.Line
			return line, err
		})
		if err != nil {
			return ingest.Result{}, err
		}
	}
	return ingest.Result{}, nil
}

// apply authorizes and applies one row; a refusal is an esito line and a
// history entry, an error a failure of the system.
func (p *requestProcessor) apply(tx *store.Tx, f *ingest.File, t *table.Table, r *table.Row) (esito.Line, error) {
	operator := codfisc.Normalize(r.Get(richieste.ColOperatore))
	actor := operator
	if actor == "" {
		actor = "comune " + p.istat
	}
	src := f.Source(actor, t.Sheet, r.Line)
	opName := r.Get(richieste.ColOperazione)
	code, msg, ref, err := p.do(tx, src, t, r, operator, opName)
	if err != nil {
		return esito.Line{}, err
	}
	if ref != nil {
		action := RefusedRow
		if ref.Authz {
			action = RefusedAuthz
		}
		target := firstNonEmpty(r.Get(richieste.ColCF), r.Get(richieste.ColSeriale), r.Get(richieste.ColCodice), p.istat)
		if err := tx.Record(src, action, "richiesta", p.istat+"/"+strings.ToUpper(target),
			fmt.Sprintf("%s %s: %s: %s", strings.ToUpper(opName), strings.ToUpper(target), ref.Code, ref.Message)); err != nil {
			return esito.Line{}, err
		}
		return esito.Line{Outcome: esito.Scartato, Code: ref.Code, Message: ref.Message}, nil
	}
	return esito.Line{Outcome: esito.OK, Code: code, Message: msg}, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return strings.TrimSpace(x)
		}
	}
	return ""
}

// do checks and applies one row: (code, message) when applied, a Refusal
// when not.
func (p *requestProcessor) do(tx *store.Tx, src store.Source, t *table.Table, r *table.Row, operator, opName string) (string, string, *richieste.Refusal, error) {
	if r.Err != nil {
		return "", "", richieste.Refuse(r.Err.Code, "%s", r.Err.Message), nil
	}
	rule, ok := richieste.LookupRule(opName)
	if !ok {
		if opName == "" {
			return "", "", richieste.Refuse("OPERAZIONE", "%s è vuota (operazioni: %s)", t.Where(richieste.ColOperazione), richieste.OpNames()), nil
		}
		return "", "", richieste.Refuse("OPERAZIONE", "%s: operazione %q sconosciuta (operazioni: %s)", t.Where(richieste.ColOperazione), opName, richieste.OpNames()), nil
	}
	// Authorization before anything else, so that a request of someone
	// who may not ask reveals nothing about its target.
	if ref, err := richieste.Authorize(tx, p.istat, operator, rule); ref != nil || err != nil {
		return "", "", ref, err
	}
	for _, col := range rule.Needs {
		if r.Get(col) == "" {
			return "", "", richieste.Refuse("CAMPO_MANCANTE", "%s richiede %s, che è vuota", rule.Op, t.Where(col)), nil
		}
	}
	motivo := r.Get(richieste.ColMotivo)
	// One spelling of a CF for every lookup (spaces, lower case, invisible
	// characters removed), the census validator's: a CF typed with a blank
	// must find the utenza it names.
	cf := codfisc.Normalize(r.Get(richieste.ColCF))
	switch rule.Op {
	case richieste.RegistraPostazione:
		return p.registraPostazione(tx, src, r.Get(richieste.ColEtichetta))
	case richieste.BloccaPostazione, richieste.SbloccaPostazione, richieste.RevocaPostazione:
		return p.postazione(tx, src, rule.Op, strings.ToUpper(r.Get(richieste.ColCodice)), motivo)
	case richieste.InserisciUtente, richieste.ModificaUtente:
		return p.utente(tx, src, t, r, rule.Op, cf)
	case richieste.BloccaUtente, richieste.SbloccaUtente, richieste.CancellaUtente:
		return p.statoUtente(tx, src, rule.Op, cf, motivo)
	default:
		return p.smartCard(tx, src, rule.Op, cf, strings.ToUpper(r.Get(richieste.ColSeriale)), motivo)
	}
}

// validLabel: letters, digits and spaces only (no special characters).
func validLabel(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != ' ' {
			return false
		}
	}
	return strings.TrimSpace(s) != ""
}

func (p *requestProcessor) registraPostazione(tx *store.Tx, src store.Source, label string) (string, string, *richieste.Refusal, error) {
	label = strings.Join(strings.Fields(label), " ")
	if !validLabel(label) || len(label) > 64 {
		return "", "", richieste.Refuse("NOME_POSTAZIONE", "il nome della postazione %q non è valido: solo lettere, cifre e spazi, al massimo 64 caratteri", label), nil
	}
	c, err := tx.Comune(p.istat)
	if err != nil {
		return "", "", nil, err
	}
	var code string
	for {
		c.NextPC++
		code = domain.WorkstationCode(p.istat, c.NextPC)
		if _, err := tx.Postazione(code); errors.Is(err, store.ErrNotFound) {
			break
		} else if err != nil {
			return "", "", nil, err
		}
	}
	c.Workstations++
	c.Updated = tx.Now
	if err := tx.PutComune(c); err != nil {
		return "", "", nil, err
	}
	w := &domain.Postazione{Code: code, ISTAT: p.istat, Label: label, State: domain.CertRichiesta, Created: tx.Now, Updated: tx.Now}
	if err := tx.PutPostazione(w); err != nil {
		return "", "", nil, err
	}
	if err := tx.Record(src, "postazione.richiesta", "postazione", code, "registrata dalla console: "+label); err != nil {
		return "", "", nil, err
	}
	return "REGISTRATA", fmt.Sprintf("postazione %s %q registrata: certificato RICHIESTA IN LAVORAZIONE (pronto con il prossimo batch, entro 5 minuti)", code, label), nil, nil
}

func (p *requestProcessor) postazione(tx *store.Tx, src store.Source, op richieste.Op, code, motivo string) (string, string, *richieste.Refusal, error) {
	if !strings.HasPrefix(code, p.istat+"-") {
		return "", "", richieste.Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, p.istat), nil
	}
	w, err := tx.Postazione(code)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", richieste.Refuse("POSTAZIONE_SCONOSCIUTA", "la postazione %s non esiste", code), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	if w.ISTAT != p.istat {
		return "", "", richieste.Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, p.istat), nil
	}
	jop := map[richieste.Op]Op{richieste.BloccaPostazione: OpBlocca, richieste.SbloccaPostazione: OpSblocca, richieste.RevocaPostazione: OpRevoca}[op]
	w, err = ChangePostazioneTx(tx, src, jop, code, motivo, 0, p.env.Loc)
	var se *ErrStato
	if errors.As(err, &se) {
		return "", "", richieste.Refuse("STATO", "%v", err), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	if err := tx.SetMeta(CRLDirtyMeta, true); err != nil {
		return "", "", nil, err
	}
	p.crl = true
	return string(w.State), fmt.Sprintf("postazione %s: %s; la CRL è ripubblicata", code, w.State), nil, nil
}

var columnLetters = regexp.MustCompile(`colonna ("[^"]+") \([A-Z]+\)`)

// userFields builds the census fields of a user from the row, on top of
// the current values (MODIFICA_UTENTE changes only what the row fills).
func (p *requestProcessor) userFields(tx *store.Tx, r *table.Row, cf string, modify bool) (map[string]string, error) {
	f := map[string]string{census.ColISTAT: p.istat, census.ColCF: cf}
	if modify {
		u, err := tx.Utenza(p.istat, cf)
		if err != nil {
			return nil, err
		}
		pe, err := tx.Person(cf)
		if err != nil {
			return nil, err
		}
		prof := make([]string, len(u.Profiles))
		for i, x := range u.Profiles {
			prof[i] = string(x)
		}
		env := make([]string, len(u.Environments))
		for i, x := range u.Environments {
			env[i] = string(x)
		}
		f[census.ColCognome], f[census.ColNome], f[census.ColSesso] = pe.Surname, pe.Name, pe.Sex
		f[census.ColEmail], f[census.ColPEC], f[census.ColProfili] = u.Email, u.PEC, strings.Join(prof, ",")
		f[census.ColAmbiente] = strings.Join(env, ",")
		f[census.ColCard] = map[bool]string{true: "SI", false: "NO"}[u.NeedsCard]
	}
	for col, rcol := range map[string]string{
		census.ColCognome: richieste.ColCognome, census.ColNome: richieste.ColNome, census.ColSesso: richieste.ColSesso,
		census.ColNascita: richieste.ColNascita, census.ColEmail: richieste.ColEmail, census.ColPEC: richieste.ColPEC,
		census.ColProfili: richieste.ColProfili, census.ColCard: richieste.ColCard, census.ColAmbiente: richieste.ColAmbiente,
	} {
		if v := r.Get(rcol); v != "" {
			f[col] = v
		}
	}
	return f, nil
}

func (p *requestProcessor) utente(tx *store.Tx, src store.Source, t *table.Table, r *table.Row, op richieste.Op, cf string) (string, string, *richieste.Refusal, error) {
	u, err := tx.Utenza(p.istat, cf)
	exists := err == nil && u.State != domain.UtenzaCancellata
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", "", nil, err
	}
	if op == richieste.InserisciUtente && exists {
		return "", "", richieste.Refuse("UTENZA_ESISTENTE", "%s ha già un'utenza nel comune %s (per cambiarla: MODIFICA_UTENTE)", cf, p.istat), nil
	}
	if op == richieste.ModificaUtente && !exists {
		return "", "", richieste.Refuse("UTENZA_SCONOSCIUTA", "%s non ha un'utenza attiva nel comune %s", cf, p.istat), nil
	}
	if op == richieste.ModificaUtente {
		for _, col := range []string{richieste.ColCognome, richieste.ColNome, richieste.ColSesso, richieste.ColNascita} {
			if r.Get(col) != "" {
				return "", "", richieste.Refuse("CAMPO_NON_MODIFICABILE", "MODIFICA_UTENTE cambia e-mail, PEC, profili, smart card e ambiente; %s si corregge con il censimento", t.Where(col)), nil
			}
		}
	}
	fields, err := p.userFields(tx, r, cf, op == richieste.ModificaUtente)
	if err != nil {
		return "", "", nil, err
	}
	v := census.Validator{Comuni: p.env.Comuni}
	row, code, msg := v.UserFields(fields, r.Line)
	if row == nil {
		msg = columnLetters.ReplaceAllString(msg, "colonna $1")
		return "", "", richieste.Refuse(code, "%s", msg), nil
	}
	if ref, err := richieste.Invariant(tx, p.istat, cf, row.Profiles); ref != nil || err != nil {
		return "", "", ref, err
	}
	// The registry data of a person (name, sex, birth date) comes from the
	// census (seed 000: from the Agenzia delle Entrate), not from a comune's
	// request: a request may name an existing person only as he is.
	if pe, err := tx.Person(cf); err == nil {
		if !istat.SameName(pe.Surname, row.Surname) || !istat.SameName(pe.Name, row.Name) {
			return "", "", richieste.Refuse("ANAGRAFICA_DIVERSA", "%s è già registrato come %s %s: cognome e nome non si cambiano con una richiesta (li corregge il censimento)",
				cf, pe.Surname, pe.Name), nil
		}
		row.Surname, row.Name, row.Sex = pe.Surname, pe.Name, pe.Sex
		if row.BirthDate == "" || pe.BirthDate != "" {
			row.BirthDate = pe.BirthDate
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", "", nil, err
	}
	g := &census.Ingester{Store: p.env.Store, Comuni: p.env.Comuni, CardPrefix: p.env.Config.Cards.SerialPrefix}
	code, msg, err = g.ApplyUser(tx, src, row)
	if err != nil {
		return "", "", nil, err
	}
	return code, msg, nil, nil
}

func (p *requestProcessor) statoUtente(tx *store.Tx, src store.Source, op richieste.Op, cf, motivo string) (string, string, *richieste.Refusal, error) {
	return ChangeUtenza(tx, src, op, p.istat, cf, motivo)
}

// ChangeUtenza blocks, unblocks or deletes (op BloccaUtente, SbloccaUtente,
// CancellaUtente) the utenza of cf in comune istat inside the caller's
// transaction, keeping the comune's invariants (richieste.Invariant); a
// deletion follows seed 000 for the card. It is shared by the console
// requests and the back-office CLI (`anprsec utenze`). It returns the
// receipt code and message, or a Refusal that changed nothing.
func ChangeUtenza(tx *store.Tx, src store.Source, op richieste.Op, istat, cf, motivo string) (string, string, *richieste.Refusal, error) {
	cf = strings.ToUpper(strings.TrimSpace(cf))
	u, err := tx.Utenza(istat, cf)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.State == domain.UtenzaCancellata) {
		return "", "", richieste.Refuse("UTENZA_SCONOSCIUTA", "%s non ha un'utenza nel comune %s", cf, istat), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	key := istat + "/" + cf
	detail := motivo
	switch op {
	case richieste.SbloccaUtente:
		if u.State != domain.UtenzaBloccata {
			return "", "", richieste.Refuse("STATO", "l'utenza di %s è %s: si sblocca solo un'utenza BLOCCATA", cf, u.State), nil
		}
		if ref, err := richieste.Invariant(tx, istat, cf, u.Profiles); ref != nil || err != nil {
			return "", "", ref, err
		}
		u.State = domain.UtenzaAttiva
	case richieste.BloccaUtente:
		if u.State != domain.UtenzaAttiva {
			return "", "", richieste.Refuse("STATO", "l'utenza di %s è %s: si blocca solo un'utenza ATTIVA", cf, u.State), nil
		}
		if ref, err := richieste.Invariant(tx, istat, cf, nil); ref != nil || err != nil {
			return "", "", ref, err
		}
		u.State = domain.UtenzaBloccata
	case richieste.CancellaUtente:
		if ref, err := richieste.Invariant(tx, istat, cf, nil); ref != nil || err != nil {
			return "", "", ref, err
		}
		u.State = domain.UtenzaCancellata
	}
	u.Updated = tx.Now
	if err := tx.PutUtenza(u); err != nil {
		return "", "", nil, err
	}
	action := map[richieste.Op]string{richieste.BloccaUtente: "utenza.blocca", richieste.SbloccaUtente: "utenza.sblocca", richieste.CancellaUtente: "utenza.cancella"}[op]
	if err := tx.Record(src, action, "utenza", key, detail); err != nil {
		return "", "", nil, err
	}
	if op != richieste.CancellaUtente {
		return string(u.State), fmt.Sprintf("utenza di %s nel comune %s: %s", cf, istat, u.State), nil, nil
	}
	// Seed 000: with utenze in other comuni only this one goes and the
	// card stays; with none left, the card is disabled for good.
	comuni, err := tx.ComuniOfPerson(cf)
	if err != nil {
		return "", "", nil, err
	}
	others := 0
	for _, c := range comuni {
		if c == istat {
			continue
		}
		if o, err := tx.Utenza(c, cf); err == nil && o.State != domain.UtenzaCancellata {
			others++
		}
	}
	if others > 0 {
		return "CANCELLATA", fmt.Sprintf("utenza di %s nel comune %s cancellata; la smart card resta (utenze in altri %d comuni)", cf, istat, others), nil, nil
	}
	pe, err := tx.Person(cf)
	if err != nil || pe.Card == "" {
		return "CANCELLATA", fmt.Sprintf("utenza di %s nel comune %s cancellata; nessuna smart card", cf, istat), nil, err
	}
	c, err := tx.Card(pe.Card)
	if err != nil {
		return "", "", nil, err
	}
	if c.State == domain.CardRevocata {
		return "CANCELLATA", fmt.Sprintf("utenza di %s nel comune %s cancellata", cf, istat), nil, nil
	}
	if err := smartcard.Revoke(tx, src, c, "ultima utenza cancellata"); err != nil {
		return "", "", nil, err
	}
	return "CANCELLATA", fmt.Sprintf("utenza di %s nel comune %s cancellata; era la sua ultima utenza: smart card %s disabilitata definitivamente", cf, istat, c.Serial), nil, nil
}

func (p *requestProcessor) smartCard(tx *store.Tx, src store.Source, op richieste.Op, cf, serial, motivo string) (string, string, *richieste.Refusal, error) {
	// The holder must be a user of this comune.
	if u, err := tx.Utenza(p.istat, cf); errors.Is(err, store.ErrNotFound) || (err == nil && u.State == domain.UtenzaCancellata) {
		return "", "", richieste.Refuse("ALTRO_COMUNE", "%s non ha un'utenza nel comune %s: le sue smart card non si gestiscono da qui", cf, p.istat), nil
	} else if err != nil {
		return "", "", nil, err
	}
	refuse := func(err error) (string, string, *richieste.Refusal, error) {
		var se *smartcard.StateError
		switch {
		case errors.As(err, &se):
			return "", "", richieste.Refuse("STATO", "%v", err), nil
		case errors.Is(err, smartcard.ErrCardUnknown), errors.Is(err, smartcard.ErrNoCard), errors.Is(err, smartcard.ErrNotHolder), errors.Is(err, smartcard.ErrMotivo):
			return "", "", richieste.Refuse("SMART_CARD", "%v", err), nil
		}
		return "", "", nil, err
	}
	if op == richieste.NuovaSC {
		old, nw, err := smartcard.Replace(tx, src, cf, motivo, p.env.Config.Cards.SerialPrefix, p.istat)
		if err != nil {
			return refuse(err)
		}
		msg := fmt.Sprintf("nuova smart card %s richiesta per %s", nw, cf)
		if old != "" {
			msg = fmt.Sprintf("smart card %s disabilitata; ", old) + msg
		}
		return "RICHIESTA", msg, nil, nil
	}
	c, err := smartcard.Card(tx, cf, serial)
	if err != nil {
		return refuse(err)
	}
	if op == richieste.RegistraConsegnaSC && c.ISTAT != p.istat {
		return "", "", richieste.Refuse("ALTRO_COMUNE", "la smart card %s è stata richiesta per il comune %s: la sua consegna si registra là", c.Serial, c.ISTAT), nil
	}
	switch op {
	case richieste.RegistraConsegnaSC:
		err = smartcard.Activate(tx, src, c)
	case richieste.BloccaSC:
		err = smartcard.Block(tx, src, c, motivo)
	case richieste.SbloccaSC:
		err = smartcard.Unblock(tx, src, c, motivo)
	}
	if err != nil {
		return refuse(err)
	}
	msg := fmt.Sprintf("smart card %s di %s: %s", c.Serial, cf, c.State)
	if op == richieste.RegistraConsegnaSC {
		msg += "; seconde metà di PIN, PUK e password in invio per e-mail al titolare"
	}
	return string(c.State), msg, nil, nil
}
