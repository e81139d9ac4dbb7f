package lifecycle

import (
	"errors"
	"fmt"
	"strings"

	"anprsec/domain"
	"anprsec/store"
)

// The utenza lifecycle (docs/rules.md#utenza-lifecycle):
//
//	ATTIVA --OpBlockUtente--> BLOCCATA --OpUnblockUtente--> ATTIVA
//	ATTIVA|BLOCCATA --OpCancelUtente--> removed from the store
//
// A cancelled utenza is deleted at once (docs/rules.md#utenza-lifecycle):
// its history names it by pseudonym; the job pulizia-persone removes its
// old versions and, after retention.persona_days, the person left without
// utenza and card (docs/personal-data.md). A CANCELLATA record of an older
// store counts as no utenza and is removed by the same job.
// Each change keeps the comune invariant (ChangeBreach). Cancelling the
// holder's last utenza revokes his card; cancelling the utenza of the
// card's home comune while others remain moves the home (MoveHome).

// utenzaRule says from which state an operation may start, where it leads,
// and the profiles the utenza keeps in the comune's count afterwards.
type utenzaRule struct {
	from   domain.UtenzaState // "" = ATTIVA or BLOCCATA
	to     domain.UtenzaState
	action string
	verb   string // for the refusal: "si blocca"
	keeps  bool   // the utenza still counts for the invariant
}

var utenzaRules = map[Op]utenzaRule{
	OpBlockUtente:   {domain.UtenzaAttiva, domain.UtenzaBloccata, "utenza.blocca", "si blocca", false},
	OpUnblockUtente: {domain.UtenzaBloccata, domain.UtenzaAttiva, "utenza.sblocca", "si sblocca", true},
	OpCancelUtente:  {"", domain.UtenzaCancellata, "utenza.cancella", "si cancella", false},
}

// ChangeUtenza blocks, unblocks or cancels (op OpBlockUtente,
// OpUnblockUtente, OpCancelUtente) the utenza of cf in comune istat inside
// the caller's transaction, keeping the comune invariant. It is shared by
// the console requests and the back-office CLI (`anprsec utenze`). It
// returns the receipt code and message, or a Refusal that changed nothing.
func ChangeUtenza(tx *store.Tx, src store.Source, op Op, istat, cf, motivo string) (string, string, *Refusal, error) {
	rule, ok := utenzaRules[op]
	if !ok {
		return "", "", nil, fmt.Errorf("utenze: %s is not an operation on an utenza", op)
	}
	cf = strings.ToUpper(strings.TrimSpace(cf))
	u, err := tx.Utenza(istat, cf)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.State == domain.UtenzaCancellata) {
		return "", "", Refuse("UTENZA_SCONOSCIUTA", "%s non ha un'utenza nel comune %s", cf, istat), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	if rule.from != "" && u.State != rule.from {
		return "", "", Refuse("STATO", "l'utenza di %s è %s: %s solo un'utenza %s", cf, u.State, rule.verb, rule.from), nil
	}
	var after []domain.Profile
	if rule.keeps {
		after = u.Profiles
	}
	if ref, err := ChangeBreach(tx, istat, cf, after); ref != nil || err != nil {
		return "", "", ref, err
	}
	u.State, u.Updated = rule.to, tx.Now
	if op == OpCancelUtente {
		err = tx.DeleteUtenza(istat, cf)
	} else {
		err = tx.PutUtenza(u)
	}
	if err != nil {
		return "", "", nil, err
	}
	if err := tx.Record(src, rule.action, "utenza", istat+"/"+cf, motivo); err != nil {
		return "", "", nil, err
	}
	if op != OpCancelUtente {
		return string(u.State), fmt.Sprintf("utenza di %s nel comune %s: %s", cf, istat, u.State), nil, nil
	}
	msg, err := afterCancel(tx, src, istat, cf)
	if err != nil {
		return "", "", nil, err
	}
	return "CANCELLATA", msg, nil, nil
}

// afterCancel applies what cancelling cf's utenza in istat does to his
// card: with utenze in other comuni the card stays (and its home moves if
// it was istat); with none left, it is revoked for good. It returns the
// receipt message.
func afterCancel(tx *store.Tx, src store.Source, istat, cf string) (string, error) {
	others, err := otherUtenze(tx, istat, cf)
	if err != nil {
		return "", err
	}
	if others > 0 {
		if err := MoveHome(tx, src, cf, istat); err != nil {
			return "", err
		}
		return fmt.Sprintf("utenza di %s nel comune %s cancellata; la smart card resta (utenze in altri %d comuni)", cf, istat, others), nil
	}
	pe, err := tx.Person(cf)
	if err == nil {
		// The retention of a person without utenze counts from here
		// (docs/rules.md#retention-of-personal-data).
		pe.Updated = tx.Now
		err = tx.PutPerson(pe)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Sprintf("utenza di %s nel comune %s cancellata; nessuna smart card", cf, istat), nil
	}
	if err != nil || pe.Card == "" {
		return fmt.Sprintf("utenza di %s nel comune %s cancellata; nessuna smart card", cf, istat), err
	}
	c, err := tx.Card(pe.Card)
	if err != nil {
		return "", err
	}
	if err := revokeNext(tx, src, pe); err != nil {
		return "", err
	}
	if CardOver(c) {
		return fmt.Sprintf("utenza di %s nel comune %s cancellata", cf, istat), nil
	}
	if err := RevokeCard(tx, src, c, "ultima utenza cancellata"); err != nil {
		return "", err
	}
	return fmt.Sprintf("utenza di %s nel comune %s cancellata; era la sua ultima utenza: smart card %s disabilitata definitivamente", cf, istat, c.Serial), nil
}

// otherUtenze counts cf's utenze outside istat that are not cancelled.
func otherUtenze(tx *store.Tx, istat, cf string) (int, error) {
	comuni, err := tx.ComuniOfPerson(cf)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range comuni {
		if c == istat {
			continue
		}
		if o, err := tx.Utenza(c, cf); err == nil && o.State != domain.UtenzaCancellata {
			n++
		}
	}
	return n, nil
}

// revokeNext revokes p's pending replacement card, if any, when his last
// utenza is deleted.
func revokeNext(tx *store.Tx, src store.Source, p *domain.Person) error {
	next, err := pendingNext(tx, p)
	if err != nil || next == "" {
		return err
	}
	c, err := tx.Card(next)
	if err != nil {
		return err
	}
	return RevokeCard(tx, src, c, "ultima utenza cancellata")
}
