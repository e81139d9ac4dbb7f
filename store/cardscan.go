package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	badger "github.com/dgraph-io/badger/v4"

	"anprsec/domain"
)

// Reads of many records by key, for a job that works through thousands of
// cards at once (ordini-sc), in key order. Where the wanted records lie
// close together (the cards of an order, made in serial order; the comuni
// of its cards) one iterator walks the keys, stepping over the few
// records between two wanted ones and seeking only over a longer gap,
// instead of one point read (a seek in every level of the tree) per
// record (the holders of every card of a national run, a good part of
// the persons, are walked too). Where they lie far apart (the holders of
// one order's cards among every person of the census) point reads in key
// order cost less. Inside an Update the records read either way are read
// keys of the transaction as with Card: a commit that changed one of them
// meanwhile makes the transaction conflict.

// seekGap is how many records an ordered read steps over before it seeks.
const seekGap = 32

// readSorted calls fn(i, value, found) with the record prefix+ids[i] for
// each ids[i], in the order of ids, which must be ascending; found is false
// for a record that does not exist. The value is valid only during the
// call. walk says the records lie close together.
func (tx *Tx) readSorted(prefix string, ids []string, walk bool, fn func(i int, val []byte, found bool) error) error {
	if tx.pipe != nil || !walk {
		for i, id := range ids {
			v, err := tx.getRaw(prefix + id)
			found := err == nil
			if errors.Is(err, ErrNotFound) {
				err = nil
			}
			if err != nil {
				return err
			}
			if err := fn(i, v, found); err != nil {
				return err
			}
		}
		return nil
	}
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	opt.Prefix = []byte(prefix)
	it := tx.txn.NewIterator(opt)
	defer it.Close()
	var key []byte
	for i, id := range ids {
		key = append(append(key[:0], prefix...), id...)
		if i == 0 {
			it.Seek(key)
		}
		for n := 0; it.Valid() && bytes.Compare(it.Item().Key(), key) < 0; n++ {
			if n == seekGap {
				it.Seek(key)
				break
			}
			it.Next()
		}
		if !it.Valid() || !bytes.Equal(it.Item().Key(), key) {
			if err := fn(i, nil, false); err != nil {
				return err
			}
			continue
		}
		var fnErr error
		if err := it.Item().Value(func(v []byte) error {
			fnErr = fn(i, v, true)
			return nil
		}); err != nil {
			return damaged(string(key), err)
		}
		if fnErr != nil {
			return fnErr
		}
	}
	return nil
}

// sortedUnique returns the distinct values of ids in ascending order.
func sortedUnique(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}

// CardCache remembers cards as a job read or wrote them, with their
// records' bytes, so that ReadCards does not decode again a card whose
// record has not changed since. It never answers for the store: every
// read still reads the record and compares its bytes. Not safe for
// concurrent use; nil is a cache that remembers nothing.
type CardCache struct{ m map[string]cachedCard }

type cachedCard struct {
	raw  []byte
	card domain.SmartCard
}

// NewCardCache returns an empty CardCache.
func NewCardCache() *CardCache { return &CardCache{m: map[string]cachedCard{}} }

func (cc *CardCache) keep(raw []byte, c *domain.SmartCard) {
	if cc != nil {
		cc.m[c.Serial] = cachedCard{raw: raw, card: *c}
	}
}

// lookup copies into c the remembered card of serial, and reports true,
// when its record still holds raw.
func (cc *CardCache) lookup(serial string, raw []byte, c *domain.SmartCard) bool {
	if cc == nil {
		return false
	}
	v, ok := cc.m[serial]
	if !ok || !bytes.Equal(v.raw, raw) {
		return false
	}
	*c = v.card
	return true
}

// ReadCards returns the cards of serials, in the order of serials, read
// in one pass in key order; a serial without a card is ErrNotFound. Each
// card returned is the caller's to change (its byte slices are shared and
// must not be written into); cache, when not nil, spares the decoding of
// the cards whose record it remembers unchanged, and remembers the others.
func (tx *Tx) ReadCards(serials []string, cache *CardCache) ([]*domain.SmartCard, error) {
	sorted := sortedUnique(serials)
	cards := make([]domain.SmartCard, len(sorted)) // one allocation for all
	err := tx.readSorted("s/", sorted, true, func(i int, raw []byte, found bool) error {
		s := sorted[i]
		if !found {
			return fmt.Errorf("smart card %s: %w", s, ErrNotFound)
		}
		if cache.lookup(s, raw, &cards[i]) {
			return nil
		}
		if err := decode("s/"+s, raw, &cards[i]); err != nil {
			return err
		}
		if cache != nil {
			cache.keep(bytes.Clone(raw), &cards[i])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*domain.SmartCard, len(serials))
	if slices.Equal(sorted, serials) {
		for i := range out {
			out[i] = &cards[i]
		}
		return out, nil
	}
	given := make(map[string]bool, len(sorted))
	for i, s := range serials {
		j, _ := slices.BinarySearch(sorted, s)
		c := &cards[j]
		if given[s] { // a serial asked twice: each its own copy
			cp := *c
			c = &cp
		}
		given[s] = true
		out[i] = c
	}
	return out, nil
}

// PutReadCard stores c, the changed copy of prev, which this transaction
// read (ReadCards): the record is not read again to find the indexes to
// replace, and the index keys that stay the same are not written again.
// cache, when not nil, remembers c as written.
func (tx *Tx) PutReadCard(prev, c *domain.SmartCard, cache *CardCache) error {
	if prev.Serial != c.Serial {
		return fmt.Errorf("store: smart card %s stored over %s", c.Serial, prev.Serial)
	}
	old, cur := cardIndexes(prev), cardIndexes(c)
	for i := range cur {
		if old[i] == cur[i] {
			continue
		}
		if err := tx.del(old[i]); err != nil {
			return err
		}
		if err := tx.setRaw(cur[i], nil); err != nil {
			return err
		}
	}
	b, err := encodeRecord(c)
	if err != nil {
		return err
	}
	if err := tx.setRaw("s/"+c.Serial, b); err != nil {
		return err
	}
	cache.keep(b, c)
	return nil
}

// PersonName is the surname and name of a person (domain.Person's).
type PersonName struct {
	Surname string
	Name    string
}

// PersonNamesByCF returns the names of the persons of the codici fiscali
// cfs that have a record, by codice fiscale, read in key order; dense says
// that they are a good part of every person (the holders of a national
// run's cards), read then by walking the keys.
func (tx *Tx) PersonNamesByCF(cfs []string, dense bool) (map[string]*PersonName, error) {
	persons, err := readMap[domain.Person](tx, "p/", cfs, dense)
	names := make(map[string]*PersonName, len(persons))
	for cf, p := range persons {
		names[cf] = &PersonName{Surname: p.Surname, Name: p.Name}
	}
	return names, err
}

// CardHolders returns the codice fiscale of the holder of each card of
// serials, by serial, from the index of the cards by holder: one walk of
// its keys, for a job that works through a good part of every card.
func (tx *Tx) CardHolders(serials []string) (map[string]string, error) {
	want := make(map[string]bool, len(serials))
	for _, s := range serials {
		want[s] = true
	}
	out := make(map[string]string, len(serials))
	const p = "i/s-cf/"
	err := tx.scan(p, false, func(k string, _ []byte) (bool, error) {
		if cf, serial, ok := strings.Cut(k[len(p):], "/"); ok && want[serial] {
			out[serial] = strings.Clone(cf) // not the whole key
		}
		return true, nil
	})
	return out, err
}

// ComuniByISTAT returns the comuni of the ISTAT codes istats that have a
// record, by ISTAT code, read in one pass in key order.
func (tx *Tx) ComuniByISTAT(istats []string) (map[string]*domain.Comune, error) {
	return readMap[domain.Comune](tx, "c/", istats, true)
}

func readMap[T any](tx *Tx, prefix string, ids []string, walk bool) (map[string]*T, error) {
	sorted := sortedUnique(ids)
	out := make(map[string]*T, len(sorted))
	err := tx.readSorted(prefix, sorted, walk, func(i int, raw []byte, found bool) error {
		if !found {
			return nil
		}
		v := new(T)
		if err := decode(prefix+sorted[i], raw, v); err != nil {
			return err
		}
		out[sorted[i]] = v
		return nil
	})
	return out, err
}

// PutReadCardOrder stores o, the changed copy of prev, which this
// transaction read (CardOrder), without reading the record again to find
// the index to replace.
func (tx *Tx) PutReadCardOrder(prev, o *CardOrder) error {
	if prev.Name != o.Name {
		return fmt.Errorf("store: card order %s stored over %s", o.Name, prev.Name)
	}
	if err := tx.setIndexes(orderIndexes(prev), orderIndexes(o)); err != nil {
		return err
	}
	return tx.set("co/"+o.Name, o)
}
