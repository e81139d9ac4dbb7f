package istat

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// archiveColumns are the columns of the ANPR archive of comuni that
// ReadArchive uses; the others are ignored.
var archiveColumns = []string{"DATAISTITUZIONE", "DATACESSAZIONE", "CODISTAT", "CODCATASTALE",
	"DENOMINAZIONE_IT", "ALTRADENOMINAZIONE", "IDREGIONE", "STATO", "SIGLAPROVINCIA", "DATAULTIMOAGG"}

// openEnd is the DATACESSAZIONE of a period in force in the archive.
const openEnd = "9999-12-31"

// ReadArchive reads the Ministry's ANPR archive of comuni in its published
// layout (ANPR_archivio_comuni.csv: ','-separated UTF-8, a header row naming
// the columns, dates as YYYY-MM-DD, DATACESSAZIONE 9999-12-31 for a period
// in force) into a history of places. The archive has no foreign states:
// those of base are kept. A name that is the same as base's for the same
// code is written as base writes it ("ROMA" stays "Roma"). Rows of comuni
// still to be instituted (STATO D) and without a Belfiore code (empty or
// ND) are skipped. The date of the data is the
// latest date in the file. Errors name the line.
func ReadArchive(r io.Reader, base *Places) (*Places, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("istat: reading the archive: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if !utf8.Valid(data) {
		return nil, errors.New("istat: the archive is not UTF-8")
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	col, err := archiveHeader(cr)
	if err != nil {
		return nil, err
	}
	p := &Places{all: make([]Place, 0, 20000)}
	if p.all, p.date, err = archiveRows(cr, col, p.all); err != nil {
		return nil, err
	}
	if len(p.all) == 0 {
		return nil, errors.New("istat: the archive holds no comuni")
	}
	if base != nil {
		for _, pl := range base.all {
			if pl.Foreign() {
				p.all = append(p.all, pl)
			}
		}
	}
	sortPlaces(p.all)
	p.index()
	if base != nil {
		p.namesAs(base)
	}
	return p, nil
}

// archiveHeader reads the header row of the archive: the index of each
// column by name.
func archiveHeader(cr *csv.Reader) (map[string]int, error) {
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("istat: the archive has no header: %w", lineErr(err))
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToUpper(strings.TrimSpace(h))] = i
	}
	for _, want := range archiveColumns {
		if _, ok := col[want]; !ok {
			return nil, fmt.Errorf("istat: line 1: not an ANPR archive of comuni: no column %s", want)
		}
	}
	return col, nil
}

// archiveRows appends the places of the archive's rows to out, and returns
// the latest date of the file.
func archiveRows(cr *csv.Reader, col map[string]int, out []Place) ([]Place, string, error) {
	latest := ""
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, latest, nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("istat: %w", lineErr(err))
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			if i := col[name]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if code := get("CODCATASTALE"); blankRecord(rec) || get("STATO") == "D" || code == "" || code == "ND" {
			continue // nothing, a comune still to be instituted, or one without a Belfiore code
		}
		pl, err := archivePlace(get)
		if err != nil {
			return nil, "", fmt.Errorf("istat: line %d: %w", line, err)
		}
		for _, d := range []string{get("DATAISTITUZIONE"), get("DATACESSAZIONE"), get("DATAULTIMOAGG")} {
			if d != openEnd && d > latest && isISODate(d) {
				latest = d
			}
		}
		out = append(out, pl)
	}
}

// archivePlace builds and checks the place of one row of the archive.
func archivePlace(get func(string) string) (Place, error) {
	pl := Place{Belfiore: strings.ToUpper(get("CODCATASTALE")), ISTAT: get("CODISTAT"), Sigla: get("SIGLAPROVINCIA"), Name: get("DENOMINAZIONE_IT")}
	if !isBelfiore(pl.Belfiore) || pl.Belfiore[0] == 'Z' {
		return Place{}, fmt.Errorf("CODCATASTALE %q is not the code of a comune (a letter A-Y and 3 digits)", pl.Belfiore)
	}
	if len(pl.ISTAT) != 6 || !isDigits(pl.ISTAT) {
		return Place{}, fmt.Errorf("%s: CODISTAT %q is not 6 digits", pl.Belfiore, pl.ISTAT)
	}
	if pl.Name == "" {
		return Place{}, fmt.Errorf("%s: DENOMINAZIONE_IT is empty", pl.Belfiore)
	}
	if alt := get("ALTRADENOMINAZIONE"); alt != "" && !strings.EqualFold(alt, pl.Name) {
		pl.Name += "/" + alt
	}
	var err error
	if pl.From, err = time.Parse(time.DateOnly, get("DATAISTITUZIONE")); err != nil {
		return Place{}, fmt.Errorf("%s: DATAISTITUZIONE %q is not a date YYYY-MM-DD", pl.Belfiore, get("DATAISTITUZIONE"))
	}
	if end := get("DATACESSAZIONE"); end != openEnd {
		if pl.Until, err = time.Parse(time.DateOnly, end); err != nil || pl.Until.Before(pl.From) {
			return Place{}, fmt.Errorf("%s: DATACESSAZIONE %q is not a date YYYY-MM-DD on or after DATAISTITUZIONE", pl.Belfiore, end)
		}
	}
	pl.Region = regions[get("IDREGIONE")]
	return pl, nil
}

// sortPlaces sorts places by code and start, keeping the order of equals.
func sortPlaces(ps []Place) {
	slices.SortStableFunc(ps, func(a, b Place) int {
		if c := strings.Compare(a.Belfiore, b.Belfiore); c != 0 {
			return c
		}
		return a.From.Compare(b.From)
	})
}

func isISODate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// namesAs writes the names of p as base writes them, where they are the
// same name for the same code.
func (p *Places) namesAs(base *Places) {
	for i := range p.all {
		pl := &p.all[i]
		for _, j := range base.byCode[pl.Belfiore] {
			if q := base.all[j]; q.Name != pl.Name && nameKey(q.Name) == nameKey(pl.Name) {
				pl.Name = q.Name
				break
			}
		}
	}
}

// Change is one difference between two tables' comuni in force.
type Change struct {
	Kind     string // "nuovo", "cessato", "rinominato", "codice ISTAT", "provincia"
	Old, New Place  // the period in force before and after (Old zero for "nuovo")
}

// String describes the change for an operator.
func (c Change) String() string {
	switch c.Kind {
	case "nuovo":
		return fmt.Sprintf("nuovo:        %s %s %s (%s) %s", c.New.Belfiore, c.New.ISTAT, c.New.Name, c.New.Sigla, c.New.Period())
	case "cessato":
		if c.New.InForce() { // the code is not in the new table at all
			return fmt.Sprintf("cessato:      %s %s %s (%s): non è più nella tabella", c.Old.Belfiore, c.Old.ISTAT, c.Old.Name, c.Old.Sigla)
		}
		return fmt.Sprintf("cessato:      %s %s %s (%s) %s", c.New.Belfiore, c.New.ISTAT, c.New.Name, c.New.Sigla, c.New.Period())
	case "rinominato":
		return fmt.Sprintf("rinominato:   %s %s %s → %s", c.New.Belfiore, c.New.ISTAT, c.Old.Name, c.New.Name)
	case "codice ISTAT":
		return fmt.Sprintf("codice ISTAT: %s %s %s → %s", c.New.Belfiore, c.New.Name, c.Old.ISTAT, c.New.ISTAT)
	default:
		return fmt.Sprintf("provincia:    %s %s %s %s → %s", c.New.Belfiore, c.New.ISTAT, c.New.Name, c.Old.Sigla, c.New.Sigla)
	}
}

// Diff lists how the comuni in force differ from old to cur: comuni new in
// cur, comuni that ceased, and comuni renamed or moved to another ISTAT
// code or province, by Belfiore code.
func Diff(old, cur *Places) []Change {
	var out []Change
	for _, code := range comuneCodes(old, cur) {
		o, _ := old.last(code)
		n, okNew := cur.last(code)
		out = append(out, changesOf(o, n, okNew)...)
	}
	return out
}

// comuneCodes returns the Belfiore codes of comuni in either table, sorted.
func comuneCodes(ps ...*Places) []string {
	var codes []string
	for _, p := range ps {
		for code := range p.byCode {
			if code[0] != 'Z' {
				codes = append(codes, code)
			}
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

// last returns the latest period of code.
func (p *Places) last(code string) (Place, bool) {
	idx := p.byCode[code]
	if len(idx) == 0 {
		return Place{}, false
	}
	return p.all[idx[len(idx)-1]], true
}

// changesOf compares the latest periods of a code before (o, zero if
// absent) and after (n, okNew false if absent).
func changesOf(o, n Place, okNew bool) []Change {
	inOld, inNew := o.Belfiore != "" && o.InForce(), okNew && n.InForce()
	switch {
	case !inOld && inNew:
		return []Change{{Kind: "nuovo", New: n}}
	case inOld && !inNew:
		if !okNew {
			n = o
		}
		return []Change{{Kind: "cessato", Old: o, New: n}}
	case !inOld:
		return nil
	}
	var out []Change
	if !SameName(o.Name, n.Name) {
		out = append(out, Change{Kind: "rinominato", Old: o, New: n})
	}
	if o.ISTAT != n.ISTAT {
		out = append(out, Change{Kind: "codice ISTAT", Old: o, New: n})
	}
	if o.Sigla != n.Sigla {
		out = append(out, Change{Kind: "provincia", Old: o, New: n})
	}
	return out
}

// FromPlaces returns the table of the comuni in force in p, with p as its
// history and the embedded prefetture mapping.
func FromPlaces(p *Places) (*Table, error) {
	t := &Table{all: comuniOf(p), pref: defaultPrefetture(), places: p}
	if len(t.all) == 0 {
		return nil, errors.New("istat: no comune in force in the table of places")
	}
	if err := t.index(make([]int, len(t.all))); err != nil {
		return nil, err
	}
	return t, nil
}
