package lifecycle

import (
	"time"

	"anprsec/domain"
	"anprsec/pki"
)

// Revocation is what a relying party learns of a workstation certificate,
// from the CRL and from OCSP alike (docs/rules.md#postazione-lifecycle).
type Revocation struct {
	Revoked bool      // listed in the CRL; "revoked" over OCSP
	At      time.Time // revocation time
	Reason  int       // pki.Reason*
}

// RevocationOf returns the revocation of p's certificate:
//   - BLOCCATO: revoked, reason certificateHold, since it was blocked;
//   - REVOCATA IN LAVORAZIONE: revoked, reason certificateHold (the
//     revocation may still be undone), since the revoke request;
//   - REVOCATO: revoked for good with the reason of the revocation
//     (RevocationReason), since the revoke request;
//   - any other state (ATTIVO, SCADUTO): not revoked; an unblocked
//     certificate simply leaves the CRL and is good again over OCSP.
//
// A time missing in an older record is the postazione's last change.
func RevocationOf(p *domain.Postazione) Revocation {
	switch p.State {
	case domain.CertBloccato:
		return Revocation{true, firstSet(p.HoldSince, p.Updated), pki.ReasonCertificateHold}
	case domain.CertRevocaInCorso:
		return Revocation{true, firstSet(p.RevokedAt, p.Updated), pki.ReasonCertificateHold}
	case domain.CertRevocato:
		return Revocation{true, firstSet(p.RevokedAt, p.Updated), p.RevocationReason}
	}
	return Revocation{}
}

// RevokedStates are the states RevocationOf calls revoked, the CRL's.
var RevokedStates = []domain.CertState{domain.CertBloccato, domain.CertRevocaInCorso, domain.CertRevocato}

func firstSet(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
