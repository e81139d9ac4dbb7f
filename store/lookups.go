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
// version of the card serial, none when there is none, decoding only the
// fields they are made of (not the card's times and sealed secrets).
func (tx *Tx) storedCardIndexes(serial string) ([]string, error) {
	raw, err := tx.getRaw("s/" + serial)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var prev struct {
		Serial string           `json:"serial"`
		CF     string           `json:"cf"`
		State  domain.CardState `json:"state"`
	}
	if err := decode("s/"+serial, raw, &prev); err != nil {
		return nil, err
	}
	return cardIndexes(&domain.SmartCard{Serial: prev.Serial, CF: prev.CF, State: prev.State}), nil
}

// UtenzeRolesOfComune calls fn for each utenza of comune istat, in CF
// order, with what says what its holder may do there (its codice fiscale,
// state and profiles), decoding only that: for the authorization checks
// that look through a comune's utenze.
func (tx *Tx) UtenzeRolesOfComune(istat string, fn func(cf string, state domain.UtenzaState, profiles []domain.Profile) error) error {
	return tx.scan("u/"+istat+"/", true, func(k string, v []byte) (bool, error) {
		var u struct {
			CF       string             `json:"cf"`
			State    domain.UtenzaState `json:"state"`
			Profiles []domain.Profile   `json:"profiles"`
		}
		if err := decode(k, v, &u); err != nil {
			return false, err
		}
		return true, fn(u.CF, u.State, u.Profiles)
	})
}
