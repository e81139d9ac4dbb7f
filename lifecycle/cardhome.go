package lifecycle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/store"
)

// A card belongs to its holder (docs/rules.md#card-lifecycle): one person,
// one card, shared by every comune where the person has an utenza. The card
// has a home, the comune it was requested through (SmartCard.ISTAT); what a
// comune's console request may do to the card depends on its relation to
// the card:
//
//	operation                      home   blocking comune   other, utenza >= tenure   other, newer utenza
//	NUOVA_SC (replace)             yes    no                no                        no
//	REGISTRA_CONSEGNA_SC           yes    no                no                        no
//	BLOCCA_SC (protective block)   yes    -                 yes                       no
//	SBLOCCA_SC                     yes    yes               no                        no
//
// A comune where the holder has no utenza may do nothing (ALTRO_COMUNE).
// Inserting a person registered elsewhere therefore gives the new comune no
// power over the card until its utenza is older than the tenure
// (cards.block_tenure, default 7 days), and then only the protective block.
// The second halves go only to the address the home comune registered.
// When the home comune cancels its utenza of the holder, the home moves to
// the comune of the holder's oldest utenza that is not cancelled (MoveHome).

// CardAct is something a comune may ask for a card.
type CardAct int

// The acts of the table above.
const (
	CardReplace CardAct = iota
	CardRegisterDelivery
	CardBlock
	CardUnblock
)

// CardHome returns the home comune of card c: the comune it was requested
// through while the holder has an utenza there that is not cancelled;
// otherwise, for records made before the home moved by itself, the comune
// of the holder's oldest utenza that is not cancelled ("" when none).
func CardHome(tx *store.Tx, c *domain.SmartCard) (string, error) {
	u, err := tx.Utenza(c.ISTAT, c.CF)
	if err == nil && u.State != domain.UtenzaCancellata {
		return c.ISTAT, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	return oldestUtenza(tx, c.CF, "")
}

// oldestUtenza returns the comune of cf's oldest utenza that is not
// cancelled, leaving out comune except ("" when none).
func oldestUtenza(tx *store.Tx, cf, except string) (string, error) {
	comuni, err := tx.ComuniOfPerson(cf)
	if err != nil {
		return "", err
	}
	sort.Strings(comuni)
	best, bestAt := "", time.Time{}
	for _, istat := range comuni {
		if istat == except {
			continue
		}
		u, err := tx.Utenza(istat, cf)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if u.State == domain.UtenzaCancellata {
			continue
		}
		if best == "" || u.Created.Before(bestAt) {
			best, bestAt = istat, u.Created
		}
	}
	return best, nil
}

// MayActOnCard checks that comune istat may ask act for card c, by the
// table above; tenure is how long the holder's utenza in istat must have
// existed before a protective block. It returns an authorization Refusal,
// or nil when the comune may.
func MayActOnCard(tx *store.Tx, c *domain.SmartCard, istat string, act CardAct, tenure time.Duration) (*Refusal, error) {
	home, err := CardHome(tx, c)
	if err != nil {
		return nil, err
	}
	if home == istat {
		return nil, nil
	}
	switch act {
	case CardBlock:
		u, err := tx.Utenza(istat, c.CF)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil && u.State == domain.UtenzaAttiva && !u.Created.IsZero() && !u.Created.Add(tenure).After(tx.Now) {
			return nil, nil
		}
		return deny("SMART_CARD_UTENZA_RECENTE", "la smart card %s di %s è gestita dal comune %s: il comune %s può bloccarla solo se %s vi ha un'utenza attiva da almeno %s",
			c.Serial, c.CF, home, istat, c.CF, days(tenure)), nil
	case CardUnblock:
		if c.BlockedBy == istat {
			return nil, nil
		}
		return deny("SMART_CARD_ALTRO_COMUNE", "la smart card %s di %s è gestita dal comune %s: la sblocca quel comune o chi l'ha bloccata", c.Serial, c.CF, home), nil
	case CardReplace:
		return deny("SMART_CARD_ALTRO_COMUNE", "la smart card %s di %s è gestita dal comune %s: una nuova smart card la chiede quel comune", c.Serial, c.CF, home), nil
	default:
		return Refuse("ALTRO_COMUNE", "la smart card %s è stata richiesta per il comune %s: la sua consegna si registra là", c.Serial, home), nil
	}
}

// MoveHome moves the home of cf's current card (and of its pending
// replacement, Person.NextCard) away from comune istat, whose utenza of cf
// is being cancelled, to the comune of cf's oldest utenza that is not
// cancelled, with a history entry. A card whose home is elsewhere, a card
// over, or a holder with no other utenza, is left as it is.
func MoveHome(tx *store.Tx, src store.Source, cf, istat string) error {
	p, err := tx.Person(cf)
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.Card == "" && p.NextCard == "") {
		return nil
	}
	if err != nil {
		return err
	}
	for _, serial := range []string{p.Card, p.NextCard} {
		if serial == "" {
			continue
		}
		if err := moveCardHome(tx, src, serial, cf, istat); err != nil {
			return err
		}
	}
	return nil
}

func moveCardHome(tx *store.Tx, src store.Source, serial, cf, istat string) error {
	c, err := tx.Card(serial)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || c.ISTAT != istat || CardOver(c) {
		return err
	}
	to, err := oldestUtenza(tx, cf, istat)
	if err != nil || to == "" {
		return err
	}
	c.ISTAT = to
	c.BlockedBy = ""
	return putCard(tx, src, c, "smartcard.comune", "comune di riferimento da "+istat+" a "+to+" (utenza cancellata nel comune "+istat+")")
}

func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if n == 1 {
		return "1 giorno"
	}
	if d%(24*time.Hour) != 0 {
		return d.String()
	}
	return strconv.Itoa(n) + " giorni"
}

// HolderAddress returns the home comune of card c and the personal e-mail
// its utenza of the holder registered: the second halves of the card's
// secrets go there and nowhere else ("" when the home has none).
func HolderAddress(tx *store.Tx, c *domain.SmartCard) (home, email string, err error) {
	home, err = CardHome(tx, c)
	if err != nil || home == "" {
		return home, "", err
	}
	u, err := tx.Utenza(home, c.CF)
	if errors.Is(err, store.ErrNotFound) {
		return home, "", nil
	}
	if err != nil {
		return home, "", err
	}
	return home, u.Email, nil
}

// notice queues an e-mail notice (store.MailAvviso: no secret in it) to
// address, with an ID unique to the event and the recipient.
func notice(tx *store.Tx, event, cf, istat, to, subject, text string) error {
	if to == "" {
		return nil
	}
	who := sha256.Sum256([]byte(to))
	id := fmt.Sprintf("avviso/%s/%x", event, who[:5])
	_, err := tx.QueueMail(&store.Mail{ID: id, Kind: store.MailAvviso, CF: cf, ISTAT: istat, To: to, Subject: subject, Text: text})
	return err
}

const noticeFooter = `
Il Ministero dell'Interno non chiede mai credenziali, PIN, PUK o
password per telefono o per posta elettronica.

Messaggio automatico, non rispondere.
`

// BlockCardFor blocks card c at the request of comune istat (BlockCard).
// When istat is not the card's home, the block records it (BlockedBy: it
// may unblock the card too) and the home comune's ALS and the holder are
// told (NotifyForeignBlock).
func BlockCardFor(tx *store.Tx, src store.Source, c *domain.SmartCard, motivo, istat string) error {
	home, err := CardHome(tx, c)
	if err != nil {
		return err
	}
	if home != istat {
		c.BlockedBy = istat
	}
	if err := BlockCard(tx, src, c, motivo); err != nil || c.BlockedBy == "" {
		return err
	}
	return NotifyForeignBlock(tx, c, istat, motivo)
}

// NotifyForeignBlock tells the home comune's ALS and the holder that card
// c was blocked by comune by, which is not its home (c.BlockedBy): a
// protective block the home must know of, and may lift.
func NotifyForeignBlock(tx *store.Tx, c *domain.SmartCard, by, motivo string) error {
	home, holderEmail, err := HolderAddress(tx, c)
	if err != nil || home == "" {
		return err
	}
	text := fmt.Sprintf(`La smart card %s di %s, gestita dal comune %s, è stata bloccata
il %s su richiesta del comune %s, dove il titolare ha un'utenza.
Motivo: %s

La sblocca il comune %s o il comune %s; se la smart card è smarrita o
rubata, la nuova smart card la chiede il comune %s.
`+noticeFooter, c.Serial, c.CF, home, tx.Now.Format("02/01/2006 15:04"), by, motivo, by, home, home)
	event := "blocco/" + c.Serial + "/" + strconv.FormatInt(tx.Now.UnixNano(), 36)
	if err := notice(tx, event, c.CF, home, holderEmail, "ANPR - smart card bloccata", text); err != nil {
		return err
	}
	return tx.UtenzeOfComune(home, func(u *domain.Utenza) error {
		if u.State != domain.UtenzaAttiva || !u.Has(domain.ALS) || u.CF == c.CF {
			return nil
		}
		return notice(tx, event, u.CF, home, u.Email, "ANPR - smart card bloccata da un altro comune", text)
	})
}

// NotifyAddressChange tells the previous address of cf that comune istat
// changed it from old to new, when istat is the home of cf's card and the
// card is on its way (requested, in production, or delivered but not
// active): the second halves will go to the new address, and a change the
// holder did not ask for must be reported at once.
func NotifyAddressChange(tx *store.Tx, cf, istat, old, new string) error {
	if old == "" || strings.EqualFold(old, new) {
		return nil
	}
	c, err := FindCard(tx, cf, "")
	if errors.Is(err, ErrNoCard) || errors.Is(err, ErrCardUnknown) {
		return nil
	}
	if err != nil {
		return err
	}
	home, err := CardHome(tx, c)
	if err != nil || home != istat {
		return err
	}
	return notifyAddressChange(tx, c, old, new)
}

// notifyAddressChange queues the notice of NotifyAddressChange for card c.
func notifyAddressChange(tx *store.Tx, c *domain.SmartCard, old, new string) error {
	switch c.State {
	case domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata:
	default:
		return nil
	}
	text := fmt.Sprintf(`L'indirizzo e-mail a cui arriveranno le seconde metà di PIN, PUK e
password della smart card %s di %s è stato cambiato il %s
dal comune %s: non più %s, ma %s.

Se il cambio non è stato chiesto dal titolare, lo segnali subito al
comune e all'assistenza ANPR.
`+noticeFooter, c.Serial, c.CF, tx.Now.Format("02/01/2006 15:04"), c.ISTAT, old, new)
	event := "indirizzo/" + c.Serial + "/" + strconv.FormatInt(tx.Now.UnixNano(), 36)
	return notice(tx, event, c.CF, c.ISTAT, old, "ANPR - cambio dell'indirizzo per le seconde metà dei codici", text)
}
