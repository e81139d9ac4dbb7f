package audit

import (
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/store"
)

// persons is what the national export needs of every person (name, card,
// last change), read in one scan of the store instead of one lookup per
// utenza. It is compact: the strings of all persons share one backing
// string, the records hold offsets into it and are sorted by CF, found by
// binary search (about 60 bytes a person, some 6 MB for Italy, where a map
// of domain.Person was several times that).
type persons struct {
	text string
	recs []personRec
}

// personRec: the CF, surname, name and card serial of a person are
// text[off:cf], text[cf:sur], text[sur:nm], text[nm:card].
type personRec struct {
	off, cf, sur, nm, card uint32
	nsec                   int32 // -1: the zero time
	sec                    int64
}

// person is one person as the export uses it (the zero value for a CF
// without a record).
type person struct {
	surname, name, card string
	updated             time.Time
}

// loadPersons reads every person.
func loadPersons(tx *store.Tx) (*persons, error) {
	var arena []byte
	var recs []personRec
	err := tx.AllPersons(func(p *domain.Person) error {
		if len(arena)+len(p.CF)+len(p.Surname)+len(p.Name)+len(p.Card) > math.MaxUint32 {
			return errors.New("audit: troppi dati delle persone da indicizzare")
		}
		r := personRec{off: uint32(len(arena)), nsec: -1}
		arena = append(arena, p.CF...)
		r.cf = uint32(len(arena))
		arena = append(arena, p.Surname...)
		r.sur = uint32(len(arena))
		arena = append(arena, p.Name...)
		r.nm = uint32(len(arena))
		arena = append(arena, p.Card...)
		r.card = uint32(len(arena))
		if !p.Updated.IsZero() {
			r.sec, r.nsec = p.Updated.Unix(), int32(p.Updated.Nanosecond())
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	ps := &persons{text: string(arena), recs: slices.Clip(recs)}
	// The store's key order is the CFs' byte order: sorted already.
	if !slices.IsSortedFunc(ps.recs, ps.cmp) {
		slices.SortFunc(ps.recs, ps.cmp)
	}
	return ps, nil
}

func (ps *persons) cf(r *personRec) string { return ps.text[r.off:r.cf] }

func (ps *persons) cmp(a, b personRec) int { return strings.Compare(ps.cf(&a), ps.cf(&b)) }

// get returns the person with fiscal code cf.
func (ps *persons) get(cf string) (person, bool) {
	i, ok := slices.BinarySearchFunc(ps.recs, cf, func(r personRec, cf string) int { return strings.Compare(ps.cf(&r), cf) })
	if !ok {
		return person{}, false
	}
	r := &ps.recs[i]
	p := person{surname: ps.text[r.cf:r.sur], name: ps.text[r.sur:r.nm], card: ps.text[r.nm:r.card]}
	if r.nsec >= 0 {
		p.updated = time.Unix(r.sec, int64(r.nsec)).UTC()
	}
	return p, true
}
