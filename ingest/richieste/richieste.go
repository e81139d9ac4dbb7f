// Package richieste reads the console requests of the comuni
// (docs/rules.md#console-requests): files comuni/<ISTAT>/richieste/*.csv or
// *.xlsx with a header row holding Operazione and Operatore (the codice
// fiscale of the console user asking) and the columns each operation needs.
// Every row is applied on its own, in its own transaction: authorization
// first (lifecycle.Authorize: the operator, his card, his profile), then
// the operation of package lifecycle, with a receipt line per row and a
// history entry for every change and every refusal (actor = the operator's
// CF). A file in one comune's folder never touches another comune.
package richieste

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/ingest/esito"
	"anprsec/ingest/table"
	"anprsec/internal/clip"
	"anprsec/istat"
	"anprsec/lifecycle"
	"anprsec/store"
	"anprsec/trust/cades"
)

// Kind is the inbox kind of the request files (their file records).
const Kind = "ingest-richieste"

// Actions of the history for refused requests: RefusedAuthz for the
// authorization (who may ask), RefusedRow for the rest (a wrong value, a
// state that does not allow it, the comune invariant).
const (
	RefusedAuthz = "richiesta.rifiutata"
	RefusedRow   = "richiesta.scartata"
)

// maxShown is the longest cell value quoted whole in the history or a
// message; a longer one is quoted cut, with its length and a hash
// (clip.String). No code, CF, serial or operation name is near it.
const maxShown = 128

// Columns of a request file.
const (
	ColOperazione = "Operazione"
	ColOperatore  = "Operatore"
	ColCF         = "Codice Fiscale"
	ColSeriale    = "Seriale"
	ColCodice     = "Codice postazione"
	ColEtichetta  = "Nome postazione"
	ColCognome    = "Cognome"
	ColNome       = "Nome"
	ColSesso      = "Sesso"
	ColNascita    = "Data di nascita"
	ColEmail      = "Email"
	ColPEC        = "PEC"
	ColProfili    = "Profili"
	ColCard       = "Smart Card"
	ColAmbiente   = "Ambiente"
	ColMotivo     = "Motivo"
	ColCampagna   = "Campagna"
	ColNota       = "Nota"
	ColHost       = "Nome host"
	ColIndirizzo  = "Indirizzo"
	ColUfficio    = "Ufficio"
)

// Required are the columns every request file has; Optional the others.
var (
	Required = []string{ColOperazione, ColOperatore}
	Optional = []string{ColCF, ColSeriale, ColCodice, ColEtichetta, ColCognome, ColNome, ColSesso, ColNascita,
		ColEmail, ColPEC, ColProfili, ColCard, ColAmbiente, ColMotivo, ColCampagna, ColNota, ColHost, ColIndirizzo, ColUfficio}
)

// needs lists the columns each operation requires filled.
var needs = map[lifecycle.Op][]string{
	lifecycle.OpRegisterPostazione:   {ColEtichetta},
	lifecycle.OpBlockPostazione:      {ColCodice, ColMotivo},
	lifecycle.OpUnblockPostazione:    {ColCodice, ColMotivo},
	lifecycle.OpRevokePostazione:     {ColCodice, ColMotivo},
	lifecycle.OpRenewPostazione:      {ColCodice, ColMotivo},
	lifecycle.OpRegisterInstall:      {ColCodice, ColHost},
	lifecycle.OpInsertUtente:         {ColCF, ColCognome, ColNome, ColEmail, ColProfili, ColCard, ColAmbiente},
	lifecycle.OpModifyUtente:         {ColCF},
	lifecycle.OpBlockUtente:          {ColCF},
	lifecycle.OpUnblockUtente:        {ColCF},
	lifecycle.OpCancelUtente:         {ColCF},
	lifecycle.OpRegisterCardDelivery: {ColCF, ColSeriale},
	lifecycle.OpNewCard:              {ColCF, ColMotivo},
	lifecycle.OpBlockCard:            {ColCF, ColMotivo},
	lifecycle.OpUnblockCard:          {ColCF, ColMotivo},
	lifecycle.OpConfirmCheck:         {ColCampagna},
}

// Processor applies the request files of one comune's folder.
type Processor struct {
	Store      *store.Store
	Comuni     *istat.Table
	CardPrefix string         // smart-card serial prefix
	MaxRows    int            // a file with more data rows is refused whole
	Loc        *time.Location // zone of the dates in messages
	// BlockTenure is how long a holder's utenza in this comune must exist
	// before the comune may block a card whose home is elsewhere.
	BlockTenure time.Duration
	// RevokeGrace is the undo window of a revocation (pki.revoke_grace).
	RevokeGrace time.Duration
	ISTAT       string // the comune of the folder

	// Signatures (signature.go): the card CA, whether an unsigned file is
	// refused, and where to find a detached <file>.p7s; Now is the time
	// certificates are judged at (nil: the clock).
	Anchors          *cades.Anchors
	RequireSignature bool
	Drop             drop.Drop
	CompanionOf      func(ctx context.Context, p string) (string, error)
	Now              func() time.Time

	// CRL is set when a row changed a certificate's state: the CRL must be
	// republished.
	CRL bool

	signer string // the CF of the signer of the file being applied
}

// Process is the ingest.Processor of a request file: one row, one
// transaction, one receipt line.
func (p *Processor) Process(ctx context.Context, f *ingest.File) (ingest.Result, error) {
	data, err := os.ReadFile(f.Local)
	if err != nil {
		return ingest.Result{}, err
	}
	sd, ref, err := p.verify(ctx, f, data)
	if err != nil {
		return ingest.Result{}, err
	}
	if ref != nil {
		return ingest.Result{Refused: true, Code: ref.code, Message: ref.message}, nil
	}
	t, err := table.Open(sd.name, sd.content, table.Options{Required: Required, Optional: Optional, MaxRows: p.MaxRows})
	var fe *table.FileError
	if errors.As(err, &fe) {
		return ingest.Result{Refused: true, Code: fe.Code, Message: fe.Message}, nil
	}
	if err != nil {
		return ingest.Result{}, err
	}
	p.signer = ""
	if sd.signer != nil {
		ref, err := p.checkSigner(sd.signer, t)
		if err != nil {
			return ingest.Result{}, err
		}
		if ref != nil {
			return ingest.Result{Refused: true, Code: ref.code, Message: ref.message}, nil
		}
		p.signer = sd.signer.CF
	}
	// One row, one transaction (and one checkpoint): a crash resumes at
	// the first row not applied. The last row's also commits the file.
	f.Expect(len(t.Rows))
	for k, r := range t.Rows {
		if err := ctx.Err(); err != nil {
			return ingest.Result{}, err
		}
		err := f.CommitLines(k, 1, func(tx *store.Tx, _ int) (esito.Line, error) {
			// The checks and the operation read the same records (the
			// holder's utenza, the card): read once.
			tx.CacheReads()
			if k == 0 && sd.signer != nil {
				if err := recordSignature(tx, f, sd.signer); err != nil {
					return esito.Line{}, err
				}
			}
			line, err := p.ApplyRow(tx, f, t, r)
			line.Sheet, line.Row = t.Sheet, r.Line
			return line, err
		})
		if err != nil {
			return ingest.Result{}, err
		}
	}
	return ingest.Result{}, nil
}

// ApplyRow authorizes and applies row r of t inside tx; a refusal is a receipt line and a
// history entry, an error a failure of the system.
func (p *Processor) ApplyRow(tx *store.Tx, f *ingest.File, t *table.Table, r *table.Row) (esito.Line, error) {
	operator := codfisc.Normalize(r.Get(ColOperatore))
	if operator == "" {
		operator = p.signer // a signed file's rows are its signer's
	}
	actor := operator
	if actor == "" {
		actor = "comune " + p.ISTAT
	}
	src := f.Source(actor, t.Sheet, r.Line)
	opName := r.Get(ColOperazione)
	code, msg, ref, err := p.do(tx, src, t, r, operator, opName)
	if err != nil {
		return esito.Line{}, err
	}
	if ref != nil {
		action := RefusedRow
		if ref.Authz {
			action = RefusedAuthz
		}
		// The cells are the file's own: a refused row may hold anything, so
		// they are recorded cut to maxShown (the history bounds the whole
		// entry too, see store.MaxEntryDetail).
		target := clip.String(strings.ToUpper(firstNonEmpty(r.Get(ColCF), r.Get(ColSeriale), r.Get(ColCodice), p.ISTAT)), maxShown)
		if err := tx.Record(src, action, "richiesta", p.ISTAT+"/"+target,
			fmt.Sprintf("%s %s: %s: %s", clip.String(strings.ToUpper(opName), maxShown), target, ref.Code, ref.Message)); err != nil {
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
func (p *Processor) do(tx *store.Tx, src store.Source, t *table.Table, r *table.Row, operator, opName string) (string, string, *lifecycle.Refusal, error) {
	if r.Err != nil {
		return "", "", lifecycle.Refuse(r.Err.Code, "%s", r.Err.Message), nil
	}
	rule, ok := lifecycle.LookupRule(opName)
	if !ok {
		if opName == "" {
			return "", "", lifecycle.Refuse("OPERAZIONE", "%s è vuota (operazioni: %s)", t.Where(ColOperazione), lifecycle.OpNames()), nil
		}
		return "", "", lifecycle.Refuse("OPERAZIONE", "%s: operazione %q sconosciuta (operazioni: %s)", t.Where(ColOperazione), opName, lifecycle.OpNames()), nil
	}
	// Authorization before anything else, so that a request of someone
	// who may not ask reveals nothing about its target.
	if ref, err := lifecycle.Authorize(tx, p.ISTAT, operator, rule); ref != nil || err != nil {
		return "", "", ref, err
	}
	for _, col := range needs[rule.Op] {
		if r.Get(col) == "" {
			return "", "", lifecycle.Refuse("CAMPO_MANCANTE", "%s richiede %s, che è vuota", rule.Op, t.Where(col)), nil
		}
	}
	motivo := r.Get(ColMotivo)
	// One spelling of a CF for every lookup (spaces, lower case, invisible
	// characters removed), the census validator's: a CF typed with a blank
	// must find the utenza it names.
	cf := codfisc.Normalize(r.Get(ColCF))
	switch rule.Op {
	case lifecycle.OpRegisterPostazione:
		return p.registraPostazione(tx, src, r.Get(ColEtichetta))
	case lifecycle.OpBlockPostazione, lifecycle.OpUnblockPostazione, lifecycle.OpRevokePostazione:
		return p.postazione(tx, src, rule.Op, strings.ToUpper(r.Get(ColCodice)), motivo)
	case lifecycle.OpRenewPostazione:
		return p.rinnova(tx, src, strings.ToUpper(r.Get(ColCodice)), motivo)
	case lifecycle.OpRegisterInstall:
		return p.installazione(tx, src, lifecycle.InstallationRequest{ISTAT: p.ISTAT, Code: strings.ToUpper(r.Get(ColCodice)),
			Serial: r.Get(ColSeriale), Host: r.Get(ColHost), Address: r.Get(ColIndirizzo), Office: r.Get(ColUfficio), Note: r.Get(ColNota)})
	case lifecycle.OpInsertUtente, lifecycle.OpModifyUtente:
		return p.utente(tx, src, t, r, rule.Op, cf)
	case lifecycle.OpBlockUtente, lifecycle.OpUnblockUtente, lifecycle.OpCancelUtente:
		return p.statoUtente(tx, src, rule.Op, cf, motivo)
	case lifecycle.OpDownloadCertificates:
		return p.scaricaCertificati(tx, src, strings.ToUpper(r.Get(ColCodice)))
	case lifecycle.OpStatus:
		return p.stato(tx, src, operator)
	case lifecycle.OpConfirmCheck:
		return lifecycle.ConfirmCheck(tx, src, p.ISTAT, r.Get(ColCampagna), operator, r.Get(ColNota), p.Loc)
	default:
		return p.smartCard(tx, src, rule.Op, cf, strings.ToUpper(r.Get(ColSeriale)), motivo)
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

func (p *Processor) registraPostazione(tx *store.Tx, src store.Source, label string) (string, string, *lifecycle.Refusal, error) {
	label = strings.Join(strings.Fields(label), " ")
	if !validLabel(label) || len(label) > 64 {
		return "", "", lifecycle.Refuse("NOME_POSTAZIONE", "il nome della postazione %q non è valido: solo lettere, cifre e spazi, al massimo 64 caratteri", label), nil
	}
	c, err := tx.Comune(p.ISTAT)
	if err != nil {
		return "", "", nil, err
	}
	var code string
	for {
		c.NextPC++
		code = domain.WorkstationCode(p.ISTAT, c.NextPC)
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
	w := &domain.Postazione{Code: code, ISTAT: p.ISTAT, Label: label, State: domain.CertRichiesta, Created: tx.Now, Updated: tx.Now}
	if err := tx.PutPostazione(w); err != nil {
		return "", "", nil, err
	}
	if err := tx.Record(src, "postazione.richiesta", "postazione", code, "registrata dalla console: "+label); err != nil {
		return "", "", nil, err
	}
	return "REGISTRATA", fmt.Sprintf("postazione %s %q registrata: certificato RICHIESTA IN LAVORAZIONE (pronto con il prossimo batch, entro 5 minuti)", code, label), nil, nil
}

// codedUnder reports whether code is a workstation code under the ISTAT
// code of comune istat or one of its earlier codes: workstations keep the
// code they were issued under when the comune changes code
// (docs/rules.md#comune-renumbering).
func codedUnder(tx *store.Tx, istat, code string) (bool, error) {
	codes := []string{istat}
	if c, err := tx.Comune(istat); err == nil {
		codes = c.Codes()
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	for _, k := range codes {
		if strings.HasPrefix(code, k+"-") {
			return true, nil
		}
	}
	return false, nil
}

func (p *Processor) postazione(tx *store.Tx, src store.Source, op lifecycle.Op, code, motivo string) (string, string, *lifecycle.Refusal, error) {
	if ok, err := codedUnder(tx, p.ISTAT, code); err != nil || !ok {
		if err != nil {
			return "", "", nil, err
		}
		return "", "", lifecycle.Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, p.ISTAT), nil
	}
	w, err := tx.Postazione(code)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", lifecycle.Refuse("POSTAZIONE_SCONOSCIUTA", "la postazione %s non esiste", code), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	if w.ISTAT != p.ISTAT {
		return "", "", lifecycle.Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, p.ISTAT), nil
	}
	w, err = lifecycle.ChangePostazioneTx(tx, src, op, code, motivo, p.RevokeGrace, p.Loc)
	var se *lifecycle.StateError
	if errors.As(err, &se) {
		return "", "", lifecycle.Refuse("STATO", "%v", err), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	p.CRL = true
	return string(w.State), fmt.Sprintf("postazione %s: %s; la CRL è ripubblicata", code, w.State), nil, nil
}

// ownPostazione refuses a code that is not a postazione of the folder's
// comune (ALTRO_COMUNE, POSTAZIONE_SCONOSCIUTA).
func (p *Processor) ownPostazione(tx *store.Tx, code string) (*lifecycle.Refusal, error) {
	if ok, err := codedUnder(tx, p.ISTAT, code); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return lifecycle.Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, p.ISTAT), nil
	}
	w, err := tx.Postazione(code)
	if errors.Is(err, store.ErrNotFound) {
		return lifecycle.Refuse("POSTAZIONE_SCONOSCIUTA", "la postazione %s non esiste", code), nil
	}
	if err != nil {
		return nil, err
	}
	if w.ISTAT != p.ISTAT {
		return lifecycle.Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, p.ISTAT), nil
	}
	return nil, nil
}

// rinnova asks a new certificate for a postazione of the comune
// (docs/rules.md#renewal).
func (p *Processor) rinnova(tx *store.Tx, src store.Source, code, motivo string) (string, string, *lifecycle.Refusal, error) {
	if ref, err := p.ownPostazione(tx, code); ref != nil || err != nil {
		return "", "", ref, err
	}
	w, err := lifecycle.RequestRenewalTx(tx, src, code, motivo, false)
	var se *lifecycle.StateError
	switch {
	case errors.As(err, &se):
		return "", "", lifecycle.Refuse("STATO", "%v", err), nil
	case errors.Is(err, lifecycle.ErrRenewalPending):
		return "", "", lifecycle.Refuse("RINNOVO_IN_CORSO", "%v", err), nil
	case err != nil:
		return "", "", nil, err
	}
	return "RINNOVO_RICHIESTO", fmt.Sprintf("postazione %s: rinnovo del certificato %s in lavorazione (il nuovo è pronto con il prossimo batch, entro 5 minuti; il precedente resta valido fino all'installazione del nuovo, al più per il periodo di sovrapposizione)", code, w.Serial), nil, nil
}

// installazione records in the register where a certificate of the
// comune is installed (docs/rules.md#installation-register).
func (p *Processor) installazione(tx *store.Tx, src store.Source, req lifecycle.InstallationRequest) (string, string, *lifecycle.Refusal, error) {
	if ref, err := p.ownPostazione(tx, req.Code); ref != nil || err != nil {
		return "", "", ref, err
	}
	in, crl, ref, err := lifecycle.RegisterInstallationTx(tx, src, req)
	if ref != nil || err != nil {
		return "", "", ref, err
	}
	msg := fmt.Sprintf("postazione %s: certificato %s registrato come installato su %s", in.Code, in.Serial, in.Host)
	if crl {
		p.CRL = true
		msg += "; il certificato che sostituisce è revocato (superseded) e la CRL è ripubblicata"
	}
	return "INSTALLAZIONE_REGISTRATA", msg, nil, nil
}

var columnLetters = regexp.MustCompile(`colonna ("[^"]+") \([A-Z]+\)`)

// userFields builds the census fields of a user from the row, on top of
// the current values (MODIFICA_UTENTE changes only what the row fills).
func (p *Processor) userFields(tx *store.Tx, r *table.Row, cf string, modify bool) (map[string]string, error) {
	f := map[string]string{census.ColISTAT: p.ISTAT, census.ColCF: cf}
	if modify {
		u, err := tx.Utenza(p.ISTAT, cf)
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
		census.ColCognome: ColCognome, census.ColNome: ColNome, census.ColSesso: ColSesso,
		census.ColNascita: ColNascita, census.ColEmail: ColEmail, census.ColPEC: ColPEC,
		census.ColProfili: ColProfili, census.ColCard: ColCard, census.ColAmbiente: ColAmbiente,
	} {
		if v := r.Get(rcol); v != "" {
			f[col] = v
		}
	}
	return f, nil
}

func (p *Processor) utente(tx *store.Tx, src store.Source, t *table.Table, r *table.Row, op lifecycle.Op, cf string) (string, string, *lifecycle.Refusal, error) {
	u, err := tx.Utenza(p.ISTAT, cf)
	exists := err == nil && u.State != domain.UtenzaCancellata
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", "", nil, err
	}
	if ref := checkUtenteOp(t, r, op, cf, p.ISTAT, exists); ref != nil {
		return "", "", ref, nil
	}
	row, ref, err := p.validUser(tx, r, cf, op == lifecycle.OpModifyUtente)
	if ref != nil || err != nil {
		return "", "", ref, err
	}
	if ref, err := lifecycle.ChangeBreach(tx, p.ISTAT, cf, row.Profiles); ref != nil || err != nil {
		return "", "", ref, err
	}
	if ref, err := keepRegistryData(tx, cf, row); ref != nil || err != nil {
		return "", "", ref, err
	}
	oldEmail := ""
	if exists {
		oldEmail = u.Email
	}
	g := &census.Ingester{Store: p.Store, Comuni: p.Comuni, CardPrefix: p.CardPrefix}
	code, msg, err := g.ApplyUser(tx, src, row)
	if err != nil {
		return "", "", nil, err
	}
	if err := lifecycle.NotifyAddressChange(tx, cf, p.ISTAT, oldEmail, row.Email); err != nil {
		return "", "", nil, err
	}
	return code, msg, nil, nil
}

// checkUtenteOp refuses INSERISCI_UTENTE of an utenza that exists,
// MODIFICA_UTENTE of one that does not, and a MODIFICA_UTENTE that touches
// the registry data.
func checkUtenteOp(t *table.Table, r *table.Row, op lifecycle.Op, cf, istat string, exists bool) *lifecycle.Refusal {
	switch {
	case op == lifecycle.OpInsertUtente && exists:
		return lifecycle.Refuse("UTENZA_ESISTENTE", "%s ha già un'utenza nel comune %s (per cambiarla: MODIFICA_UTENTE)", cf, istat)
	case op == lifecycle.OpModifyUtente && !exists:
		return lifecycle.Refuse("UTENZA_SCONOSCIUTA", "%s non ha un'utenza attiva nel comune %s", cf, istat)
	case op == lifecycle.OpModifyUtente:
		for _, col := range []string{ColCognome, ColNome, ColSesso, ColNascita} {
			if r.Get(col) != "" {
				return lifecycle.Refuse("CAMPO_NON_MODIFICABILE", "MODIFICA_UTENTE cambia e-mail, PEC, profili, smart card e ambiente; %s si corregge con il censimento", t.Where(col))
			}
		}
	}
	return nil
}

// validUser checks the row's user as the census does (with the recorded
// exception of a codice fiscale, when there is one).
func (p *Processor) validUser(tx *store.Tx, r *table.Row, cf string, modify bool) (*census.UserRow, *lifecycle.Refusal, error) {
	fields, err := p.userFields(tx, r, cf, modify)
	if err != nil {
		return nil, nil, err
	}
	v := census.Validator{Comuni: p.Comuni}
	if motivo, ok, err := tx.HasCFException(cf); err != nil {
		return nil, nil, err
	} else if ok {
		v.Exceptions = map[string]string{cf: motivo}
	}
	row, code, msg := v.UserFields(fields, r.Line)
	if row == nil {
		return nil, lifecycle.Refuse(code, "%s", columnLetters.ReplaceAllString(msg, "colonna $1")), nil
	}
	return row, nil, nil
}

// keepRegistryData keeps the registry data of a person (name, sex, birth
// date), which comes from the census (from the Agenzia delle Entrate), not
// from a comune's request: a request may name an existing person only as
// he is.
func keepRegistryData(tx *store.Tx, cf string, row *census.UserRow) (*lifecycle.Refusal, error) {
	pe, err := tx.Person(cf)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !istat.SameName(pe.Surname, row.Surname) || !istat.SameName(pe.Name, row.Name) {
		return lifecycle.Refuse("ANAGRAFICA_DIVERSA", "%s è già registrato come %s %s: cognome e nome non si cambiano con una richiesta (li corregge il censimento)",
			cf, pe.Surname, pe.Name), nil
	}
	row.Surname, row.Name, row.Sex = pe.Surname, pe.Name, pe.Sex
	if row.BirthDate == "" || pe.BirthDate != "" {
		row.BirthDate = pe.BirthDate
	}
	return nil, nil
}

func (p *Processor) statoUtente(tx *store.Tx, src store.Source, op lifecycle.Op, cf, motivo string) (string, string, *lifecycle.Refusal, error) {
	return lifecycle.ChangeUtenza(tx, src, op, p.ISTAT, cf, motivo)
}

func (p *Processor) smartCard(tx *store.Tx, src store.Source, op lifecycle.Op, cf, serial, motivo string) (string, string, *lifecycle.Refusal, error) {
	// The holder must be a user of this comune.
	if u, err := tx.Utenza(p.ISTAT, cf); errors.Is(err, store.ErrNotFound) || (err == nil && u.State == domain.UtenzaCancellata) {
		return "", "", lifecycle.Refuse("ALTRO_COMUNE", "%s non ha un'utenza nel comune %s: le sue smart card non si gestiscono da qui", cf, p.ISTAT), nil
	} else if err != nil {
		return "", "", nil, err
	}
	refuse := func(err error) (string, string, *lifecycle.Refusal, error) {
		var se *lifecycle.StateError
		switch {
		case errors.As(err, &se):
			return "", "", lifecycle.Refuse("STATO", "%v", err), nil
		case errors.Is(err, lifecycle.ErrCardUnknown), errors.Is(err, lifecycle.ErrNoCard), errors.Is(err, lifecycle.ErrNotHolder), errors.Is(err, lifecycle.ErrMotivo):
			return "", "", lifecycle.Refuse("SMART_CARD", "%v", err), nil
		}
		return "", "", nil, err
	}
	if op == lifecycle.OpNewCard {
		if ref, err := p.mayReplace(tx, cf); ref != nil || err != nil {
			return "", "", ref, err
		}
		old, nw, err := lifecycle.ReplaceCard(tx, src, cf, motivo, p.CardPrefix, p.ISTAT)
		if errors.Is(err, lifecycle.ErrReplacementPending) {
			return "", "", lifecycle.Refuse("SOSTITUZIONE_IN_CORSO", "%v", err), nil
		}
		if err != nil {
			return refuse(err)
		}
		msg := fmt.Sprintf("nuova smart card %s richiesta per %s", nw, cf)
		switch {
		case old != "":
			msg = fmt.Sprintf("smart card %s disabilitata; ", old) + msg
		case lifecycle.IsExpiryMotivo(motivo):
			if pe, err := tx.Person(cf); err == nil && pe.NextCard == nw {
				msg += fmt.Sprintf("; la smart card in uso %s resta attiva fino alla consegna della nuova al titolare", pe.Card)
			}
		}
		return "RICHIESTA", msg, nil, nil
	}
	c, err := lifecycle.FindCard(tx, cf, serial)
	if err != nil {
		return refuse(err)
	}
	act := map[lifecycle.Op]lifecycle.CardAct{lifecycle.OpRegisterCardDelivery: lifecycle.CardRegisterDelivery,
		lifecycle.OpBlockCard: lifecycle.CardBlock, lifecycle.OpUnblockCard: lifecycle.CardUnblock}[op]
	if ref, err := lifecycle.MayActOnCard(tx, c, p.ISTAT, act, p.BlockTenure); ref != nil || err != nil {
		return "", "", ref, err
	}
	switch op {
	case lifecycle.OpRegisterCardDelivery:
		err = lifecycle.ActivateCard(tx, src, c)
	case lifecycle.OpBlockCard:
		err = lifecycle.BlockCardFor(tx, src, c, motivo, p.ISTAT)
	case lifecycle.OpUnblockCard:
		err = lifecycle.UnblockCard(tx, src, c, motivo)
	}
	if err != nil {
		return refuse(err)
	}
	msg := fmt.Sprintf("smart card %s di %s: %s", c.Serial, cf, c.State)
	if op == lifecycle.OpRegisterCardDelivery {
		msg += "; seconde metà di PIN, PUK e password in invio per e-mail al titolare"
	}
	return string(c.State), msg, nil, nil
}

// mayReplace checks that this comune may ask a new card for cf: only the
// home comune of cf's current card (lifecycle.MayActOnCard); a person
// without a card may get one through any comune where he has an utenza.
func (p *Processor) mayReplace(tx *store.Tx, cf string) (*lifecycle.Refusal, error) {
	c, err := lifecycle.FindCard(tx, cf, "")
	if errors.Is(err, lifecycle.ErrNoCard) || errors.Is(err, lifecycle.ErrCardUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return lifecycle.MayActOnCard(tx, c, p.ISTAT, lifecycle.CardReplace, p.BlockTenure)
}

// recordSignature records who signed request file f, with the certificate
// and the signing time the signer declares (recorded, not trusted).
func recordSignature(tx *store.Tx, f *ingest.File, s *cades.Signer) error {
	detail := fmt.Sprintf("firmata da %s con il certificato %X di %q", s.CF, s.Cert.SerialNumber, s.Cert.Issuer.CommonName)
	if !s.SigningTime.IsZero() {
		detail += ", ora di firma dichiarata " + s.SigningTime.UTC().Format(time.RFC3339)
	}
	return tx.Record(f.Source(s.CF, "", 0), "richiesta.firma", "file", f.Path, detail)
}
