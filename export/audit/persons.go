package audit

import (
	"errors"
	"math"
	"slices"
	"time"

	"anprsec/domain"
	"anprsec/store"
)

// persons is what the national export needs of every person (name, card,
// last change), read in one scan of the store instead of one lookup per
// utenza. It is compact: the strings of all persons share one backing
// string, and the records hold offsets into it (about 80 bytes a person
// with the map, some 8 MB for Italy).
type persons struct {
	text string
	recs []personRec
	byCF map[string]int32
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

// loadPersons reads every person; tick is called for each.
func loadPersons(tx *store.Tx, tick func()) (*persons, error) {
	var arena []byte
	var recs []personRec
	err := tx.AllPersons(func(p *domain.Person) error {
		tick()
		if len(arena)+len(p.CF)+len(p.Surname)+len(p.Name)+len(p.Card) > math.MaxUint32 {
			return errors.New("audit: persons too large to index")
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
	ps := &persons{text: string(arena), recs: slices.Clip(recs), byCF: make(map[string]int32, len(recs))}
	for i, r := range recs {
		ps.byCF[ps.text[r.off:r.cf]] = int32(i)
	}
	return ps, nil
}

// get returns the person with fiscal code cf.
func (ps *persons) get(cf string) (person, bool) {
	i, ok := ps.byCF[cf]
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
