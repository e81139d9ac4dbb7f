package census

import (
	"reflect"
	"strings"
	"testing"

	"anprsec/domain"
)

func TestPackedUserRowComesBackWhole(t *testing.T) {
	rows := []*UserRow{
		{Row: 7, ISTAT: "058091", CF: "RSSMRA80A01H501U", Surname: "Rossi", Name: "Mario", Sex: "M",
			BirthDate: "1980-01-01", Email: "mario.rossi@example.it", PEC: "", Card: true,
			Profiles:     []domain.Profile{domain.Profiles[2].Profile, domain.Profiles[0].Profile},
			Environments: []domain.Environment{domain.Produzione, domain.PreSubentro}},
		{Row: 1 << 20, ISTAT: "001272", CF: "DLLNNA90D41L219X", Surname: "Dell'Àncora " + strings.Repeat("é", MaxCell/2), Name: "Anna",
			Sex: "F", Email: "a@b.it", PEC: "anna@pec.it", Exception: "omocodia: codice del Ministero",
			Profiles:     []domain.Profile{domain.Profiles[len(domain.Profiles)-1].Profile},
			Environments: []domain.Environment{domain.PreSubentro}},
	}
	for _, r := range rows {
		p := pack(r)
		if got := p.unpack(); !reflect.DeepEqual(got, r) {
			t.Errorf("unpack(pack(%+v)) = %+v", r, got)
		}
		if p.istat() != r.ISTAT {
			t.Errorf("istat() = %q, want %q", p.istat(), r.ISTAT)
		}
	}
}
