package lifecycle

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/store"
)

// The first certificate of a comune (docs/rules.md#the-first-certificate):
// the sindaco receives at his personal e-mail the comune's first
// workstation certificate with its password, so that he can set up the
// first workstation before any ALP exists. It is the lowest -PC- code of
// the first batch that issues certificates of the comune, never the server
// certificate; a comune that already had an issued workstation certificate
// (before this rule existed) gets none.

// QueueFirstCertificate is called in the transaction that makes the
// certificates issued of comune istat ATTIVO. When they are the comune's
// first workstation certificates it records the first one on the comune
// (Comune.FirstCert) and queues its e-mail to the ASC (store.MailFirstCert,
// sent by invio-pin, which reads the sealed P12 and password then), with a
// history entry; it returns its code, or "" when there is none to send.
func QueueFirstCertificate(tx *store.Tx, src store.Source, istat string, issued []*domain.Postazione) (string, error) {
	c, err := tx.Comune(istat)
	if err != nil {
		return "", err
	}
	if c.FirstCert != "" {
		return "", nil
	}
	now := map[string]bool{}
	var candidates []string
	for _, p := range issued {
		now[p.Code] = true
		if isWorkstation(p) {
			candidates = append(candidates, p.Code)
		}
	}
	if len(candidates) == 0 {
		return "", nil
	}
	earlier := false
	if err := tx.PostazioniOfComune(istat, func(p *domain.Postazione) error {
		if !now[p.Code] && isWorkstation(p) && (p.Serial != "" || len(p.CertDER) > 0) {
			earlier = true
		}
		return nil
	}); err != nil {
		return "", err
	}
	if earlier {
		return "", nil
	}
	sort.Strings(candidates)
	first := candidates[0]
	c.FirstCert, c.Updated = first, tx.Now
	if err := tx.PutComune(c); err != nil {
		return "", err
	}
	if _, err := tx.QueueMail(&store.Mail{ID: store.FirstCertMailID(first), Kind: store.MailFirstCert, Code: first, ISTAT: istat}); err != nil {
		return "", err
	}
	return first, tx.Record(src, "postazione.primo-certificato", "postazione", first,
		fmt.Sprintf("primo certificato del comune %s: P12 e password in coda per l'e-mail personale del sindaco (ASC)", istat))
}

// isWorkstation reports whether p is a workstation certificate
// (<ISTAT>-PC-<NNNN>), not the server's.
func isWorkstation(p *domain.Postazione) bool {
	return !p.Server && strings.Contains(p.Code, "-PC-")
}

// ASCAddress returns the codice fiscale and personal e-mail of the ASC of
// comune istat: its ATTIVA utenza with profile ASC ("" when none).
func ASCAddress(tx *store.Tx, istat string) (cf, email string, err error) {
	err = tx.UtenzeOfComune(istat, func(u *domain.Utenza) error {
		if cf == "" && u.State == domain.UtenzaAttiva && u.Has(domain.ASC) {
			cf, email = u.CF, u.Email
		}
		return nil
	})
	return cf, email, err
}

// ResendFirstCertificate queues again the first-certificate e-mail of
// comune istat after it failed (no ASC, an address or key fixed since):
// only while the certificate is ATTIVO and its message is set aside as
// failed (ErrNothingToResend when it is queued or was sent, with when and
// to whom in loc). It returns the certificate's code.
func ResendFirstCertificate(tx *store.Tx, src store.Source, istat, motivo string, loc *time.Location) (string, error) {
	if loc == nil {
		loc = time.UTC
	}
	istat = strings.TrimSpace(istat)
	c, err := tx.Comune(istat)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %s", ErrUnknownComune, istat)
	}
	if err != nil {
		return "", err
	}
	if c.FirstCert == "" {
		return "", fmt.Errorf("%w: il comune %s non ha un primo certificato registrato (nessun certificato di postazione emesso dopo l'attivazione dell'invio al sindaco)", ErrNothingToResend, istat)
	}
	p, err := tx.Postazione(c.FirstCert)
	if err != nil {
		return "", fmt.Errorf("postazione %s: %w", c.FirstCert, err)
	}
	id := store.FirstCertMailID(p.Code)
	m, err := tx.Mail(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "", err
	case m.State == store.MailQueued:
		return "", fmt.Errorf("%w: il messaggio del certificato %s è già in coda", ErrNothingToResend, p.Code)
	case m.State == store.MailSent:
		return "", fmt.Errorf("%w: il certificato %s è già stato inviato il %s a %s", ErrNothingToResend, p.Code, m.Sent.In(loc).Format("02/01/2006 15:04"), m.To)
	}
	if p.State != domain.CertAttivo || len(p.P12Sealed) == 0 {
		return "", fmt.Errorf("%w: il certificato %s è %s: si invia solo un certificato ATTIVO", ErrNothingToResend, p.Code, p.State)
	}
	if _, err := tx.QueueMail(&store.Mail{ID: id, Kind: store.MailFirstCert, Code: p.Code, ISTAT: p.ISTAT}); err != nil {
		return "", err
	}
	detail := "primo certificato di nuovo in coda per l'e-mail personale del sindaco (ASC)"
	if m := strings.TrimSpace(motivo); m != "" {
		detail += ": " + m
	}
	return p.Code, tx.Record(src, "postazione.primo-certificato-reinvio", "postazione", p.Code, detail)
}
