package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/export/bundle"
	"anprsec/pki"
	"anprsec/store"
)

// Operations on a workstation certificate (SPEC.md, lifecycle):
//
//	ATTIVO --Blocca--> BLOCCATO --Sblocca--> ATTIVO
//	ATTIVO|BLOCCATO --Revoca--> REVOCATA IN LAVORAZIONE --(certificati, after pki.revoke_grace)--> REVOCATO
//	REVOCATA IN LAVORAZIONE --AnnullaRevoca (inside pki.revoke_grace)--> the state before the revoke
//
// They are shared by the back-office CLI (`anprsec postazioni blocca|sblocca|
// revoca`) and, later, by the console requests of the comuni. Each one is a
// single store transaction carrying the new state and its history entry
// (actor = the operator, detail = the motivo). The caller then runs the crl
// job so that the CRL shows the change at once.

// Op is an operation on a workstation certificate.
type Op string

// The operations.
const (
	OpBlocca  Op = "blocca"
	OpSblocca Op = "sblocca"
	OpRevoca  Op = "revoca"
	// OpAnnullaRevoca undoes a revoke inside the undo window; it needs the
	// window, so it goes through AnnullaRevoca, not ChangePostazione.
	OpAnnullaRevoca Op = "annulla-revoca"
)

// BackOfficeActor is the history actor of the ministry's CLI operations.
const BackOfficeActor = "back-office"

// opRule says from which states an operation may start and where it leads.
type opRule struct {
	from   []domain.CertState
	to     domain.CertState
	action string // history action
	verb   string // Italian participle, for messages: "bloccata"
}

var opRules = map[Op]opRule{
	OpBlocca:  {[]domain.CertState{domain.CertAttivo}, domain.CertBloccato, "postazione.blocca", "bloccata"},
	OpSblocca: {[]domain.CertState{domain.CertBloccato}, domain.CertAttivo, "postazione.sblocca", "sbloccata"},
	OpRevoca:  {[]domain.CertState{domain.CertAttivo, domain.CertBloccato}, domain.CertRevocaInCorso, "postazione.revoca", "revocata"},
	// to is the state before the revoke (PrevState), decided per postazione.
	OpAnnullaRevoca: {[]domain.CertState{domain.CertRevocaInCorso}, "", "postazione.annulla-revoca", "ripristinata (annullamento della revoca)"},
}

// ErrMotivo is returned when the motivo is empty.
var ErrMotivo = errors.New("il motivo è obbligatorio (--motivo)")

// ErrStato is returned when the certificate is not in a state the
// operation may start from; it names the code and the state.
type ErrStato struct {
	Op      Op
	Code    string
	State   domain.CertState
	Allowed []domain.CertState
}

func (e *ErrStato) Error() string {
	allowed := make([]string, len(e.Allowed))
	for i, s := range e.Allowed {
		allowed[i] = string(s)
	}
	return fmt.Sprintf("la postazione %s è nello stato %s: non può essere %s (serve lo stato %s)",
		e.Code, e.State, opRules[e.Op].verb, strings.Join(allowed, " o "))
}

// ErrPostazioneSconosciuta is returned (wrapped) for an unknown code.
var ErrPostazioneSconosciuta = errors.New("postazione sconosciuta")

// Blocca puts an ATTIVO certificate on hold (BLOCCATO: in the CRL with
// reason certificateHold).
func Blocca(st *store.Store, src store.Source, code, motivo string) (*domain.Postazione, error) {
	return ChangePostazione(st, src, OpBlocca, code, motivo)
}

// Sblocca releases a BLOCCATO certificate (ATTIVO: out of the next CRL).
func Sblocca(st *store.Store, src store.Source, code, motivo string) (*domain.Postazione, error) {
	return ChangePostazione(st, src, OpSblocca, code, motivo)
}

// Revoca asks for the revocation of an ATTIVO or BLOCCATO certificate
// (REVOCATA IN LAVORAZIONE: in the CRL on hold at once; the next certificati
// batch makes it REVOCATO, for good, with the reason pki.RevocationReason
// derives from the motivo).
func Revoca(st *store.Store, src store.Source, code, motivo string) (*domain.Postazione, error) {
	return ChangePostazione(st, src, OpRevoca, code, motivo)
}

// ChangePostazione applies op to the postazione code in one transaction
// and returns the postazione as committed. A state the operation may not
// start from gives *ErrStato and changes nothing.
func ChangePostazione(st *store.Store, src store.Source, op Op, code, motivo string) (*domain.Postazione, error) {
	if op == OpAnnullaRevoca {
		return nil, errors.New("postazioni: annulla-revoca needs the undo window: use AnnullaRevoca")
	}
	return change(st, src, op, code, motivo, 0, nil)
}

// ErrFinestraScaduta is returned by AnnullaRevoca when the undo window of
// a revocation has passed: the revocation is (or is about to be) final.
type ErrFinestraScaduta struct {
	Code      string
	RevokedAt time.Time
	Grace     time.Duration
	Loc       *time.Location
}

func (e *ErrFinestraScaduta) Error() string {
	loc := e.Loc
	if loc == nil {
		loc = time.UTC
	}
	const layout = "2006-01-02 15:04:05 MST"
	return fmt.Sprintf("la revoca della postazione %s, chiesta il %s, non può più essere annullata: "+
		"il periodo per annullarla (%s) è scaduto il %s; la revoca diventa definitiva al prossimo batch certificati",
		e.Code, e.RevokedAt.In(loc).Format(layout), e.Grace, e.RevokedAt.Add(e.Grace).In(loc).Format(layout))
}

// RevokeFinal reports whether the revocation of p (REVOCATA IN
// LAVORAZIONE) is past its undo window at now: RevokedAt + grace <= now.
// A revocation without a request time (older records) counts from Updated.
func RevokeFinal(p *domain.Postazione, grace time.Duration, now time.Time) bool {
	return !firstSet(p.RevokedAt, p.Updated).Add(grace).After(now)
}

// AnnullaRevoca undoes the revocation of a REVOCATA IN LAVORAZIONE
// certificate while its undo window (grace, pki.revoke_grace) is open: the
// certificate goes back to the state it had before the revoke (ATTIVO or
// BLOCCATO), with a history entry. Outside the window it gives
// *ErrFinestraScaduta, in another state *ErrStato, and changes nothing.
// loc is the zone of the dates in the messages (nil: UTC).
func AnnullaRevoca(st *store.Store, src store.Source, code, motivo string, grace time.Duration, loc *time.Location) (*domain.Postazione, error) {
	return change(st, src, OpAnnullaRevoca, code, motivo, grace, loc)
}

func change(st *store.Store, src store.Source, op Op, code, motivo string, grace time.Duration, loc *time.Location) (*domain.Postazione, error) {
	var out *domain.Postazione
	err := st.Update(func(tx *store.Tx) error {
		var err error
		out, err = ChangePostazioneTx(tx, src, op, code, motivo, grace, loc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ChangePostazioneTx applies op to the postazione code inside the caller's
// transaction (the console requests check the operator's authorization in
// the same one); grace and loc matter only to OpAnnullaRevoca.
func ChangePostazioneTx(tx *store.Tx, src store.Source, op Op, code, motivo string, grace time.Duration, loc *time.Location) (*domain.Postazione, error) {
	rule, ok := opRules[op]
	if !ok {
		return nil, fmt.Errorf("operazione %q sconosciuta (blocca, sblocca, revoca, annulla-revoca)", op)
	}
	code = strings.ToUpper(strings.TrimSpace(code))
	motivo = strings.TrimSpace(motivo)
	if motivo == "" {
		return nil, ErrMotivo
	}
	if src.Actor == "" {
		return nil, errors.New("postazioni: the operator (actor) is required")
	}
	p, err := tx.Postazione(code)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrPostazioneSconosciuta, code)
	}
	if err != nil {
		return nil, err
	}
	allowed := false
	for _, s := range rule.from {
		allowed = allowed || p.State == s
	}
	if !allowed {
		return nil, &ErrStato{Op: op, Code: code, State: p.State, Allowed: rule.from}
	}
	to := rule.to
	switch op {
	case OpBlocca:
		p.HoldSince = tx.Now
	case OpSblocca:
		p.HoldSince = time.Time{}
	case OpRevoca:
		p.PrevState = p.State
		p.RevokedAt = tx.Now
		p.RevocationReason = pki.RevocationReason(motivo)
	case OpAnnullaRevoca:
		if RevokeFinal(p, grace, tx.Now) {
			return nil, &ErrFinestraScaduta{Code: code, RevokedAt: firstSet(p.RevokedAt, p.Updated), Grace: grace, Loc: loc}
		}
		to = p.PrevState
		if to != domain.CertAttivo && to != domain.CertBloccato {
			// Revoked before PrevState was recorded: a hold time
			// means it was BLOCCATO.
			to = domain.CertAttivo
			if !p.HoldSince.IsZero() {
				to = domain.CertBloccato
			}
		}
		if to == domain.CertAttivo {
			p.HoldSince = time.Time{}
		}
		p.PrevState = ""
		p.RevokedAt = time.Time{}
		p.RevocationReason = 0
	}
	p.State = to
	p.Reason = motivo
	p.Updated = tx.Now
	if err := tx.PutPostazione(p); err != nil {
		return nil, err
	}
	if err := tx.Record(src, rule.action, "postazione", p.Code, motivo); err != nil {
		return nil, err
	}
	return p, nil
}

// ErrComuneSconosciuto is returned (wrapped, with the code) for a comune
// that is not in the store.
var ErrComuneSconosciuto = errors.New("comune sconosciuto")

// CertStates lists every state of a workstation certificate.
var CertStates = []domain.CertState{
	domain.CertRichiesta, domain.CertAttivo, domain.CertBloccato,
	domain.CertRevocaInCorso, domain.CertRevocato, domain.CertScaduto,
}

// ParseCertState returns the CertState named s (case and surrounding
// spaces ignored); an unknown name is an error listing the states.
func ParseCertState(s string) (domain.CertState, error) {
	s = strings.TrimSpace(s)
	names := make([]string, len(CertStates))
	for i, c := range CertStates {
		if strings.EqualFold(s, string(c)) {
			return c, nil
		}
		names[i] = string(c)
	}
	return "", fmt.Errorf("stato %q sconosciuto: usare uno tra %s", s, strings.Join(names, ", "))
}

// PostazioniOf returns the postazioni of comune istat in code order, only
// those in state when it is not empty. An unknown comune gives
// ErrComuneSconosciuto naming it.
func PostazioniOf(tx *store.Tx, istat string, state domain.CertState) ([]*domain.Postazione, error) {
	istat = strings.TrimSpace(istat)
	if _, err := tx.Comune(istat); errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrComuneSconosciuto, istat)
	} else if err != nil {
		return nil, err
	}
	var out []*domain.Postazione
	err := tx.PostazioniOfComune(istat, func(p *domain.Postazione) error {
		if state == "" || p.State == state {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out, nil
}

// ErrNessunCertificato is returned by BundleComune when the comune has no
// certificate in the state asked for.
var ErrNessunCertificato = errors.New("nessun certificato da scaricare")

// BundleComune ("Scarica tutti") writes to dir one ZIP of the certificates
// of comune istat in state (ATTIVO when empty), in the format of the
// certificati job's bundles (<code>.p12 and password.txt), named
// <ISTAT>-certificati-<YYYYMMDD-HHMMSS>.zip with now in loc. The ZIP is
// built and verified by export/bundle, written to a temporary name with
// mode 0600 (it holds the passwords) and renamed. It returns the path and
// the number of certificates; with none it writes nothing.
func BundleComune(ctx context.Context, st *store.Store, s *store.Sealer, istat string, state domain.CertState, dir string, now time.Time, loc *time.Location) (string, int, error) {
	if s == nil {
		return "", 0, errors.New("keys.seal is missing: the certificates cannot be unsealed (run `anprsec init`)")
	}
	if state == "" {
		state = domain.CertAttivo
	}
	if loc == nil {
		loc = time.UTC
	}
	istat = strings.TrimSpace(istat)
	var entries []bundle.Entry
	err := st.View(func(tx *store.Tx) error {
		ps, err := PostazioniOf(tx, istat, state)
		if err != nil {
			return err
		}
		codes := make([]string, 0, len(ps))
		for _, p := range ps {
			if len(p.P12Sealed) == 0 {
				continue // no certificate issued (yet)
			}
			codes = append(codes, p.Code)
		}
		entries, err = BundleEntries(tx, s, &store.Bundle{ISTAT: istat, Codes: codes})
		return err
	})
	if err != nil {
		return "", 0, err
	}
	if len(entries) == 0 {
		return "", 0, fmt.Errorf("%w: il comune %s non ha certificati nello stato %s", ErrNessunCertificato, istat, state)
	}
	now = now.In(loc)
	data, err := bundle.Build(ctx, entries, now)
	if err != nil {
		return "", 0, err
	}
	if err := bundle.Verify(data, entries); err != nil {
		return "", 0, err
	}
	name := path.Base(bundle.Path(istat, now.Format("20060102-150405")))
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", 0, err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return "", 0, err
	}
	if _, err := f.Write(data); err != nil {
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	// Never replace an earlier bundle (one of the same second included):
	// link the finished file under the first free name, then drop the
	// temporary name.
	base := strings.TrimSuffix(name, ".zip")
	for i := 1; ; i++ {
		dst := filepath.Join(dir, name)
		if i > 1 {
			dst = filepath.Join(dir, fmt.Sprintf("%s-%d.zip", base, i))
		}
		err := os.Link(tmp, dst)
		if errors.Is(err, os.ErrExist) && i < 1000 {
			continue
		}
		if err != nil {
			return "", 0, err
		}
		os.Remove(tmp)
		ok = true
		return dst, len(entries), nil
	}
}
