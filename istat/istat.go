// Package istat holds the reference data of places: the history of the
// Belfiore (cadastral) codes that a codice fiscale carries as birthplace,
// Italian comuni in force and ceased and foreign states, each with its
// periods of validity (Places); the table of today's comuni with their ISTAT
// codes, provinces and regions (Table); and the mapping from provinces to
// the prefettura that acts for them.
//
// The embedded history, luoghi.csv.gz, is built by internal/gen (go
// generate) from the ANPR archive of comuni, ISTAT's list of foreign states
// and ISTAT's list of today's comuni; docs/reference-data.md gives the
// sources, their versions, dates and licences. Default returns the comuni in
// force in it. Load reads a replacement list of today's comuni, in this
// package's own CSV format or straight from ISTAT's published list ("Elenco
// comuni italiani"). prefetture.csv is a hand-kept data table (its comment
// header explains the exceptions).
package istat

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Comune is one Italian municipality.
type Comune struct {
	ISTAT    string // 6-digit ISTAT code, e.g. "058091"
	Name     string // name in Italian, e.g. "Roma"
	Province string // 3-digit historical province code: the first three digits of ISTAT
	Sigla    string // vehicle-plate province abbreviation, e.g. "RM"
	Region   string // region name, e.g. "Lazio"
	Belfiore string // cadastral code used in the codice fiscale, e.g. "H501"
}

// Table is an immutable, indexed list of comuni with its prefetture mapping.
// It is safe for concurrent use.
type Table struct {
	all        []Comune // sorted by ISTAT code
	byISTAT    map[string]int
	byBelfiore map[string]int
	pref       *prefetture
	places     *Places
}

// Default returns the table of the comuni in force in the embedded history
// of places (DefaultPlaces), with the embedded prefetture mapping. It is
// built on first use and then shared.
func Default() *Table { return defaultTable() }

var defaultTable = sync.OnceValue(func() *Table {
	t, err := FromPlaces(DefaultPlaces())
	if err != nil {
		panic("istat: embedded luoghi.csv.gz: " + err.Error())
	}
	return t
})

// Places returns the history of Belfiore codes that goes with the table:
// the embedded one (DefaultPlaces) unless WithPlaces gave another.
func (t *Table) Places() *Places {
	if t.places == nil {
		return DefaultPlaces()
	}
	return t.places
}

// WithPlaces returns a copy of t whose history of Belfiore codes is p; t
// itself is unchanged.
func (t *Table) WithPlaces(p *Places) *Table {
	c := *t
	c.places = p
	return &c
}

// Lookup returns the comune with the given 6-digit ISTAT code. Pass codes
// read from files through NormalizeISTAT first.
func (t *Table) Lookup(istat string) (Comune, bool) {
	i, ok := t.byISTAT[istat]
	if !ok {
		return Comune{}, false
	}
	return t.all[i], true
}

// ByBelfiore returns the comune with the given Belfiore (cadastral) code, as
// found in positions 12–15 of a codice fiscale once omocodia is decoded.
// Codes of foreign countries (see ForeignBelfiore) are not comuni.
func (t *Table) ByBelfiore(code string) (Comune, bool) {
	i, ok := t.byBelfiore[code]
	if !ok {
		return Comune{}, false
	}
	return t.all[i], true
}

// All returns a copy of every comune, sorted by ISTAT code.
func (t *Table) All() []Comune { return slices.Clone(t.all) }

// Len returns the number of comuni in the table.
func (t *Table) Len() int { return len(t.all) }

// ForeignBelfiore reports whether code has the form of the code of a foreign
// country (Z followed by three digits, e.g. "Z330" Morocco), which the codice
// fiscale of a person born abroad carries as birthplace. Whether such a
// state exists, and did on a given day, is told by Places.Birthplace.
func ForeignBelfiore(code string) bool {
	return len(code) == 4 && code[0] == 'Z' && isDigits(code[1:])
}

// isBelfiore reports whether code looks like a Belfiore code: an upper-case
// letter and three digits.
func isBelfiore(code string) bool {
	return len(code) == 4 && code[0] >= 'A' && code[0] <= 'Z' && isDigits(code[1:])
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// NormalizeISTAT turns an ISTAT code as found in a cell into its canonical
// 6-digit text form: blanks around it are dropped, a decimal part made of
// zeros (as spreadsheet programs write numbers: "58091.0", "58091,0") is
// dropped, and the leading zeros lost by a numeric cell are restored, so
// "58091", "58091.0" and " 058091 " all give "058091". Anything that is not
// then 1 to 6 digits, or is all zeros, is an error.
func NormalizeISTAT(s string) (string, error) {
	v := strings.TrimFunc(s, isBlank)
	if i := strings.IndexAny(v, ".,"); i >= 0 {
		frac := v[i+1:]
		if strings.Trim(frac, "0") != "" {
			return "", fmt.Errorf("ISTAT code %q is not a whole number", s)
		}
		v = v[:i]
	}
	if !isDigits(v) || len(v) > 6 {
		return "", fmt.Errorf("ISTAT code %q is not 1 to 6 digits", s)
	}
	if strings.Trim(v, "0") == "" {
		return "", fmt.Errorf("ISTAT code %q is zero", s)
	}
	if len(v) < 6 {
		v = "000000"[len(v):] + v
	}
	return v, nil
}

func isBlank(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u2007', '\u202f', '\ufeff', '\u200b':
		return true
	}
	return false
}

// Load reads a table of comuni from r. Two formats are recognised by their
// header row, whatever the case, accents and blanks of the column names:
//
//   - this package's own CSV (UTF-8, ';'):
//     istat;nome;provincia;sigla;regione;belfiore
//   - ISTAT's "Elenco comuni italiani" CSV (';', Latin-1/Windows-1252): the
//     columns "Codice Comune formato alfanumerico", "Denominazione in
//     italiano" (or "Denominazione (Italiana e straniera)"), "Sigla
//     automobilistica", "Denominazione Regione" and "Codice Catastale del
//     comune" are used; other columns are ignored.
//
// The province of a comune is always the first three digits of its ISTAT code
// (ISTAT's historical province code); ISTAT's "Unità territoriale
// sovracomunale" code is not used, since it numbers metropolitan cities 2xx
// (Roma 258) while prefetture go by province (Roma 058).
//
// Bytes that are not valid UTF-8 are decoded as Windows-1252 (a superset of
// Latin-1). A ',' separator is accepted too. Every comune is checked (6-digit
// code, name, Belfiore code, no duplicates) and errors name the line. The
// embedded prefetture mapping is attached; see WithPrefetture to replace it.
func Load(r io.Reader) (*Table, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("istat: reading comuni: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if !utf8.Valid(data) {
		if data, err = charmap.Windows1252.NewDecoder().Bytes(data); err != nil {
			return nil, fmt.Errorf("istat: decoding Latin-1: %w", err)
		}
	}
	cr := newCSVReader(data)
	header, headerLine, err := readHeader(cr)
	if err != nil {
		return nil, fmt.Errorf("istat: %w", err)
	}
	cols, err := comuniColumns(header, headerLine)
	if err != nil {
		return nil, err
	}

	t := &Table{pref: defaultPrefetture()}
	lines := make([]int, 0, 8000) // line of each comune, for duplicate errors
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("istat: %w", lineErr(err))
		}
		line, _ := cr.FieldPos(0)
		if blankRecord(rec) {
			continue
		}
		c, err := cols.comune(rec)
		if err != nil {
			return nil, fmt.Errorf("istat: line %d: %w", line, err)
		}
		t.all = append(t.all, c)
		lines = append(lines, line)
	}
	if len(t.all) == 0 {
		return nil, errors.New("istat: the list holds no comuni")
	}
	if err := t.index(lines); err != nil {
		return nil, err
	}
	return t, nil
}

// index sorts the comuni and builds the lookup maps, refusing duplicates.
func (t *Table) index(lines []int) error {
	if !slices.IsSortedFunc(t.all, func(a, b Comune) int { return strings.Compare(a.ISTAT, b.ISTAT) }) {
		order := make([]int, len(t.all))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(t.all[a].ISTAT, t.all[b].ISTAT) })
		all, ls := make([]Comune, len(order)), make([]int, len(order))
		for i, j := range order {
			all[i], ls[i] = t.all[j], lines[j]
		}
		t.all, lines = all, ls
	}
	t.byISTAT = make(map[string]int, len(t.all))
	t.byBelfiore = make(map[string]int, len(t.all))
	for i, c := range t.all {
		if j, dup := t.byISTAT[c.ISTAT]; dup {
			return fmt.Errorf("istat: line %d: ISTAT code %s is already on line %d", max(lines[i], lines[j]), c.ISTAT, min(lines[i], lines[j]))
		}
		t.byISTAT[c.ISTAT] = i
		if j, dup := t.byBelfiore[c.Belfiore]; dup {
			later, earlier := i, j
			if lines[later] < lines[earlier] {
				later, earlier = earlier, later
			}
			return fmt.Errorf("istat: line %d: Belfiore code %s of %s is already used by %s %s on line %d",
				lines[later], c.Belfiore, t.all[later].ISTAT, t.all[earlier].ISTAT, t.all[earlier].Name, lines[earlier])
		}
		t.byBelfiore[c.Belfiore] = i
	}
	return nil
}

// newCSVReader returns a lenient reader of ';'- (or ',')-separated data.
func newCSVReader(data []byte) *csv.Reader {
	first := data
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = ';'
	if bytes.Count(first, []byte(",")) > bytes.Count(first, []byte(";")) {
		cr.Comma = ','
	}
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	return cr
}

// readHeader returns the first non-blank record, with folded column names,
// and its line number.
func readHeader(cr *csv.Reader) ([]string, int, error) {
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil, 0, errors.New("the list is empty: no header row")
		}
		if err != nil {
			return nil, 0, lineErr(err)
		}
		if blankRecord(rec) {
			continue
		}
		h := make([]string, len(rec))
		for i, name := range rec {
			h[i] = foldHeader(name)
		}
		line, _ := cr.FieldPos(0)
		return h, line, nil
	}
}

// lineErr rewords an encoding/csv error so that it names the line.
func lineErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %w", pe.Line, pe.Err)
	}
	return err
}

func blankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimFunc(f, isBlank) != "" {
			return false
		}
	}
	return true
}

// foldHeader lower-cases a column name, strips accents and collapses blanks.
func foldHeader(s string) string {
	return strings.Join(strings.Fields(foldAccents(strings.ToLower(s))), " ")
}

// columns holds the index of each field in a record; -1 = absent.
type columns struct {
	istat, name, altName, province, sigla, region, belfiore int
}

// comuniColumns finds the columns of either format in a folded header.
func comuniColumns(h []string, line int) (columns, error) {
	find := func(prefixes ...string) int {
		for _, p := range prefixes {
			for i, name := range h {
				if name == p || (strings.HasSuffix(p, "*") && strings.HasPrefix(name, p[:len(p)-1])) {
					return i
				}
			}
		}
		return -1
	}
	c := columns{
		istat:    find("istat", "codice comune formato alfanumerico"),
		name:     find("nome", "denominazione in italiano"),
		altName:  find("denominazione (italiana e straniera)", "denominazione comune", "denominazione"),
		province: find("provincia"),
		sigla:    find("sigla", "sigla automobilistica"),
		region:   find("regione", "denominazione regione"),
		belfiore: find("belfiore", "codice catastale*"),
	}
	if c.name < 0 {
		c.name, c.altName = c.altName, -1
	}
	var missing []string
	if c.istat < 0 {
		missing = append(missing, `"istat" (or ISTAT's "Codice Comune formato alfanumerico")`)
	}
	if c.name < 0 {
		missing = append(missing, `"nome" (or "Denominazione in italiano")`)
	}
	if c.belfiore < 0 {
		missing = append(missing, `"belfiore" (or "Codice Catastale del comune")`)
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("istat: line %d: not a list of comuni: missing column %s", line, strings.Join(missing, ", "))
	}
	return c, nil
}

func field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimFunc(rec[i], isBlank)
}

// comune builds and checks one comune from a record.
func (cols columns) comune(rec []string) (Comune, error) {
	raw := field(rec, cols.istat)
	code, err := NormalizeISTAT(raw)
	if err != nil {
		return Comune{}, err
	}
	c := Comune{
		ISTAT:    code,
		Name:     field(rec, cols.name),
		Province: code[:3],
		Sigla:    strings.ToUpper(field(rec, cols.sigla)),
		Region:   field(rec, cols.region),
		Belfiore: strings.ToUpper(field(rec, cols.belfiore)),
	}
	if c.Name == "" {
		c.Name = field(rec, cols.altName)
	}
	if c.Name == "" {
		return Comune{}, fmt.Errorf("comune %s has no name", code)
	}
	if !isBelfiore(c.Belfiore) {
		return Comune{}, fmt.Errorf("comune %s %s: Belfiore code %q is not a letter and 3 digits", code, c.Name, c.Belfiore)
	}
	if ForeignBelfiore(c.Belfiore) {
		return Comune{}, fmt.Errorf("comune %s %s: Belfiore code %s is a foreign country's", code, c.Name, c.Belfiore)
	}
	if p := field(rec, cols.province); p != "" && p != c.Province {
		if np, err := NormalizeISTAT(p); err != nil || np[3:] != c.Province {
			return Comune{}, fmt.Errorf("comune %s %s: province %q is not the first three digits of its code", code, c.Name, p)
		}
	}
	return c, nil
}
