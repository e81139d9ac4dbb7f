package store

import (
	"hash/maphash"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// An import into a store that does not hold its records yet (the first
// census of a comune, of Italy) looks up, row after row, keys that are not
// there: a person, his pseudonym, an utenza, a comune. Badger answers such a
// miss by searching its memtables and asking every table's Bloom filter,
// about as dear as a hit. A pipeline may instead keep a filter of the keys
// under some prefixes (TrackAbsent): built from the keys the store holds
// when the pipeline starts writing, under the writer lock, and grown with
// every key the pipeline writes there. Nothing else writes while the
// pipeline holds the lock, so a key the filter has never seen is not in the
// store: the read answers ErrNotFound without asking Badger. A key the
// filter may have seen is read as before.

// absentBitsPerKey sizes the filter: about 1% of false "may be present"
// with absentProbes probes.
const (
	absentBitsPerKey = 10
	absentProbes     = 7
)

// absentFilter is a Bloom filter of the keys under prefixes.
type absentFilter struct {
	prefixes []string
	bits     []uint64
	seed     maphash.Seed
}

// tracks reports whether key is under one of the filter's prefixes.
func (f *absentFilter) tracks(key string) bool {
	for _, p := range f.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// add notes that key may be present (a key outside the prefixes is ignored).
func (f *absentFilter) add(key string) {
	if f == nil || !f.tracks(key) {
		return
	}
	h := maphash.String(f.seed, key)
	h1, h2, mask := uint32(h), uint32(h>>32)|1, uint32(len(f.bits)*64-1)
	for i := range uint32(absentProbes) {
		b := (h1 + i*h2) & mask
		f.bits[b/64] |= 1 << (b % 64)
	}
}

// lacks reports whether key, under one of the prefixes, is surely absent.
func (f *absentFilter) lacks(key string) bool {
	if f == nil || !f.tracks(key) {
		return false
	}
	h := maphash.String(f.seed, key)
	h1, h2, mask := uint32(h), uint32(h>>32)|1, uint32(len(f.bits)*64-1)
	for i := range uint32(absentProbes) {
		b := (h1 + i*h2) & mask
		if f.bits[b/64]&(1<<(b%64)) == 0 {
			return true
		}
	}
	return false
}

// TrackAbsent makes the pipeline answer the reads of absent keys under
// prefixes without asking Badger (see above). newKeys is about how many
// keys the pipeline will write under them; when the store already holds
// more keys there than that, most reads find their key and no filter is
// kept. It waits for the transaction in flight.
func (p *Pipeline) TrackAbsent(newKeys int, prefixes ...string) error {
	if p.closed {
		return nil
	}
	if err := p.wait(); err != nil {
		return err
	}
	// A snapshot with every write of the pipeline (none is in flight).
	if p.read != nil {
		p.read.Discard()
	}
	p.read = p.s.db.NewTransaction(false)
	var held []string
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	for _, pre := range prefixes {
		opt.Prefix = []byte(pre)
		it := p.read.NewIterator(opt)
		for it.Rewind(); it.Valid() && len(held) <= newKeys; it.Next() {
			held = append(held, string(it.Item().Key()))
		}
		it.Close()
		if len(held) > newKeys {
			p.absent = nil
			return nil
		}
	}
	words := 1 // a power of two: a probe is a mask
	for words*64 < (newKeys+len(held))*absentBitsPerKey {
		words *= 2
	}
	f := &absentFilter{prefixes: prefixes, bits: make([]uint64, words), seed: maphash.MakeSeed()}
	for _, k := range held {
		f.add(k)
	}
	p.absent = f
	return nil
}
