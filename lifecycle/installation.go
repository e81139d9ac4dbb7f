package lifecycle

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"anprsec/domain"
	"anprsec/pki"
	"anprsec/store"
)

// The register of installations (docs/rules.md#installation-register): an
// ALP declares on which PC or server a certificate of his comune is
// installed. anprsec keeps the register in the store, one record per
// certificate (store.Installation), and each change in the history chain;
// `anprsec history verify` checks every record against its last entry.

// InstallationAction is the history action of a change of the register.
const InstallationAction = "installazione.registra"

// MaxInstallField is the longest value of a field of the register, in
// characters: a record always fits whole in its history entry.
const MaxInstallField = 200

// InstallationRequest is what an ALP declares.
type InstallationRequest struct {
	ISTAT   string // the comune asking
	Code    string // the postazione
	Serial  string // the certificate; empty: the current one
	Host    string // the PC or server's name
	Address string // its network address or place
	Office  string // the office
	Note    string
}

// RegisterInstallationTx records, in the caller's transaction, that the
// certificate req.Serial of postazione req.Code is installed on req.Host.
// The postazione must be of comune req.ISTAT, the serial its current
// certificate or a predecessor still valid; a revoked, superseded or
// expired certificate, or a postazione without a certificate, is refused.
// A second declaration for the same certificate replaces the record (a
// change, with its own history entry). Registering the current certificate
// ends the overlap of its predecessors (docs/rules.md#renewal): the caller
// republishes the CRL when crl is true.
func RegisterInstallationTx(tx *store.Tx, src store.Source, req InstallationRequest) (in *store.Installation, crl bool, ref *Refusal, err error) {
	code := strings.ToUpper(strings.TrimSpace(req.Code))
	if ref := cleanInstallFields(&req); ref != nil {
		return nil, false, ref, nil
	}
	if src.Actor == "" {
		return nil, false, nil, errors.New("installazioni: the operator (actor) is required")
	}
	p, err := tx.Postazione(code)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, Refuse("POSTAZIONE_SCONOSCIUTA", "la postazione %s non esiste", code), nil
	}
	if err != nil {
		return nil, false, nil, err
	}
	if p.ISTAT != req.ISTAT {
		return nil, false, Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, req.ISTAT), nil
	}
	serial, ref := installableSerial(p, req.Serial, tx.Now)
	if ref != nil {
		return nil, false, ref, nil
	}
	in, err = tx.Installation(code, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		in = &store.Installation{Code: code, Serial: serial, Created: tx.Now}
	case err != nil:
		return nil, false, nil, err
	}
	in.Host, in.Address, in.Office, in.Note = req.Host, req.Address, req.Office, req.Note
	in.By, in.Updated = src.Actor, tx.Now
	if err := tx.PutInstallation(in); err != nil {
		return nil, false, nil, err
	}
	if err := tx.Record(src, InstallationAction, store.InstallationKind, in.Key(), in.Detail()); err != nil {
		return nil, false, nil, err
	}
	crl, err = endOverlapOnInstall(tx, src, p, serial)
	if err != nil {
		return nil, false, nil, err
	}
	return in, crl, nil, nil
}

// cleanInstallFields normalises the blanks of the declared fields and
// refuses a field too long or with control characters, or no host.
func cleanInstallFields(req *InstallationRequest) *Refusal {
	fields := []struct {
		name string
		v    *string
	}{{"nome host", &req.Host}, {"indirizzo", &req.Address}, {"ufficio", &req.Office}, {"note", &req.Note}}
	for _, f := range fields {
		*f.v = strings.Join(strings.Fields(*f.v), " ")
		if len([]rune(*f.v)) > MaxInstallField {
			return Refuse("INSTALLAZIONE_CAMPO", "il campo %s supera %d caratteri", f.name, MaxInstallField)
		}
		if strings.IndexFunc(*f.v, unicode.IsControl) >= 0 {
			return Refuse("INSTALLAZIONE_CAMPO", "il campo %s contiene caratteri di controllo", f.name)
		}
	}
	if req.Host == "" {
		return Refuse("CAMPO_MANCANTE", "il nome host del PC o server è obbligatorio")
	}
	return nil
}

// installableSerial returns the serial a declaration is about (empty: the
// current certificate's), refusing one that is none of p's certificates,
// revoked, superseded, in revocation or expired at now.
func installableSerial(p *domain.Postazione, serial string, now time.Time) (string, *Refusal) {
	code := p.Code
	serial = strings.ToUpper(strings.TrimSpace(serial))
	if serial == "" {
		serial = strings.ToUpper(p.Serial)
	}
	if serial == "" {
		return "", Refuse("STATO", "la postazione %s non ha ancora un certificato (%s)", code, p.State)
	}
	rev, _, ok := RevocationOfSerial(p, serial, now)
	if !ok {
		return "", Refuse("SERIALE_SCONOSCIUTO", "il certificato %s non è della postazione %s", serial, code)
	}
	notAfter := p.NotAfter
	for _, pc := range p.Predecessors {
		if strings.EqualFold(pc.Serial, serial) {
			notAfter = pc.NotAfter
		}
	}
	switch {
	case rev.Revoked && rev.Reason != pki.ReasonCertificateHold: // a hold may still be lifted
		return "", Refuse("CERTIFICATO_REVOCATO", "il certificato %s della postazione %s è revocato: non si registra la sua installazione", serial, code)
	case p.State == domain.CertRevocaInCorso && strings.EqualFold(serial, p.Serial):
		return "", Refuse("CERTIFICATO_REVOCATO", "il certificato %s della postazione %s è in revoca: non si registra la sua installazione", serial, code)
	case !notAfter.IsZero() && !now.Before(notAfter):
		return "", Refuse("CERTIFICATO_SCADUTO", "il certificato %s della postazione %s è scaduto", serial, code)
	}
	return serial, nil
}

// endOverlapOnInstall ends, in tx, the overlap of the predecessors of p
// replaced by serial when serial is p's current certificate: its
// installation is registered (docs/rules.md#renewal). It reports whether
// a predecessor was revoked (the CRL must be republished).
func endOverlapOnInstall(tx *store.Tx, src store.Source, p *domain.Postazione, serial string) (bool, error) {
	if !strings.EqualFold(serial, p.Serial) {
		return false, nil
	}
	changed := false
	for i := range p.Predecessors {
		pc := &p.Predecessors[i]
		if pc.Final.IsZero() && pc.InstalledAt.IsZero() && tx.Now.Before(pc.SupersededAt()) && strings.EqualFold(pc.SupersededBy, serial) {
			pc.InstalledAt = tx.Now
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	if _, err := FinalizeSupersessions(tx, src, p); err != nil {
		return false, err
	}
	p.Updated = tx.Now
	return true, tx.PutPostazione(p)
}

// InstallationsOf returns the register of comune istat in the order of
// code and serial; an unknown comune gives ErrUnknownComune.
func InstallationsOf(tx *store.Tx, istat string) ([]*store.Installation, error) {
	istat = strings.TrimSpace(istat)
	if _, err := tx.Comune(istat); errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownComune, istat)
	} else if err != nil {
		return nil, err
	}
	var out []*store.Installation
	err := tx.InstallationsOf(istat, func(in *store.Installation) error {
		out = append(out, in)
		return nil
	})
	return out, err
}
