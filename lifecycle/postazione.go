package lifecycle

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/pki"
	"anprsec/store"
)

// The workstation certificate lifecycle (docs/rules.md#postazione-lifecycle):
//
//	RICHIESTA IN LAVORAZIONE --(job certificati)--> ATTIVO
//	ATTIVO --OpBlockPostazione--> BLOCCATO --OpUnblockPostazione--> ATTIVO
//	ATTIVO|BLOCCATO --OpRevokePostazione--> REVOCATA IN LAVORAZIONE --(certificati, after pki.revoke_grace)--> REVOCATO
//	REVOCATA IN LAVORAZIONE --OpUndoRevocation (inside pki.revoke_grace)--> the state before the revoke
//	ATTIVO --(job scadenze, past NotAfter)--> SCADUTO
//
// The back-office CLI (`anprsec postazioni blocca|sblocca|revoca|
// annulla-revoca`) and the console requests of the comuni share these
// operations. Each one is a single store transaction carrying the new state
// and its history entry (actor = the operator, detail = the motivo); the
// caller then runs the crl job so that the CRL shows the change at once.

// CRLDirtyMeta marks, in the transaction of every change of a certificate's
// state, that the CRL must be republished; the crl job clears it once the
// CRL is out, so a crash between the change and the CRL loses nothing.
const CRLDirtyMeta = "crl-dirty"

// postazioneRule says from which states an operation may start and where
// it leads.
type postazioneRule struct {
	from   []domain.CertState
	to     domain.CertState
	action string // history action
	verb   string // Italian participle, for messages: "bloccata"
}

var postazioneRules = map[Op]postazioneRule{
	OpBlockPostazione:   {[]domain.CertState{domain.CertAttivo}, domain.CertBloccato, "postazione.blocca", "bloccata"},
	OpUnblockPostazione: {[]domain.CertState{domain.CertBloccato}, domain.CertAttivo, "postazione.sblocca", "sbloccata"},
	OpRevokePostazione:  {[]domain.CertState{domain.CertAttivo, domain.CertBloccato}, domain.CertRevocaInCorso, "postazione.revoca", "revocata"},
	// to is the state before the revoke (PrevState), decided per postazione.
	OpUndoRevocation: {[]domain.CertState{domain.CertRevocaInCorso}, "", "postazione.annulla-revoca", "ripristinata (annullamento della revoca)"},
}

// ErrUnknownPostazione is returned (wrapped) for an unknown code.
var ErrUnknownPostazione = errors.New("postazione sconosciuta")

// ChangePostazione applies op to the postazione code in one transaction
// and returns the postazione as committed. A state the operation may not
// start from gives *StateError and changes nothing.
func ChangePostazione(st *store.Store, src store.Source, op Op, code, motivo string) (*domain.Postazione, error) {
	if op == OpUndoRevocation {
		return nil, errors.New("postazioni: annulla-revoca needs the undo window: use UndoRevocation")
	}
	return ChangePostazioneWithin(st, src, op, code, motivo, 0, nil)
}

// UndoWindowError is returned by UndoRevocation when the undo window of
// a revocation has passed: the revocation is (or is about to be) final.
type UndoWindowError struct {
	Code      string
	RevokedAt time.Time
	Until     time.Time // the end of the undo window
	Loc       *time.Location
}

func (e *UndoWindowError) Error() string {
	loc := e.Loc
	if loc == nil {
		loc = time.UTC
	}
	const layout = "02/01/2006 15:04 MST" // as an operator reads dates
	return fmt.Sprintf("la revoca della postazione %s, chiesta il %s, non può più essere annullata: "+
		"il periodo per annullarla (%s) è scaduto il %s; la revoca è definitiva, o lo diventa al prossimo batch certificati",
		e.Code, e.RevokedAt.In(loc).Format(layout), e.Until.Sub(e.RevokedAt), e.Until.In(loc).Format(layout))
}

// RevokeFinal reports whether the revocation of p (REVOCATA IN
// LAVORAZIONE) is past its undo window at now: the window in force when it
// was asked (UndoUntil), or, for a revocation that recorded none, RevokedAt
// + grace (today's pki.revoke_grace). A revocation without a request time
// (older records) counts from Updated.
func RevokeFinal(p *domain.Postazione, grace time.Duration, now time.Time) bool {
	return !undoUntil(p, grace).After(now)
}

// undoUntil is the end of the undo window of p's revocation.
func undoUntil(p *domain.Postazione, grace time.Duration) time.Time {
	if !p.UndoUntil.IsZero() {
		return p.UndoUntil
	}
	return revokedAt(p).Add(grace)
}

// UndoRevocation undoes the revocation of a REVOCATA IN LAVORAZIONE
// certificate while its undo window (grace, pki.revoke_grace) is open: the
// certificate goes back to the state it had before the revoke (ATTIVO or
// BLOCCATO), with a history entry. Outside the window it gives
// *UndoWindowError, in another state *StateError, and changes nothing.
// loc is the zone of the dates in the messages (nil: UTC).
func UndoRevocation(st *store.Store, src store.Source, code, motivo string, grace time.Duration, loc *time.Location) (*domain.Postazione, error) {
	return ChangePostazioneWithin(st, src, OpUndoRevocation, code, motivo, grace, loc)
}

// ChangePostazioneWithin applies op in one transaction with the undo window
// in force (grace, pki.revoke_grace): a revocation records its window's end,
// an undo is judged by it; loc is the zone of dates in messages.
func ChangePostazioneWithin(st *store.Store, src store.Source, op Op, code, motivo string, grace time.Duration, loc *time.Location) (*domain.Postazione, error) {
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
// the same one); grace and loc matter only to OpUndoRevocation.
func ChangePostazioneTx(tx *store.Tx, src store.Source, op Op, code, motivo string, grace time.Duration, loc *time.Location) (*domain.Postazione, error) {
	rule, ok := postazioneRules[op]
	if !ok {
		return nil, fmt.Errorf("operazione %q sconosciuta (blocca, sblocca, revoca, annulla-revoca)", op)
	}
	p, motivo, err := postazioneFor(tx, src, code, motivo)
	if err != nil {
		return nil, err
	}
	if op == OpUndoRevocation && p.State == domain.CertRevocato {
		return nil, &UndoWindowError{Code: p.Code, RevokedAt: revokedAt(p), Until: undoUntil(p, grace), Loc: loc}
	}
	allowed := false
	for _, s := range rule.from {
		allowed = allowed || p.State == s
	}
	if !allowed {
		return nil, &StateError{Item: ItemPostazione, ID: p.Code, State: string(p.State), Action: rule.verb, Allowed: states(rule.from)}
	}
	to := rule.to
	switch op {
	case OpBlockPostazione:
		p.HoldSince = tx.Now
	case OpUnblockPostazione:
		p.HoldSince = time.Time{}
	case OpRevokePostazione:
		p.PrevState = p.State
		p.RevokedAt = tx.Now
		p.RevocationReason = pki.RevocationReason(motivo)
		p.RevokedBy = src.Actor
		p.Renewal = nil // a pending renewal is dropped (docs/rules.md#renewal)
		p.UndoUntil = time.Time{}
		if grace > 0 {
			p.UndoUntil = tx.Now.Add(grace)
		}
	case OpUndoRevocation:
		if RevokeFinal(p, grace, tx.Now) {
			return nil, &UndoWindowError{Code: p.Code, RevokedAt: revokedAt(p), Until: undoUntil(p, grace), Loc: loc}
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
		p.UndoUntil = time.Time{}
		p.RevocationReason = 0
		p.RevokedBy = ""
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
	if err := tx.SetMeta(CRLDirtyMeta, true); err != nil {
		return nil, err
	}
	return p, nil
}

// ErrUnknownComune is returned (wrapped, with the code) for a comune
// that is not in the store.
var ErrUnknownComune = errors.New("comune sconosciuto")

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
// ErrUnknownComune naming it.
func PostazioniOf(tx *store.Tx, istat string, state domain.CertState) ([]*domain.Postazione, error) {
	istat = strings.TrimSpace(istat)
	if _, err := tx.Comune(istat); errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownComune, istat)
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

// revokedAt is when the revocation of p was asked; a revocation recorded
// before RevokedAt existed counts from the postazione's last change.
func revokedAt(p *domain.Postazione) time.Time {
	if p.RevokedAt.IsZero() {
		return p.Updated
	}
	return p.RevokedAt
}

// postazioneFor checks the motivo and the operator of a change of
// postazione code and reads it.
func postazioneFor(tx *store.Tx, src store.Source, code, motivo string) (*domain.Postazione, string, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	motivo, err := checkMotivo(motivo)
	if err != nil {
		return nil, "", err
	}
	if src.Actor == "" {
		return nil, "", errors.New("postazioni: the operator (actor) is required")
	}
	p, err := tx.Postazione(code)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: %s", ErrUnknownPostazione, code)
	}
	if err != nil {
		return nil, "", err
	}
	return p, motivo, nil
}
