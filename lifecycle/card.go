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
//	ReplaceCard:  the current card REVOCATA at once, a new one RICHIESTA
//	RevokeCard:   the card REVOCATA for good (the holder's last utenza deleted)
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
// unless p already has a card that is not REVOCATA; it sets p.Card (the
// caller stores p) and returns the new serial, or "" when none was needed.
func RequestCard(tx *store.Tx, src store.Source, p *domain.Person, istat, prefix string) (string, error) {
	if p.Card != "" {
		c, err := tx.Card(p.Card)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		if err == nil && c.State != domain.CardRevocata {
			return "", nil
		}
	}
	n, err := tx.Sequence("smartcard")
	if err != nil {
		return "", err
	}
	serial := fmt.Sprintf("%s%010d", prefix, n)
	c := &domain.SmartCard{Serial: serial, CF: p.CF, ISTAT: istat, State: domain.CardRichiesta, Requested: tx.Now, Updated: tx.Now}
	if err := tx.InsertCard(c); err != nil {
		return "", err
	}
	p.Card = serial
	return serial, tx.Record(src, "smartcard.richiesta", "smartcard", serial, "titolare "+p.CF+", comune "+istat)
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
	if c.State == domain.CardRevocata {
		return &StateError{Item: ItemCard, ID: c.Serial, State: string(c.State), Action: "la revoca",
			Allowed: states([]domain.CardState{domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata})}
	}
	c.State, c.Reason = domain.CardRevocata, strings.TrimSpace(motivo)
	c.FirstSealed, c.SecondSealed = nil, nil
	m, err := tx.Mail(store.PINMailID(c.Serial))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case m.State == store.MailQueued:
		m.State, m.LastError = store.MailFailed, "smart card revocata prima dell'invio"
		if err := tx.PutMail(m); err != nil {
			return err
		}
	}
	return putCard(tx, src, c, "smartcard.revoca", c.Reason)
}

// ReplaceCard handles a lost or stolen card: the current card of cf (if any,
// and not already REVOCATA) is revoked at once and a new card is requested
// through comune istat, the comune asking (new cards go to the
// prefettura of the ente that asked for them); with istat empty (the
// back-office), through the comune of the old card. It returns the serials.
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
	if p.Card != "" {
		c, err := tx.Card(p.Card)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", "", err
		}
		if err == nil {
			if istat == "" {
				istat = c.ISTAT
			}
			if c.State != domain.CardRevocata {
				if err := RevokeCard(tx, src, c, "sostituita: "+strings.TrimSpace(motivo)); err != nil {
					return "", "", err
				}
				old = c.Serial
			}
		}
	}
	if istat == "" {
		comuni, err := tx.ComuniOfPerson(cf)
		if err != nil {
			return "", "", err
		}
		if len(comuni) == 0 {
			return "", "", fmt.Errorf("%s non ha utenze: nessuna smart card da richiedere", cf)
		}
		istat = comuni[0]
	}
	serial, err = RequestCard(tx, src, p, istat, prefix)
	if err != nil {
		return "", "", err
	}
	p.Updated = tx.Now
	return old, serial, tx.PutPerson(p)
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
