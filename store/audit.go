package store

import (
	"errors"
	"strings"

	badger "github.com/dgraph-io/badger/v4"

	"anprsec/domain"
)

// Read-only walks over whole record kinds, in key order, for the audit
// exports (export/audit): each record is decoded and handed to fn one at a
// time, so a national report never holds the store in memory. Use them
// inside one View to read a consistent snapshot.

// AllUtenze calls fn for each utenza, in ISTAT then CF order.
func (tx *Tx) AllUtenze(fn func(*domain.Utenza) error) error {
	return tx.each("u/", func(k string, v []byte) error {
		var u domain.Utenza
		if err := decode(k, v, &u); err != nil {
			return err
		}
		return fn(&u)
	})
}

// AllCards calls fn for each smart card, in serial order.
func (tx *Tx) AllCards(fn func(*domain.SmartCard) error) error {
	return tx.each("s/", func(k string, v []byte) error {
		var c domain.SmartCard
		if err := decode(k, v, &c); err != nil {
			return err
		}
		return fn(&c)
	})
}

// AllPostazioni calls fn for each workstation, in code order (so grouped by
// comune).
func (tx *Tx) AllPostazioni(fn func(*domain.Postazione) error) error {
	return tx.each("w/", func(k string, v []byte) error {
		var p domain.Postazione
		if err := decode(k, v, &p); err != nil {
			return err
		}
		return fn(&p)
	})
}

// AllPersons calls fn for each person, in CF order.
func (tx *Tx) AllPersons(fn func(*domain.Person) error) error {
	return tx.each("p/", func(k string, v []byte) error {
		var p domain.Person
		if err := decode(k, v, &p); err != nil {
			return err
		}
		return fn(&p)
	})
}

// ComuniByPerson calls fn once per person holding at least one utenza, in
// CF order, with the ISTAT codes of its utenze (from the by-CF index, keys
// only).
func (tx *Tx) ComuniByPerson(fn func(cf string, istat []string) error) error {
	const p = "i/u-cf/"
	var cur string
	var codes []string
	err := tx.scan(p, false, func(k string, _ []byte) (bool, error) {
		cf, code, ok := strings.Cut(strings.TrimPrefix(k, p), "/")
		if !ok {
			return true, nil
		}
		if cf != cur && len(codes) > 0 {
			if err := fn(cur, codes); err != nil {
				return false, err
			}
			codes = codes[:0]
		}
		cur = cf
		codes = append(codes, code)
		return true, nil
	})
	if err != nil || len(codes) == 0 {
		return err
	}
	return fn(cur, codes)
}

// errStopHistory ends EachHistory early without an error.
var errStopHistory = errors.New("stop")

// EachHistory calls fn for each history entry with seq > after, in order,
// until fn returns false or an error. Unlike Store.History it keeps
// nothing: one entry is decoded at a time.
func (tx *Tx) EachHistory(after uint64, fn func(*Entry) (bool, error)) error {
	r := tx.resolver()
	err := tx.each("h/", func(k string, val []byte) error {
		err := eachRecord(val, func(_, _, body []byte) error {
			var e Entry
			if err := decode(k, body, &e); err != nil {
				return err
			}
			if e.Seq <= after {
				return nil
			}
			if err := r.resolveEntry(&e); err != nil {
				return err
			}
			more, err := fn(&e)
			if err == nil && !more {
				err = errStopHistory
			}
			return err
		})
		if errors.Is(err, errTruncatedBlock) {
			return damaged(k, err)
		}
		return err
	})
	if errors.Is(err, errStopHistory) {
		err = nil
	}
	return err
}

// each calls fn with the key and value of each key with prefix, in key
// order, until fn returns an error. Unlike scan it neither prefetches
// (Badger starts a goroutine per item and keeps up to 100 values ahead,
// megabytes for the history blocks) nor copies: val is valid only during
// the call. A value that cannot be read is ErrDamaged, naming the record.
func (tx *Tx) each(prefix string, fn func(key string, val []byte) error) error {
	if tx.pipe != nil {
		return errors.New("store: scans are not available in a pipelined transaction")
	}
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	opt.Prefix = []byte(prefix)
	it := tx.txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := string(item.Key())
		var fnErr error
		err := item.Value(func(v []byte) error {
			fnErr = fn(key, v)
			return fnErr
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return damaged(key, err)
		}
	}
	return nil
}
