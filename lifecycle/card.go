package lifecycle

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/store"
)

// The smart-card lifecycle (docs/rules.md#card-lifecycle). Each operation
// applies inside the caller's store transaction, so that the back-office
// CLI, the prefettura manifests and the console requests share it and check
// authorization in the same transaction:
//
//	RequestCard:  a new card RICHIESTA for a person without a usable one
//	(ordini-sc: RICHIESTA --> IN PRODUZIONE, first halves to the producer)
//	DeliverCard:  IN PRODUZIONE --> CONSEGNATA DALLA PREFETTURA (manifest row);
//	          the ASC's own card --> ATTIVA at once
//	ActivateCard: CONSEGNATA DALLA PREFETTURA --> ATTIVA (delivery to the holder)
//	BlockCard / UnblockCard: ATTIVA <--> BLOCCATA
//	ReplaceCard:  the current card REVOCATA at once, a new one RICHIESTA;
//	          with motivo "scadenza" the current card stays usable and the
//	          new one (Person.NextCard) takes its place when activated
//	RevokeCard:   the card REVOCATA for good (the holder's last utenza deleted)
//	ExpireCard:   a card past its expiry SCADUTA for good (job scadenze)
//
// Activation queues the e-mail of the second halves in the outbox, in the
// same transaction (store.QueueMail).

// Errors of the card operations; the messages are for an operator.
var (
	ErrCardUnknown = errors.New("smart card sconosciuta")
	ErrNoCard      = errors.New("la persona non ha una smart card")
	ErrNotHolder   = errors.New("la smart card non appartiene a questa persona")
)

// FindCard returns the card with serial, or, with serial empty, the current
// card of cf; when both are given the card must belong to cf.
func FindCard(tx *store.Tx, cf, serial string) (*domain.SmartCard, error) {
	cf = codfisc.Normalize(cf)
	serial = strings.ToUpper(strings.TrimSpace(serial))
	if serial == "" {
		if cf == "" {
			return nil, errors.New("indicare il codice fiscale o il seriale della smart card")
		}
		p, err := tx.Person(cf)
		if errors.Is(err, store.ErrNotFound) || (err == nil && p.Card == "") {
			return nil, fmt.Errorf("%w: %s", ErrNoCard, cf)
		}
		if err != nil {
			return nil, err
		}
		serial = p.Card
	}
	c, err := tx.Card(serial)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrCardUnknown, serial)
	}
	if err != nil {
		return nil, err
	}
	if cf != "" && c.CF != cf {
		return nil, fmt.Errorf("%w: %s è di %s, non di %s", ErrNotHolder, serial, c.CF, cf)
	}
	return c, nil
}

// RequestCard gives p a new card (RICHIESTA) requested through comune istat,
// unless p already has a card that is not over (REVOCATA or SCADUTA); it
// sets p.Card (the caller stores p) and returns the new serial, or "" when
// none was needed.
func RequestCard(tx *store.Tx, src store.Source, p *domain.Person, istat, prefix string) (string, error) {
	next, err := pendingNext(tx, p)
	if err != nil {
		return "", err
	}
	if next != "" {
		// The replacement already asked is the card he gets.
		return "", nil
	}
	if p.Card != "" {
		c, err := tx.Card(p.Card)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		if err == nil && !CardOver(c) {
			return "", nil
		}
	}
	serial, err := newCard(tx, src, p.CF, istat, prefix, "")
	if err != nil {
		return "", err
	}
	p.Card = serial
	return serial, nil
}

// newCard inserts a new card RICHIESTA of cf through comune istat, the
// replacement of card replaces when not "".
func newCard(tx *store.Tx, src store.Source, cf, istat, prefix, replaces string) (string, error) {
	n, err := tx.Sequence("smartcard")
	if err != nil {
		return "", err
	}
	serial := fmt.Sprintf("%s%010d", prefix, n)
	c := &domain.SmartCard{Serial: serial, CF: cf, ISTAT: istat, State: domain.CardRichiesta, Requested: tx.Now, Updated: tx.Now, Replaces: replaces}
	if err := tx.InsertCard(c); err != nil {
		return "", err
	}
	detail := "titolare " + cf + ", comune " + istat
	if replaces != "" {
		detail += "; sostituisce per scadenza la smart card " + replaces + ", che resta in uso fino all'attivazione di questa"
	}
	return serial, tx.Record(src, "smartcard.richiesta", "smartcard", serial, detail)
}

// CardOver reports whether card c is over for good: REVOCATA or SCADUTA.
func CardOver(c *domain.SmartCard) bool {
	return c.State == domain.CardRevocata || c.State == domain.CardScaduta
}

// CardUsable reports whether card c works at now: ATTIVA and not past its
// expiry, even before the scadenze job has marked it SCADUTA
// (docs/rules.md#expiry). Only a usable card counts for the comune
// invariant and lets its holder sign requests.
func CardUsable(c *domain.SmartCard, now time.Time) bool {
	return c.State == domain.CardAttiva && (c.Expires.IsZero() || c.Expires.After(now))
}

// CardExpired reports whether card c is past its expiry at now while not
// yet over: what ExpireCard turns SCADUTA.
func CardExpired(c *domain.SmartCard, now time.Time) bool {
	return !CardOver(c) && !c.Expires.IsZero() && !c.Expires.After(now)
}

// ExpireCard marks card c, past its expiry, SCADUTA for good
// (docs/rules.md#expiry): its unsent secrets are erased and its queued
// e-mail, if any, is set aside, as for a revocation. A card not yet
// expired, or already over, is refused.
func ExpireCard(tx *store.Tx, src store.Source, c *domain.SmartCard) error {
	if !CardExpired(c, tx.Now) {
		return &StateError{Item: ItemCard, ID: c.Serial, State: string(c.State), Action: "la scadenza",
			Allowed: states([]domain.CardState{domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata})}
	}
	prev := c.State
	c.State = domain.CardScaduta
	if err := dropSecrets(tx, c, "smart card scaduta prima dell'invio"); err != nil {
		return err
	}
	if err := promoteNext(tx, c); err != nil {
		return err
	}
	return putCard(tx, src, c, "smartcard.scade", fmt.Sprintf("%s → %s: validità terminata il %s", prev, domain.CardScaduta, c.Expires.UTC().Format(time.RFC3339)))
}

// promoteNext makes the pending replacement of card c, now over, its
// holder's current card.
func promoteNext(tx *store.Tx, c *domain.SmartCard) error {
	p, err := tx.Person(c.CF)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || p.Card != c.Serial {
		return err
	}
	next, err := pendingNext(tx, p)
	if err != nil || next == "" {
		return err
	}
	p.Card, p.NextCard, p.Updated = next, "", tx.Now
	return tx.PutPerson(p)
}

// dropSecrets erases the sealed halves card c still holds and sets aside
// its queued second-halves e-mail with reason why.
func dropSecrets(tx *store.Tx, c *domain.SmartCard, why string) error {
	c.FirstSealed, c.SecondSealed = nil, nil
	m, err := tx.Mail(store.PINMailID(c.Serial))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case m.State == store.MailQueued:
		m.State, m.LastError = store.MailFailed, why
		return tx.PutMail(m)
	}
	return nil
}

func checkCard(action string, c *domain.SmartCard, allowed ...domain.CardState) error {
	for _, s := range allowed {
		if c.State == s {
			return nil
		}
	}
	return &StateError{Item: ItemCard, ID: c.Serial, State: string(c.State), Action: action, Allowed: states(allowed)}
}

func putCard(tx *store.Tx, src store.Source, c *domain.SmartCard, action, detail string) error {
	c.Updated = tx.Now
	if err := tx.PutCard(c); err != nil {
		return err
	}
	return tx.Record(src, action, "smartcard", c.Serial, detail)
}

// DeliverCard records the prefettura's delivery of card c's parcel to the
// comune on day at (zero: now), collected by the CF by: CONSEGNATA DALLA
// PREFETTURA; when the holder is the comune's ASC (asc), the card is ATTIVA
// at once and the second halves are queued (docs/rules.md#card-lifecycle).
func DeliverCard(tx *store.Tx, src store.Source, c *domain.SmartCard, at time.Time, by string, asc bool) error {
	if err := checkCard("la consegna dalla prefettura", c, domain.CardProduzione); err != nil {
		return err
	}
	if at.IsZero() {
		at = tx.Now
	}
	c.State, c.Delivered, c.DeliveredTo = domain.CardConsegnata, at, by
	if err := putCard(tx, src, c, "smartcard.consegnata", "plico ritirato da "+by); err != nil {
		return err
	}
	if asc {
		return activateCard(tx, src, c, "smart card del sindaco (ASC): attiva alla consegna della prefettura")
	}
	return nil
}

// ActivateCard records the delivery of card c to its holder: ATTIVA, and the
// second halves queued (docs/rules.md#card-lifecycle).
func ActivateCard(tx *store.Tx, src store.Source, c *domain.SmartCard) error {
	if err := checkCard("la consegna al titolare", c, domain.CardConsegnata); err != nil {
		return err
	}
	return activateCard(tx, src, c, "consegnata al titolare")
}

func activateCard(tx *store.Tx, src store.Source, c *domain.SmartCard, detail string) error {
	if err := takeOver(tx, src, c); err != nil {
		return err
	}
	c.State, c.Activated = domain.CardAttiva, tx.Now
	if len(c.SecondSealed) == 0 {
		detail += "; nessuna seconda metà da inviare"
	} else {
		queued, err := tx.QueueMail(&store.Mail{ID: store.PINMailID(c.Serial), Kind: store.MailPIN, Serial: c.Serial, CF: c.CF, ISTAT: c.ISTAT})
		if err != nil {
			return err
		}
		if queued {
			detail += "; seconde metà di PIN, PUK e password in coda per l'invio"
		}
	}
	return putCard(tx, src, c, "smartcard.attiva", detail)
}

// takeOver makes card c, being activated, its holder's current card when
// it is the replacement of an expiring one (Person.NextCard): the old card
// ends then (REVOCATA, unless it is already over).
func takeOver(tx *store.Tx, src store.Source, c *domain.SmartCard) error {
	p, err := tx.Person(c.CF)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || p.NextCard != c.Serial {
		return err
	}
	oldSerial := p.Card
	p.Card, p.NextCard, p.Updated = c.Serial, "", tx.Now
	if err := tx.PutPerson(p); err != nil {
		return err
	}
	if oldSerial == "" || oldSerial == c.Serial {
		return nil
	}
	old, err := tx.Card(oldSerial)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || CardOver(old) {
		return err
	}
	return RevokeCard(tx, src, old, "sostituita per scadenza dalla smart card "+c.Serial+", attivata")
}

// BlockCard suspends an ATTIVA card (BLOCCATA).
func BlockCard(tx *store.Tx, src store.Source, c *domain.SmartCard, motivo string) error {
	if strings.TrimSpace(motivo) == "" {
		return ErrMotivo
	}
	if err := checkCard("il blocco", c, domain.CardAttiva); err != nil {
		return err
	}
	c.State, c.Reason = domain.CardBloccata, strings.TrimSpace(motivo)
	return putCard(tx, src, c, "smartcard.blocca", c.Reason)
}

// UnblockCard brings a BLOCCATA card back to ATTIVA.
func UnblockCard(tx *store.Tx, src store.Source, c *domain.SmartCard, motivo string) error {
	if strings.TrimSpace(motivo) == "" {
		return ErrMotivo
	}
	if err := checkCard("lo sblocco", c, domain.CardBloccata); err != nil {
		return err
	}
	c.State, c.Reason, c.BlockedBy = domain.CardAttiva, strings.TrimSpace(motivo), ""
	return putCard(tx, src, c, "smartcard.sblocca", c.Reason)
}

// RevokeCard disables card c for good (REVOCATA): its unsent secrets are
// erased and its queued e-mail, if any, is set aside.
func RevokeCard(tx *store.Tx, src store.Source, c *domain.SmartCard, motivo string) error {
	if strings.TrimSpace(motivo) == "" {
		return ErrMotivo
	}
	if CardOver(c) {
		return &StateError{Item: ItemCard, ID: c.Serial, State: string(c.State), Action: "la revoca",
			Allowed: states([]domain.CardState{domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata})}
	}
	c.State, c.Reason = domain.CardRevocata, strings.TrimSpace(motivo)
	if err := dropSecrets(tx, c, "smart card revocata prima dell'invio"); err != nil {
		return err
	}
	return putCard(tx, src, c, "smartcard.revoca", c.Reason)
}

// ReplaceCard handles a lost or stolen card: the current card of cf (if any,
// and not already over) is revoked at once and a new card is requested
// through comune istat, the comune asking (new cards go to the
// prefettura of the ente that asked for them); with istat empty (the
// back-office), through the comune of the old card. It returns the serials.
//
// With motivo "scadenza" (IsExpiryMotivo) and a current card ATTIVA or
// BLOCCATA, the current card is kept: the new card is the holder's
// NextCard and takes over when it is activated (takeOver); a second such
// request while one is pending is refused (ErrReplacementPending). A loss
// while a replacement is pending revokes the current card and makes the
// pending one current, without a third card (docs/rules.md#card-lifecycle).
func ReplaceCard(tx *store.Tx, src store.Source, cf, motivo, prefix, istat string) (old, serial string, err error) {
	if strings.TrimSpace(motivo) == "" {
		return "", "", ErrMotivo
	}
	cf = codfisc.Normalize(cf)
	p, err := tx.Person(cf)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", fmt.Errorf("persona sconosciuta: %s", cf)
	}
	if err != nil {
		return "", "", err
	}
	next, err := pendingNext(tx, p)
	if err != nil {
		return "", "", err
	}
	c, err := currentCard(tx, p)
	if err != nil {
		return "", "", err
	}
	if c != nil {
		if istat == "" {
			istat = c.ISTAT
		}
		if IsExpiryMotivo(motivo) && (c.State == domain.CardAttiva || c.State == domain.CardBloccata) {
			return replaceExpiring(tx, src, p, c, next, istat, prefix)
		}
		if !CardOver(c) {
			if err := RevokeCard(tx, src, c, "sostituita: "+strings.TrimSpace(motivo)); err != nil {
				return "", "", err
			}
			old = c.Serial
		}
	}
	if next != "" {
		// The replacement already asked becomes the current card.
		p.Card, p.NextCard, p.Updated = next, "", tx.Now
		return old, next, tx.PutPerson(p)
	}
	if istat == "" {
		if istat, err = firstComune(tx, cf); err != nil {
			return "", "", err
		}
	}
	serial, err = RequestCard(tx, src, p, istat, prefix)
	if err != nil {
		return "", "", err
	}
	p.NextCard, p.Updated = "", tx.Now
	return old, serial, tx.PutPerson(p)
}

// currentCard returns p's current card, nil when he has none.
func currentCard(tx *store.Tx, p *domain.Person) (*domain.SmartCard, error) {
	if p.Card == "" {
		return nil, nil
	}
	c, err := tx.Card(p.Card)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// firstComune is the first comune where cf has an utenza, the home of a
// card requested by the back-office for a person without one.
func firstComune(tx *store.Tx, cf string) (string, error) {
	comuni, err := tx.ComuniOfPerson(cf)
	if err != nil {
		return "", err
	}
	if len(comuni) == 0 {
		return "", fmt.Errorf("%s non ha utenze: nessuna smart card da richiedere", cf)
	}
	return comuni[0], nil
}

// ErrReplacementPending is returned by ReplaceCard for a replacement by
// expiry while one is already requested.
var ErrReplacementPending = errors.New("sostituzione per scadenza già richiesta")

// IsExpiryMotivo reports whether a NUOVA_SC motivo asks the replacement of
// an expiring card: "scadenza", alone or followed by a blank, ':' or '-'
// and more words, in any case.
func IsExpiryMotivo(motivo string) bool {
	m := strings.ToLower(strings.TrimSpace(motivo))
	rest, ok := strings.CutPrefix(m, "scadenza")
	return ok && (rest == "" || strings.ContainsAny(rest[:1], " :-"))
}

// pendingNext returns p's pending replacement card (Person.NextCard) when
// it is not over, "" otherwise.
func pendingNext(tx *store.Tx, p *domain.Person) (string, error) {
	if p.NextCard == "" {
		return "", nil
	}
	c, err := tx.Card(p.NextCard)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil || CardOver(c) {
		return "", err
	}
	return c.Serial, nil
}

// replaceExpiring requests the replacement of p's expiring card c, which
// stays in use (see ReplaceCard).
func replaceExpiring(tx *store.Tx, src store.Source, p *domain.Person, c *domain.SmartCard, next, istat, prefix string) (string, string, error) {
	if next != "" {
		return "", "", fmt.Errorf("%w: la smart card %s sostituirà la %s quando sarà attivata", ErrReplacementPending, next, c.Serial)
	}
	serial, err := newCard(tx, src, p.CF, istat, prefix, c.Serial)
	if err != nil {
		return "", "", err
	}
	p.NextCard, p.Updated = serial, tx.Now
	if err := tx.PutPerson(p); err != nil {
		return "", "", err
	}
	return "", serial, tx.Record(src, "smartcard.sostituzione", "smartcard", c.Serial,
		"in scadenza: resta in uso fino all'attivazione della nuova smart card "+serial)
}

// ErrNothingToResend is returned by ResendCard when the card's second halves
// are no longer held (sent and erased) or its message is still queued.
var ErrNothingToResend = errors.New("nessun invio da ripetere")

// ResendCard queues again the e-mail of an ATTIVA card's second halves after
// it failed (a wrong address fixed since, a holder's key replaced): only
// while the halves are still sealed, i.e. never sent.
func ResendCard(tx *store.Tx, src store.Source, c *domain.SmartCard, motivo string) error {
	if strings.TrimSpace(motivo) == "" {
		return ErrMotivo
	}
	if err := checkCard("il nuovo invio delle seconde metà", c, domain.CardAttiva); err != nil {
		return err
	}
	if len(c.SecondSealed) == 0 {
		return fmt.Errorf("%w: le seconde metà della smart card %s sono già state inviate e cancellate (per nuovi codici: nuova smart card)", ErrNothingToResend, c.Serial)
	}
	queued, err := tx.QueueMail(&store.Mail{ID: store.PINMailID(c.Serial), Kind: store.MailPIN, Serial: c.Serial, CF: c.CF, ISTAT: c.ISTAT})
	if err != nil {
		return err
	}
	if !queued {
		return fmt.Errorf("%w: il messaggio della smart card %s è già in coda", ErrNothingToResend, c.Serial)
	}
	return tx.Record(src, "smartcard.reinvio", "smartcard", c.Serial, "seconde metà di nuovo in coda: "+strings.TrimSpace(motivo))
}
