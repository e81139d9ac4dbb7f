package jobs

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/pki"
	"anprsec/store"
)

// Operations on a workstation certificate (SPEC.md, lifecycle):
//
//	ATTIVO --Blocca--> BLOCCATO --Sblocca--> ATTIVO
//	ATTIVO|BLOCCATO --Revoca--> REVOCATA IN LAVORAZIONE --(certificati)--> REVOCATO
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
	rule, ok := opRules[op]
	if !ok {
		return nil, fmt.Errorf("operazione %q sconosciuta (blocca, sblocca, revoca)", op)
	}
	code = strings.ToUpper(strings.TrimSpace(code))
	motivo = strings.TrimSpace(motivo)
	if motivo == "" {
		return nil, ErrMotivo
	}
	if src.Actor == "" {
		return nil, errors.New("postazioni: the operator (actor) is required")
	}
	var out *domain.Postazione
	err := st.Update(func(tx *store.Tx) error {
		p, err := tx.Postazione(code)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrPostazioneSconosciuta, code)
		}
		if err != nil {
			return err
		}
		allowed := false
		for _, s := range rule.from {
			allowed = allowed || p.State == s
		}
		if !allowed {
			return &ErrStato{Op: op, Code: code, State: p.State, Allowed: rule.from}
		}
		p.State = rule.to
		p.Reason = motivo
		p.Updated = tx.Now
		switch op {
		case OpBlocca:
			p.HoldSince = tx.Now
		case OpSblocca:
			p.HoldSince = time.Time{}
		case OpRevoca:
			p.RevokedAt = tx.Now
			p.RevocationReason = pki.RevocationReason(motivo)
		}
		if err := tx.PutPostazione(p); err != nil {
			return err
		}
		if err := tx.Record(src, rule.action, "postazione", p.Code, motivo); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
