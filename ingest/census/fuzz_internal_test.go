package census

import (
	"net/mail"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/istat"
)

// FuzzValidatorRow runs (*Validator).User on arbitrary cells under the
// standard header (in a fuzzed column order) and checks that an accepted row
// is consistent: a valid CF, a known 6-digit ISTAT code, sex and birth date
// agreeing with the CF, a personal e-mail that is not a PEC, profiles and
// environments known and not repeated, a card when a profile needs one.
func FuzzValidatorRow(f *testing.F) {
	f.Add("58091", "Roma", "rssmra 68a01 h501y", "Rossi", "Mario", "M", "24838", "mario.rossi@example.it", "", "ASC", "SI", "PRODUZIONE", uint8(0))
	f.Add("058091", "ROMA", "CCCFBA85D03L21VE", "Cucco", "Fabio", "m", "03/04/1985", "fabio.cucco@example.it", "fabio@pec.example.it", "ALS; OPERATORE", "si", "PRODUZIONE;PRE-SUBENTRO", uint8(1))
	f.Add("58091.0", "Roma", "MRTMRA83T56A269B", "Martini", "Maria", "F", "1983-12-16", "maria.martini@Example.IT", "", "ALP,ALP", "x", "produzione,produzione", uint8(2))
	f.Add("58091", "Roma", "THDSDA95P08Z330H", "Thdsda", "Saida", "", "", "ada@example.it", "", "consultazione", "", "pre subentro", uint8(3))
	f.Add("58091", "Roma", "VRDGPP80A01H501U", "Verdi", "Giuseppe", "M", "NaN", "giuseppe.verdi@legalmail.it", "", "OPERATORE", "NO", "PRODUZIONE", uint8(4))
	f.Add("15146", "Milano", "BNCLRA75M41F205A", "Bianchi", "Laura", "F", "2000-01-01T10:00:00+02:00", "Laura <laura@example.it>", "", "ASC", "SI", "TEST", uint8(5))
	f.Add(" 058091 ", "Róma", "rssmra68a01h501y", " Rossi ", "Mario", "M", "01.01.1968", "a@b.c", "pec", "APL", "1", "PRODUZIONE", uint8(6))
	v := &Validator{Comuni: istat.Default()}
	f.Fuzz(func(t *testing.T, codice, comune, cf, cognome, nome, sesso, nascita, email, pec, profili, card, ambiente string, order uint8) {
		values := map[string]string{ColISTAT: codice, ColComune: comune, ColCF: cf, ColCognome: cognome, ColNome: nome, ColSesso: sesso,
			ColNascita: nascita, ColEmail: email, ColPEC: pec, ColProfili: profili, ColCard: card, ColAmbiente: ambiente}
		// A column order from order: a rotation, reversed when the top bit is set.
		cols := append([]string{}, UserColumns...)
		k := int(order&0x7f) % len(cols)
		cols = append(cols[k:], cols[:k]...)
		if order&0x80 != 0 {
			for i, j := 0, len(cols)-1; i < j; i, j = i+1, j-1 {
				cols[i], cols[j] = cols[j], cols[i]
			}
		}
		hdr := make([]string, len(cols))
		cells := make([]string, len(cols))
		for i, c := range cols {
			hdr[i] = strings.ToUpper(c)
			cells[i] = values[c]
		}
		h, err := parseHeader(hdr, UserColumns, nil)
		if err != nil {
			t.Fatalf("parseHeader(%q): %v", hdr, err)
		}
		u, rerr := v.User(h, cells, 7)
		if rerr != nil {
			if u != nil {
				t.Errorf("refused row with a result: %+v", u)
			}
			if rerr.Code == "" || rerr.Message == "" {
				t.Errorf("refusal without code or message: %+v", rerr)
			}
			if !utf8.ValidString(rerr.Message) {
				t.Errorf("refusal message is not UTF-8: %q", rerr.Message)
			}
			return
		}
		if u.Row != 7 {
			t.Errorf("row = %d", u.Row)
		}
		parsed, err := codfisc.Parse(u.CF)
		if err != nil {
			t.Fatalf("accepted CF %q does not parse: %v", u.CF, err)
		}
		if codfisc.Normalize(u.CF) != u.CF {
			t.Errorf("accepted CF %q not normalized", u.CF)
		}
		if len(u.ISTAT) != 6 || strings.Trim(u.ISTAT, "0123456789") != "" {
			t.Errorf("accepted ISTAT %q is not 6 digits", u.ISTAT)
		}
		if _, ok := istat.Default().Lookup(u.ISTAT); !ok {
			t.Errorf("accepted ISTAT %q is not a comune", u.ISTAT)
		}
		if u.Surname == "" || u.Name == "" || u.Surname != strings.TrimSpace(u.Surname) {
			t.Errorf("accepted names %q %q", u.Surname, u.Name)
		}
		if err := parsed.CheckNames(u.Surname, u.Name); err != nil {
			t.Errorf("accepted names that do not match the CF: %v", err)
		}
		if _, err := istat.DefaultPlaces().Birthplace(parsed.Belfiore, parsed.BirthDates(time.Now())...); err != nil {
			t.Errorf("accepted birthplace: %v", err)
		}
		if u.Sex != parsed.Sex {
			t.Errorf("sex %q, CF says %q", u.Sex, parsed.Sex)
		}
		if u.BirthDate != "" {
			d, err := time.Parse("2006-01-02", u.BirthDate)
			if err != nil || !parsed.Matches(d) {
				t.Errorf("birth date %q does not match CF %s (%v)", u.BirthDate, u.CF, err)
			}
		}
		if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email || IsPEC(u.Email) {
			t.Errorf("accepted e-mail %q (PEC: %v, err %v)", u.Email, IsPEC(u.Email), err)
		}
		if pec != "" && strings.TrimSpace(pec) != "" && u.PEC == "" {
			t.Errorf("PEC %q dropped", pec)
		}
		if len(u.Profiles) == 0 || len(u.Environments) == 0 {
			t.Errorf("accepted without profiles or environments: %+v", u)
		}
		needsCard := false
		seenP := map[domain.Profile]bool{}
		for _, p := range u.Profiles {
			info, ok := domain.LookupProfile(string(p))
			if !ok || seenP[p] {
				t.Errorf("profile %q unknown or repeated in %v", p, u.Profiles)
			}
			seenP[p] = true
			needsCard = needsCard || info.NeedsCard
		}
		if needsCard && !u.Card {
			t.Errorf("profiles %v need a card, Card = false", u.Profiles)
		}
		seenE := map[domain.Environment]bool{}
		for _, e := range u.Environments {
			if (e != domain.Produzione && e != domain.PreSubentro) || seenE[e] {
				t.Errorf("environment %q unknown or repeated in %v", e, u.Environments)
			}
			seenE[e] = true
		}
	})
}

// FuzzFoldHeader checks that folding is idempotent and yields lower-case
// letters and digits separated by single spaces, and that ASCII case,
// punctuation and blanks do not matter.
func FuzzFoldHeader(f *testing.F) {
	for _, s := range []string{"Codice ISTAT", "  DATA   di nascita ", "Codice Fìscale", "P.E.C.", "Smart-Card", "Ambiente\t", "İstanbul", "ǅ", "Straße", "ﬁ", "Å", "", "\xff\xfe", "a\u0301", "١٢٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := FoldHeader(s)
		if again := FoldHeader(got); again != got {
			t.Errorf("FoldHeader not idempotent: %q -> %q -> %q", s, got, again)
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Errorf("FoldHeader(%q) = %q: bad blanks", s, got)
		}
		for _, r := range got {
			if r != ' ' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				t.Errorf("FoldHeader(%q) = %q holds %q", s, got, r)
			}
		}
		if !utf8.ValidString(got) {
			t.Errorf("FoldHeader(%q) = %q is not UTF-8", s, got)
		}
		ascii := true
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				ascii = false
			}
		}
		if ascii {
			if up := FoldHeader(strings.ToUpper(s)); up != got {
				t.Errorf("FoldHeader is case-sensitive: %q -> %q, upper -> %q", s, got, up)
			}
			if sp := FoldHeader(" _" + s + ". "); sp != got {
				t.Errorf("FoldHeader depends on surrounding punctuation: %q -> %q vs %q", s, got, sp)
			}
		}
	})
}

// FuzzParseHeader: a header parses only when every required column is found
// once, and the index of each column points at a cell that folds to its name.
func FuzzParseHeader(f *testing.F) {
	f.Add(strings.Join(UserColumns, "|"))
	f.Add(strings.Join(WorkstationColumns, "|"))
	f.Add("codice istat|CODICE ISTAT|Numero postazioni|Certificato server")
	f.Add("|| Codice-ISTAT |numero  postazioni|certificato server!|extra")
	f.Fuzz(func(t *testing.T, row string) {
		cells := strings.Split(row, "|")
		for _, required := range [][]string{UserColumns, WorkstationColumns} {
			h, err := parseHeader(cells, required, []string{"Note"})
			if err != nil {
				continue
			}
			for _, name := range required {
				i, ok := h.index[name]
				if !ok || i < 0 || i >= len(cells) || FoldHeader(cells[i]) != FoldHeader(name) {
					t.Errorf("parseHeader(%q): column %q at %d, ok %v", cells, name, i, ok)
				}
			}
			if got := h.cell(cells, required[0]); got != strings.TrimSpace(cells[h.index[required[0]]]) {
				t.Errorf("cell = %q", got)
			}
			h.where(required[0])
		}
	})
}

// FuzzParseDate: parseDate never panics, and a date it accepts is a plain
// calendar date (midnight UTC) in the years 1900-2100 it promises.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"24838", "31140.5", "01/01/1968", "1/2/1968", "1968-01-01", "01-01-1968", "01.01.1968",
		"1968-01-01T23:30:00-02:00", "0", "1", "60", "2958465", "2958466", "-1", "1e3", "0x1p5", "Inf", "31/02/2000", "", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDate(s)
		if err != nil {
			if !utf8.ValidString(err.Error()) {
				t.Errorf("parseDate(%q) error is not UTF-8: %q", s, err)
			}
			return
		}
		if d.Location() != time.UTC || d.Hour() != 0 || d.Minute() != 0 || d.Second() != 0 || d.Nanosecond() != 0 {
			t.Errorf("parseDate(%q) = %v: not a midnight UTC date", s, d)
		}
		if d.Year() < 1900 || d.Year() > 2100 {
			t.Errorf("parseDate(%q) = %v: year outside 1900-2100, should be an error", s, d)
		}
	})
}
