package istat

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

//go:embed prefetture.csv
var prefettureCSV []byte

// prefetture maps 3-digit province codes, and optionally single 6-digit
// comune codes, to the 3-digit code of the prefettura that acts for them.
type prefetture struct {
	byProvince map[string]string
	byComune   map[string]string
}

var defaultPrefetture = sync.OnceValue(func() *prefetture {
	p, err := loadPrefetture(bytes.NewReader(prefettureCSV))
	if err != nil {
		panic("istat: embedded prefetture.csv: " + err.Error())
	}
	return p
})

// WithPrefetture returns a copy of t whose province -> prefettura mapping is
// read from r instead of the embedded prefetture.csv; t itself is unchanged.
// The format is the one of prefetture.csv: ';'-separated, lines starting with
// '#' are comments, a header row with at least the columns "codice" (3-digit
// province code, or a 6-digit comune code overriding its province) and
// "prefettura" (3-digit code). Errors name the line.
func (t *Table) WithPrefetture(r io.Reader) (*Table, error) {
	p, err := loadPrefetture(r)
	if err != nil {
		return nil, err
	}
	c := *t
	c.pref = p
	return &c, nil
}

func loadPrefetture(r io.Reader) (*prefetture, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("istat: reading prefetture: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if !utf8.Valid(data) {
		if data, err = charmap.Windows1252.NewDecoder().Bytes(data); err != nil {
			return nil, fmt.Errorf("istat: decoding Latin-1: %w", err)
		}
	}
	cr := newCSVReader(data)
	header, line, err := readHeader(cr)
	if err != nil {
		return nil, fmt.Errorf("istat: prefetture: %w", err)
	}
	codeCol, prefCol := slices.Index(header, "codice"), slices.Index(header, "prefettura")
	if codeCol < 0 || prefCol < 0 {
		return nil, fmt.Errorf("istat: prefetture: line %d: the header needs the columns \"codice\" and \"prefettura\"", line)
	}
	p := &prefetture{byProvince: map[string]string{}, byComune: map[string]string{}}
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("istat: prefetture: %w", lineErr(err))
		}
		line, _ := cr.FieldPos(0)
		if blankRecord(rec) {
			continue
		}
		code, ppp := field(rec, codeCol), field(rec, prefCol)
		if len(code) != 3 && len(code) != 6 || !isDigits(code) {
			return nil, fmt.Errorf("istat: prefetture: line %d: codice %q is neither a 3-digit province code nor a 6-digit comune code", line, code)
		}
		if len(ppp) != 3 || !isDigits(ppp) {
			return nil, fmt.Errorf("istat: prefetture: line %d: prefettura %q of %s is not a 3-digit code", line, ppp, code)
		}
		if prev, dup := seen[code]; dup {
			return nil, fmt.Errorf("istat: prefetture: line %d: codice %s is already on line %d", line, code, prev)
		}
		seen[code] = line
		if len(code) == 3 {
			p.byProvince[code] = ppp
		} else {
			p.byComune[code] = ppp
		}
	}
	if len(p.byProvince) == 0 {
		return nil, errors.New("istat: prefetture: the table maps no province")
	}
	return p, nil
}

// Prefettura returns the 3-digit code PPP of the prefettura (or the office
// with its functions) that acts for a comune, given its 6-digit ISTAT code,
// or for a province, given its 3-digit code. ok is false when the comune is
// not in the table or its province has no prefettura in the mapping: the
// caller must then refuse to act, not guess.
func (t *Table) Prefettura(istat string) (ppp string, ok bool) {
	switch len(istat) {
	case 3:
		ppp, ok = t.pref.byProvince[istat]
		return ppp, ok
	case 6:
		if _, known := t.byISTAT[istat]; !known {
			return "", false
		}
		if ppp, ok = t.pref.byComune[istat]; ok {
			return ppp, true
		}
		ppp, ok = t.pref.byProvince[istat[:3]]
		return ppp, ok
	}
	return "", false
}

// ProvincesOf returns, sorted, the province codes of the table's comuni that
// prefettura ppp acts for (e.g. "092" gives ["092", "111"]: Cagliari and Sud
// Sardegna). Comuni mapped one by one are not listed: use Prefettura for a
// given comune. Provinces of the mapping that have no comune in the table
// (such as the abolished Sardinian provinces 104-107) are left out.
func (t *Table) ProvincesOf(ppp string) []string {
	var out []string
	for _, prov := range t.provinces() {
		if t.pref.byProvince[prov] == ppp {
			out = append(out, prov)
		}
	}
	return out
}

// Prefetture returns, sorted and without repeats, the codes of the
// prefetture that act for at least one comune of the table: the offices that
// get a drop folder.
func (t *Table) Prefetture() []string {
	var out []string
	for _, c := range t.all {
		if ppp, ok := t.Prefettura(c.ISTAT); ok {
			out = append(out, ppp)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Unmapped returns, sorted, the ISTAT codes of the table's comuni that no
// prefettura acts for. It is empty for the embedded data; a non-empty result
// after loading a new ISTAT list means the prefetture table needs new rows
// (usually for a new province code, the first three digits).
func (t *Table) Unmapped() []string {
	var out []string
	for _, c := range t.all {
		if _, ok := t.Prefettura(c.ISTAT); !ok {
			out = append(out, c.ISTAT)
		}
	}
	return out
}

// provinces returns the distinct province codes of the table, sorted.
func (t *Table) provinces() []string {
	var out []string
	for _, c := range t.all { // sorted by ISTAT, hence by province
		if n := len(out); n == 0 || out[n-1] != c.Province {
			out = append(out, c.Province)
		}
	}
	return out
}
