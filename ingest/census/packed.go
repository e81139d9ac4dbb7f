package census

import (
	"encoding/binary"
	"slices"

	"anprsec/domain"
)

// packedUser is a validated row of the Utenti sheet as the census keeps it
// between validation and commit: the whole sheet is held until the comune
// rule has seen every row (docs/rules.md#census), and at Italy scale its
// UserRows, a dozen allocations each, are the largest part of the heap.
// Its strings are one allocation, each prefixed by its length; profiles
// are indexes into domain.Profiles, in the row's order.
type packedUser struct {
	s    string
	row  int32
	card bool
}

// pack returns u in its packed form; u's profiles are known ones (the
// validator refuses any other).
func pack(u *UserRow) packedUser {
	var b []byte
	for _, s := range []string{u.ISTAT, u.CF, u.Surname, u.Name, u.Sex, u.BirthDate, u.Email, u.PEC, u.Exception} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Profiles)))
	for _, p := range u.Profiles {
		b = append(b, byte(slices.IndexFunc(domain.Profiles, func(i domain.ProfileInfo) bool { return i.Profile == p })))
	}
	b = binary.AppendUvarint(b, uint64(len(u.Environments)))
	for _, e := range u.Environments {
		b = append(b, byte(slices.Index(allEnvironments, e)))
	}
	return packedUser{s: string(b), row: int32(u.Row), card: u.Card}
}

var allEnvironments = []domain.Environment{domain.Produzione, domain.PreSubentro}

// unpack returns the row p was packed from.
func (p packedUser) unpack() *UserRow {
	s := p.s
	str := func() string {
		n, k := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		v := s[k : k+int(n)]
		s = s[k+int(n):]
		return v
	}
	u := &UserRow{Row: int(p.row), Card: p.card}
	for _, f := range []*string{&u.ISTAT, &u.CF, &u.Surname, &u.Name, &u.Sex, &u.BirthDate, &u.Email, &u.PEC, &u.Exception} {
		*f = str()
	}
	for _, i := range []byte(str()) {
		u.Profiles = append(u.Profiles, domain.Profiles[i].Profile)
	}
	for _, i := range []byte(str()) {
		u.Environments = append(u.Environments, allEnvironments[i])
	}
	return u
}

// istat returns the row's comune without unpacking the rest.
func (p packedUser) istat() string {
	n, k := binary.Uvarint([]byte(p.s[:min(len(p.s), binary.MaxVarintLen64)]))
	return p.s[k : k+int(n)]
}
