package lifecycle

import (
	"errors"
	"fmt"
	"time"

	"anprsec/domain"
	"anprsec/store"
)

// Retention of personal data (docs/rules.md#retention-of-personal-data): a person
// stays while he has an utenza or a card that is not REVOCATA, and for
// retention.persona_days after his last change once he has neither (his
// record's and his cards' last update: cancelling his last utenza updates
// his record). Then he is erased: store.ErasePersons.

// ErasablePersons returns the codici fiscali of the persons to erase at
// now, at most limit (0 = all), in codice fiscale order.
func ErasablePersons(tx *store.Tx, now time.Time, days, limit int) ([]string, error) {
	cutoff := now.AddDate(0, 0, -days)
	var out []string
	errFull := errors.New("full")
	err := tx.AllPersons(func(p *domain.Person) error {
		if p.Updated.After(cutoff) {
			return nil
		}
		ok, err := personGone(tx, p.CF, cutoff)
		if err != nil || !ok {
			return err
		}
		out = append(out, p.CF)
		if limit > 0 && len(out) >= limit {
			return errFull
		}
		return nil
	})
	if errors.Is(err, errFull) {
		err = nil
	}
	return out, err
}

// personGone reports whether cf has no utenza that is not CANCELLATA and
// no card that is not REVOCATA or changed after cutoff.
func personGone(tx *store.Tx, cf string, cutoff time.Time) (bool, error) {
	comuni, err := tx.ComuniOfPerson(cf)
	if err != nil {
		return false, err
	}
	for _, istat := range comuni {
		u, err := tx.Utenza(istat, cf)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if u.State != domain.UtenzaCancellata || u.Updated.After(cutoff) {
			return false, nil
		}
	}
	serials, err := tx.CardsOfPerson(cf)
	if err != nil {
		return false, err
	}
	for _, s := range serials {
		c, err := tx.Card(s)
		if err != nil {
			return false, fmt.Errorf("smart card %s: %w", s, err)
		}
		if (c.State != domain.CardRevocata && c.State != domain.CardScaduta) || c.Updated.After(cutoff) {
			return false, nil // a card that can still be used keeps its holder
		}
	}
	return true, nil
}

// ErasePersons erases the persons cfs in the caller's transaction: one
// history entry persona.cancellata each (its key, the codice fiscale, is
// stored as the pseudonym, which stays bare from then on), then
// store.ErasePersons. It returns the pseudonyms.
func ErasePersons(tx *store.Tx, src store.Source, days int, cfs []string) ([]string, error) {
	for _, cf := range cfs {
		detail := fmt.Sprintf("dati personali cancellati: nessuna utenza e nessuna smart card attiva da oltre %d giorni", days)
		if err := tx.Record(src, "persona.cancellata", "persona", cf, detail); err != nil {
			return nil, err
		}
	}
	return tx.ErasePersons(cfs)
}

// RemoveCancelledUtenze deletes up to limit utenze left CANCELLATA by an
// older version of anprsec (a cancelled utenza is now deleted at once),
// with a history entry utenza.rimossa each. It returns how many it removed.
func RemoveCancelledUtenze(tx *store.Tx, src store.Source, limit int) (int, error) {
	var gone []*domain.Utenza
	errFull := errors.New("full")
	err := tx.AllUtenze(func(u *domain.Utenza) error {
		if u.State == domain.UtenzaCancellata {
			gone = append(gone, u)
			if len(gone) >= limit {
				return errFull
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return 0, err
	}
	for _, u := range gone {
		// The person's retention counts from the cancellation, which the
		// older version did not note in his record.
		pe, err := tx.Person(u.CF)
		if err == nil && u.Updated.After(pe.Updated) {
			pe.Updated = u.Updated
			err = tx.PutPerson(pe)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		if err := tx.DeleteUtenza(u.ISTAT, u.CF); err != nil {
			return 0, err
		}
		if err := tx.Record(src, "utenza.rimossa", "utenza", u.ISTAT+"/"+u.CF, "utenza CANCELLATA rimossa dall'archivio"); err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}
