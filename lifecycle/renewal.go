package lifecycle

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/pki"
	"anprsec/store"
)

// Renewal of a workstation certificate (docs/rules.md#renewal):
//
//	ATTIVO --OpRenewPostazione--> ATTIVO with a pending renewal
//	       --(job certificati)--> ATTIVO with a new certificate; the old one
//	                              becomes a predecessor (domain.PrevCert)
//	predecessor --(overlap over, or the successor's installation
//	               registered)--> revoked, reason superseded
//
// The predecessor stays valid for the overlap (pki.renew_overlap, default
// 30 days) after its successor's issue, or until an ALP registers the
// installation of the successor (REGISTRA_INSTALLAZIONE), whichever comes
// first; then the CRL and OCSP answer it revoked with reason superseded.
// That revocation is planned, so it has no undo window. A renewal issued
// while an earlier predecessor is still in its overlap ends that overlap:
// at most two certificates of one code are valid, and only during the
// overlap.

// ErrRenewalPending is returned (wrapped) when a renewal is asked for a
// postazione that already has one pending.
var ErrRenewalPending = errors.New("rinnovo già richiesto")

// RenewalAction is the history action of a renewal request.
const RenewalAction = "postazione.rinnovo-richiesto"

// RequestRenewal asks, in one transaction, for a new certificate of the
// postazione code (see RequestRenewalTx).
func RequestRenewal(st *store.Store, src store.Source, code, motivo string) (*domain.Postazione, error) {
	var out *domain.Postazione
	err := st.Update(func(tx *store.Tx) error {
		var err error
		out, err = RequestRenewalTx(tx, src, code, motivo, false)
		return err
	})
	return out, err
}

// RequestRenewalTx records, inside the caller's transaction, a pending
// renewal of postazione code: it must be ATTIVO (a blocked, revoked or
// expired certificate is not renewed) and have no renewal pending
// (ErrRenewalPending). The next certificati batch issues the new
// certificate. auto marks a renewal asked by the scadenze job.
func RequestRenewalTx(tx *store.Tx, src store.Source, code, motivo string, auto bool) (*domain.Postazione, error) {
	p, motivo, err := postazioneFor(tx, src, code, motivo)
	if err != nil {
		return nil, err
	}
	if p.State != domain.CertAttivo {
		return nil, &StateError{Item: ItemPostazione, ID: p.Code, State: string(p.State), Action: "rinnovata", Allowed: []string{string(domain.CertAttivo)}}
	}
	if p.Renewal != nil {
		return nil, fmt.Errorf("%w: la postazione %s ha già un rinnovo in lavorazione, chiesto il %s",
			ErrRenewalPending, p.Code, p.Renewal.Requested.Format("02/01/2006"))
	}
	p.Renewal = &domain.RenewalRequest{Requested: tx.Now, By: src.Actor, Motivo: motivo, Auto: auto}
	p.Updated = tx.Now
	if err := tx.PutPostazione(p); err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("rinnovo del certificato %s (scade %s): %s", p.Serial, p.NotAfter.UTC().Format("2006-01-02"), motivo)
	if err := tx.Record(src, RenewalAction, "postazione", p.Code, detail); err != nil {
		return nil, err
	}
	return p, nil
}

// Supersede makes the certificate (serial, der, notAfter) the
// current one of p, which must have a pending renewal: the certificate it
// replaces becomes a predecessor valid for overlap from now, and any
// earlier predecessor still in its overlap stops being valid now. The
// predecessor keeps its issuer (docs/rules.md#ca-rollover); the caller
// records the new certificate's (Postazione.Issuer) and stores p with its
// history entry.
func Supersede(p *domain.Postazione, serial string, der []byte, notAfter, now time.Time, overlap time.Duration) {
	for i := range p.Predecessors {
		pc := &p.Predecessors[i]
		if pc.SupersededAt().After(now) {
			pc.OverlapUntil = now
		}
	}
	prev := domain.PrevCert{Serial: p.Serial, NotAfter: p.NotAfter, CertDER: p.CertDER,
		SupersededBy: serial, Replaced: now, OverlapUntil: now.Add(overlap), Issuer: p.Issuer}
	if c, err := x509.ParseCertificate(p.CertDER); err == nil {
		prev.NotBefore = c.NotBefore
	}
	if r := p.Renewal; r != nil {
		prev.Motivo, prev.By = r.Motivo, r.By
	}
	p.Predecessors = append(p.Predecessors, prev)
	p.PrevSerial = p.Serial
	p.Serial, p.CertDER, p.NotAfter = serial, der, notAfter
	p.Renewal = nil
	p.Warned, p.Unwarned = 0, 0
}

// RevocationOfSerial returns what a relying party learns at now of the
// certificate serial of p (the current one or a predecessor), and when
// that answer changes by itself (zero: not before a change of the store).
// ok is false when serial is none of p's certificates.
//
// A predecessor:
//   - revoked with the postazione's reason when the postazione was
//     revoked for good (REVOCATO) before the predecessor was superseded;
//   - revoked, reason superseded, from its SupersededAt on;
//   - before that, on hold while the postazione is BLOCCATO or REVOCATA
//     IN LAVORAZIONE, otherwise good.
func RevocationOfSerial(p *domain.Postazione, serial string, now time.Time) (r Revocation, changes time.Time, ok bool) {
	if strings.EqualFold(serial, p.Serial) {
		return RevocationOf(p), time.Time{}, true
	}
	for i := range p.Predecessors {
		pc := &p.Predecessors[i]
		if !strings.EqualFold(serial, pc.Serial) {
			continue
		}
		r, changes = PredecessorRevocation(p, pc, now)
		return r, changes, true
	}
	return Revocation{}, time.Time{}, false
}

// PredecessorRevocation is RevocationOfSerial for the predecessor pc of p.
func PredecessorRevocation(p *domain.Postazione, pc *domain.PrevCert, now time.Time) (Revocation, time.Time) {
	end := pc.SupersededAt()
	if p.State == domain.CertRevocato && revokedAt(p).Before(end) {
		return Revocation{true, revokedAt(p), p.RevocationReason}, time.Time{}
	}
	if !now.Before(end) {
		return Revocation{true, end, pki.ReasonSuperseded}, time.Time{}
	}
	if cur := RevocationOf(p); cur.Revoked {
		return Revocation{true, cur.At, pki.ReasonCertificateHold}, end
	}
	return Revocation{}, end
}

// SupersededAction is the history action of a predecessor that stopped
// being valid.
const SupersededAction = "postazione.sostituita"

// FinalizeSupersessions records, in tx, every predecessor of p whose
// overlap is over at tx.Now and not yet recorded: Final set, a history
// entry each, the CRL marked for republication. It reports whether p
// changed (the caller stores it).
func FinalizeSupersessions(tx *store.Tx, src store.Source, p *domain.Postazione) (bool, error) {
	changed := false
	for i := range p.Predecessors {
		pc := &p.Predecessors[i]
		if !pc.Final.IsZero() || tx.Now.Before(pc.SupersededAt()) {
			continue
		}
		pc.Final = tx.Now
		changed = true
		why := "fine della sovrapposizione"
		if !pc.InstalledAt.IsZero() && pc.InstalledAt.Before(pc.OverlapUntil) {
			why = "installazione del successore registrata"
		}
		if err := tx.Record(src, SupersededAction, "postazione", p.Code,
			fmt.Sprintf("certificato %s sostituito da %s (%s): revocato, motivo CRL superseded", pc.Serial, pc.SupersededBy, why)); err != nil {
			return false, err
		}
	}
	if changed {
		if err := tx.SetMeta(CRLDirtyMeta, true); err != nil {
			return false, err
		}
	}
	return changed, nil
}
