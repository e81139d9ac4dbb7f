package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"anprsec/domain"
)

// The seal check value (docs/rules.md#secrets): a value sealed with the
// seal key, kept in the store's meta, that every command using the seal key
// opens first. A wrong or replaced seal key is then refused at start-up,
// before it seals anything, instead of failing later on a value sealed
// with the right one.
const (
	sealCheckMeta    = "seal-check"
	sealCheckContext = "anprsec/seal-check"
)

// ErrSealKey is wrapped by CheckSealKey's error when the seal key does not
// open the values sealed in the store.
var ErrSealKey = errors.New("la chiave di sigillo non apre i valori sigillati in questo archivio")

// CheckSealKey checks that s is the seal key of this store: it must open
// the store's seal check value. A store without one (just created, or made
// before the check value existed) gets one, sealed with s, once s is shown
// to open a value already sealed in the store (a pooled key, a
// workstation's PKCS#12 or password, a card's secrets), or when there is
// none. It reports whether it wrote the check value; a key that opens
// nothing is an error wrapping ErrSealKey that says which value it failed
// to open. While a rotation of the seal key is half done it refuses
// every key with an error wrapping ErrSealRotationPending.
func (st *Store) CheckSealKey(s *Sealer) (written bool, err error) {
	if err := st.SealRotationPending(); err != nil {
		return false, err
	}
	var check []byte
	err = st.View(func(tx *Tx) error { return tx.Meta(sealCheckMeta, &check) })
	switch {
	case err == nil:
		if _, err := s.Open(check, sealCheckContext); err != nil {
			return false, fmt.Errorf("%w (non apre il suo valore di controllo, scritto alla creazione dell'archivio)", ErrSealKey)
		}
		return false, nil
	case !errors.Is(err, ErrNotFound):
		return false, fmt.Errorf("valore di controllo del sigillo: %w", err)
	}
	var what string
	var sealed []byte
	var context string
	if err := st.View(func(tx *Tx) error {
		var err error
		what, sealed, context, err = tx.someSealedValue()
		return err
	}); err != nil {
		return false, err
	}
	if sealed != nil {
		if _, err := s.Open(sealed, context); err != nil {
			return false, fmt.Errorf("%w (non apre %s)", ErrSealKey, what)
		}
	}
	plain := make([]byte, 32)
	if _, err := rand.Read(plain); err != nil {
		return false, err
	}
	err = st.Update(func(tx *Tx) error {
		if err := tx.Meta(sealCheckMeta, &check); err == nil {
			return nil // written meanwhile
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		written = true
		return tx.SetMeta(sealCheckMeta, s.Seal(plain, sealCheckContext))
	})
	return written, err
}

// someSealedValue returns one value sealed in the store, with what it is
// and its seal context; nil when the store holds none.
func (tx *Tx) someSealedValue() (what string, sealed []byte, context string, err error) {
	err = tx.scan(poolPrefix, true, func(k string, v []byte) (bool, error) {
		if len(k) < len(poolPrefix)+8 {
			return true, nil
		}
		seq := binary.BigEndian.Uint64([]byte(k[len(k)-8:]))
		what, sealed, context = fmt.Sprintf("the pooled key %d", seq), v, PoolSealContext(seq)
		return false, nil
	})
	if err != nil || sealed != nil {
		return what, sealed, context, err
	}
	err = tx.scan("w/", true, func(k string, v []byte) (bool, error) {
		var p domain.Postazione
		if err := decode(k, v, &p); err != nil {
			return false, err
		}
		if len(p.PasswordSealed) > 0 {
			what, sealed, context = "the PKCS#12 password of postazione "+p.Code, p.PasswordSealed, domain.PasswordSealContext(p.Code)
			return false, nil
		}
		return true, nil
	})
	if err != nil || sealed != nil {
		return what, sealed, context, err
	}
	err = tx.scan("s/", true, func(k string, v []byte) (bool, error) {
		var c domain.SmartCard
		if err := decode(k, v, &c); err != nil {
			return false, err
		}
		for _, h := range []struct {
			half string
			v    []byte
		}{{"prima", c.FirstSealed}, {"seconda", c.SecondSealed}} {
			if len(h.v) > 0 {
				what, sealed, context = "the secrets ("+h.half+" metà) of smart card "+c.Serial, h.v, domain.CardSecretsSealContext(c.Serial, h.half)
				return false, nil
			}
		}
		return true, nil
	})
	return what, sealed, context, err
}
