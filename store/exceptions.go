package store

import (
	"errors"
	"time"
)

// CFException lets one codice fiscale pass the checks of surname, name and
// birthplace against the code: a real code that does not follow the rules
// (one assigned in error stays valid for life). It is set by the
// back-office with a reason, recorded in the history (docs/rules.md#census).
type CFException struct {
	CF      string    `json:"cf"`
	Motivo  string    `json:"motivo"`
	Actor   string    `json:"actor"`
	Created time.Time `json:"created"`
}

const cfExceptionPrefix = "x/cf/"

// CFException returns the exception of a codice fiscale, or ErrNotFound.
func (tx *Tx) CFException(cf string) (*CFException, error) {
	var e CFException
	if err := tx.get(cfExceptionPrefix+cf, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// PutCFException stores the exception of e.CF, replacing any other.
func (tx *Tx) PutCFException(e *CFException) error { return tx.set(cfExceptionPrefix+e.CF, e) }

// CFExceptions returns every exception, by codice fiscale.
func (tx *Tx) CFExceptions() (map[string]*CFException, error) {
	out := map[string]*CFException{}
	err := tx.each(cfExceptionPrefix, func(k string, val []byte) error {
		var e CFException
		if err := decode(k, val, &e); err != nil {
			return err
		}
		out[e.CF] = &e
		return nil
	})
	return out, err
}

// HasCFException reports whether cf has an exception, and its reason.
func (tx *Tx) HasCFException(cf string) (motivo string, ok bool, err error) {
	e, err := tx.CFException(cf)
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return e.Motivo, true, nil
}

// DeleteCFException removes the exception of cf (absent is fine).
func (tx *Tx) DeleteCFException(cf string) error { return tx.del(cfExceptionPrefix + cf) }
