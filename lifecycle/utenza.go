package lifecycle

import (
	"errors"
	"fmt"
	"strings"

	"anprsec/domain"
	"anprsec/store"
)

// ChangeUtenza blocks, unblocks or deletes (op BloccaUtente, SbloccaUtente,
// CancellaUtente) the utenza of cf in comune istat inside the caller's
// transaction, keeping the comune's invariants (richieste.Invariant); a
// deletion of the last utenza revokes the card. It is shared by the console
// requests and the back-office CLI (`anprsec utenze`). It returns the
// receipt code and message, or a Refusal that changed nothing.
func ChangeUtenza(tx *store.Tx, src store.Source, op Op, istat, cf, motivo string) (string, string, *Refusal, error) {
	cf = strings.ToUpper(strings.TrimSpace(cf))
	u, err := tx.Utenza(istat, cf)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.State == domain.UtenzaCancellata) {
		return "", "", Refuse("UTENZA_SCONOSCIUTA", "%s non ha un'utenza nel comune %s", cf, istat), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	key := istat + "/" + cf
	detail := motivo
	switch op {
	case OpUnblockUtente:
		if u.State != domain.UtenzaBloccata {
			return "", "", Refuse("STATO", "l'utenza di %s è %s: si sblocca solo un'utenza BLOCCATA", cf, u.State), nil
		}
		if ref, err := ChangeBreach(tx, istat, cf, u.Profiles); ref != nil || err != nil {
			return "", "", ref, err
		}
		u.State = domain.UtenzaAttiva
	case OpBlockUtente:
		if u.State != domain.UtenzaAttiva {
			return "", "", Refuse("STATO", "l'utenza di %s è %s: si blocca solo un'utenza ATTIVA", cf, u.State), nil
		}
		if ref, err := ChangeBreach(tx, istat, cf, nil); ref != nil || err != nil {
			return "", "", ref, err
		}
		u.State = domain.UtenzaBloccata
	case OpCancelUtente:
		if ref, err := ChangeBreach(tx, istat, cf, nil); ref != nil || err != nil {
			return "", "", ref, err
		}
		u.State = domain.UtenzaCancellata
	}
	u.Updated = tx.Now
	if err := tx.PutUtenza(u); err != nil {
		return "", "", nil, err
	}
	action := map[Op]string{OpBlockUtente: "utenza.blocca", OpUnblockUtente: "utenza.sblocca", OpCancelUtente: "utenza.cancella"}[op]
	if err := tx.Record(src, action, "utenza", key, detail); err != nil {
		return "", "", nil, err
	}
	if op != OpCancelUtente {
		return string(u.State), fmt.Sprintf("utenza di %s nel comune %s: %s", cf, istat, u.State), nil, nil
	}
	// With utenze in other comuni only this one goes and the
	// card stays; with none left, the card is disabled for good.
	comuni, err := tx.ComuniOfPerson(cf)
	if err != nil {
		return "", "", nil, err
	}
	others := 0
	for _, c := range comuni {
		if c == istat {
			continue
		}
		if o, err := tx.Utenza(c, cf); err == nil && o.State != domain.UtenzaCancellata {
			others++
		}
	}
	if others > 0 {
		if err := MoveHome(tx, src, cf, istat); err != nil {
			return "", "", nil, err
		}
		return "CANCELLATA", fmt.Sprintf("utenza di %s nel comune %s cancellata; la smart card resta (utenze in altri %d comuni)", cf, istat, others), nil, nil
	}
	pe, err := tx.Person(cf)
	if err != nil || pe.Card == "" {
		return "CANCELLATA", fmt.Sprintf("utenza di %s nel comune %s cancellata; nessuna smart card", cf, istat), nil, err
	}
	c, err := tx.Card(pe.Card)
	if err != nil {
		return "", "", nil, err
	}
	if c.State == domain.CardRevocata {
		return "CANCELLATA", fmt.Sprintf("utenza di %s nel comune %s cancellata", cf, istat), nil, nil
	}
	if err := RevokeCard(tx, src, c, "ultima utenza cancellata"); err != nil {
		return "", "", nil, err
	}
	return "CANCELLATA", fmt.Sprintf("utenza di %s nel comune %s cancellata; era la sua ultima utenza: smart card %s disabilitata definitivamente", cf, istat, c.Serial), nil, nil
}
