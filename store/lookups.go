package store

import (
	"errors"

	"anprsec/domain"
)

// HasComune reports whether comune istat was censused (its record
// exists), without decoding the record.
func (tx *Tx) HasComune(istat string) (bool, error) {
	return tx.exists("c/" + istat)
}

// storedCardIndexes returns the index keys (cardIndexes) of the stored
// version of the card serial, none when there is none.
func (tx *Tx) storedCardIndexes(serial string) ([]string, error) {
	raw, err := tx.getRaw("s/" + serial)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var prev domain.SmartCard
	if err := decode("s/"+serial, raw, &prev); err != nil {
		return nil, err
	}
	return cardIndexes(&prev), nil
}

// UtenzeRolesOfComune calls fn for each utenza of comune istat, in CF
// order, with what says what its holder may do there (its codice fiscale,
// state and profiles): for the authorization checks that look through a
// comune's utenze.
func (tx *Tx) UtenzeRolesOfComune(istat string, fn func(cf string, state domain.UtenzaState, profiles []domain.Profile) error) error {
	return tx.scan("u/"+istat+"/", true, func(k string, v []byte) (bool, error) {
		var u domain.Utenza
		if err := decode(k, v, &u); err != nil {
			return false, err
		}
		return true, fn(u.CF, u.State, u.Profiles)
	})
}
