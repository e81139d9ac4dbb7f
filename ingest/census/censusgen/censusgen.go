// Package censusgen generates census workbooks (censimento .xlsx, see
// docs/rules.md#census) for tests, demos and benchmarks.
//
// A workbook has two sheets. "Utenti" holds one row per utenza with the
// columns of Header; every comune gets exactly one ASC, one ALS and one ALP,
// the others being OPERATORE or CONSULTAZIONE users and sometimes an APL.
// "Postazioni" holds one row per comune with the columns of
// WorkstationsHeader. The output is deterministic for a given Options value
// (same seed, same cells; excelize may order the ZIP entries differently
// from run to run, so the bytes can differ), and every codice fiscale in it is valid and
// consistent with the row's sex and birth date, with a real birthplace.
//
// Sheets are written with excelize's StreamWriter, so 100,000 rows take a
// couple of seconds and little memory.
package censusgen

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/istat"
)

// Sheet names and headers of a census workbook.
const (
	UsersSheet        = "Utenti"
	WorkstationsSheet = "Postazioni"
)

// Header is the header row of the Utenti sheet.
var Header = []string{
	"Codice ISTAT", "Comune", "Codice Fiscale", "Cognome", "Nome", "Sesso",
	"Data di nascita", "Email", "PEC", "Profili", "Smart Card", "Ambiente",
}

// WorkstationsHeader is the header row of the Postazioni sheet.
var WorkstationsHeader = []string{"Codice ISTAT", "Numero postazioni", "Certificato server"}

// DefaultTotalUsers is the number of Utenti rows written when Options asks
// for no particular number.
const DefaultTotalUsers = 100_000

// MinUsersPerComune is the least number of utenze of a comune: its ASC, ALS,
// ALP and one operator.
const MinUsersPerComune = 4

// Options says what to generate. The zero value gives every comune of the
// table and about 100,000 utenze.
type Options struct {
	// Comuni is the number of comuni to include, spread evenly over the
	// table (so that every region appears); 0 means all of them.
	Comuni int
	// UsersPerComune, when > 0, is the number of utenze of every comune.
	UsersPerComune int
	// TotalUsers, used when UsersPerComune is 0, is the number of utenze
	// spread evenly over the comuni; 0 means DefaultTotalUsers. Either way
	// each comune has at least MinUsersPerComune utenze.
	TotalUsers int
	// Seed makes the people, profiles and e-mail addresses; the same
	// options give the same workbook.
	Seed int64
	// NumericISTAT writes ISTAT codes as numbers (58091), as spreadsheet
	// programs do when a user types them, instead of text ("058091").
	NumericISTAT bool
	// DateCells writes birth dates as date cells (serial numbers with a
	// dd/mm/yyyy format) instead of dd/mm/yyyy text.
	DateCells bool
	// Workstations is the "Numero postazioni" of every comune; 0 means 3.
	Workstations int
	// Table is the table of comuni and birthplaces; nil means istat.Default().
	Table *istat.Table
	// Progress, when set, is called with the number of user rows written
	// so far, every 1,000 rows (for a progress bar).
	Progress func(rows int)
}

// Stats tells what Write produced.
type Stats struct {
	Rows   int // data rows of the Utenti sheet
	Comuni int // comuni in the workbook (rows of the Postazioni sheet)
}

// WriteFile writes a census workbook to path, replacing it. It writes a
// hidden temporary file in the same folder and renames it, so an inbox
// watching that folder never reads half a workbook.
func WriteFile(path string, opt Options) (Stats, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return Stats{}, err
	}
	st, err := Write(f, opt)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return Stats{}, err
	}
	return st, nil
}

// Write writes a census workbook (.xlsx) to w.
func Write(w io.Writer, opt Options) (st Stats, err error) {
	tab := opt.Table
	if tab == nil {
		tab = istat.Default()
	}
	if opt.Comuni < 0 || opt.UsersPerComune < 0 || opt.TotalUsers < 0 || opt.Workstations < 0 {
		return Stats{}, errors.New("censusgen: negative option")
	}
	comuni := pickComuni(tab.All(), opt.Comuni)
	if len(comuni) == 0 {
		return Stats{}, errors.New("censusgen: the table holds no comuni")
	}
	perComune := usersPerComune(len(comuni), opt)

	f := excelize.NewFile()
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("censusgen: %w", cerr)
		}
	}()
	g := &generator{
		opt:    opt,
		rng:    rand.New(rand.NewPCG(uint64(opt.Seed), 0x616e70727365632e)), // "anprsec."
		births: tab.All(),
		seen:   make(map[string]struct{}),
	}
	if err := g.styles(f); err != nil {
		return Stats{}, fmt.Errorf("censusgen: %w", err)
	}
	if err := f.SetSheetName("Sheet1", UsersSheet); err != nil {
		return Stats{}, fmt.Errorf("censusgen: %w", err)
	}
	if _, err := f.NewSheet(WorkstationsSheet); err != nil {
		return Stats{}, fmt.Errorf("censusgen: %w", err)
	}
	rows, err := g.writeUsers(f, comuni, perComune)
	if err != nil {
		return Stats{}, fmt.Errorf("censusgen: sheet %s: %w", UsersSheet, err)
	}
	if err := g.writeWorkstations(f, comuni); err != nil {
		return Stats{}, fmt.Errorf("censusgen: sheet %s: %w", WorkstationsSheet, err)
	}
	f.SetActiveSheet(0)
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		return Stats{}, fmt.Errorf("censusgen: %w", err)
	}
	if err := canonicalZip(w, buf.Bytes()); err != nil {
		return Stats{}, fmt.Errorf("censusgen: %w", err)
	}
	return Stats{Rows: rows, Comuni: len(comuni)}, nil
}

// pickComuni returns n comuni spread evenly over all (all of them if n is 0
// or too large), in ISTAT order.
func pickComuni(all []istat.Comune, n int) []istat.Comune {
	if n <= 0 || n >= len(all) {
		return all
	}
	out := make([]istat.Comune, n)
	for i := range out {
		out[i] = all[i*len(all)/n]
	}
	return out
}

// usersPerComune returns the number of utenze of each of n comuni.
func usersPerComune(n int, opt Options) []int {
	out := make([]int, n)
	if opt.UsersPerComune > 0 {
		for i := range out {
			out[i] = max(opt.UsersPerComune, MinUsersPerComune)
		}
		return out
	}
	total := opt.TotalUsers
	if total == 0 {
		total = DefaultTotalUsers
	}
	for i := range out {
		share := total / n
		if i < total%n {
			share++
		}
		out[i] = max(share, MinUsersPerComune)
	}
	return out
}

// generator holds the state of one Write.
type generator struct {
	opt        Options
	rng        *rand.Rand
	births     []istat.Comune // birthplaces
	seen       map[string]struct{}
	headStyle  int
	dateStyle  int
	textStyle  int
	serialBase time.Time
}

func (g *generator) styles(f *excelize.File) error {
	var err error
	if g.headStyle, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}}); err != nil {
		return err
	}
	dateFmt := "dd/mm/yyyy"
	if g.dateStyle, err = f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt}); err != nil {
		return err
	}
	if g.textStyle, err = f.NewStyle(&excelize.Style{NumFmt: 49}); err != nil { // "@": text
		return err
	}
	g.serialBase = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	return nil
}

// header writes the bold, frozen header row of a stream.
func (g *generator) header(sw *excelize.StreamWriter, names []string, widths []float64) error {
	for i, wd := range widths {
		if err := sw.SetColWidth(i+1, i+1, wd); err != nil {
			return err
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	row := make([]any, len(names))
	for i, n := range names {
		row[i] = excelize.Cell{StyleID: g.headStyle, Value: n}
	}
	return sw.SetRow("A1", row)
}

// istatCell returns the value of a Codice ISTAT cell.
func (g *generator) istatCell(code string) any {
	if g.opt.NumericISTAT {
		n, _ := strconv.Atoi(code)
		return n
	}
	return excelize.Cell{StyleID: g.textStyle, Value: code}
}

func (g *generator) writeUsers(f *excelize.File, comuni []istat.Comune, perComune []int) (int, error) {
	sw, err := f.NewStreamWriter(UsersSheet)
	if err != nil {
		return 0, err
	}
	widths := []float64{13, 24, 19, 16, 14, 7, 15, 34, 34, 22, 11, 26}
	if err := g.header(sw, Header, widths); err != nil {
		return 0, err
	}
	row := make([]any, len(Header))
	n := 1
	for ci, c := range comuni {
		for k := 0; k < perComune[ci]; k++ {
			u := g.user(c, k)
			row[0] = g.istatCell(c.ISTAT)
			row[1] = c.Name
			row[2] = excelize.Cell{StyleID: g.textStyle, Value: u.cf}
			row[3] = u.surname
			row[4] = u.name
			row[5] = u.sex
			if g.opt.DateCells {
				row[6] = excelize.Cell{StyleID: g.dateStyle, Value: u.birth.Sub(g.serialBase).Hours() / 24}
			} else {
				row[6] = u.birth.Format("02/01/2006")
			}
			row[7] = u.email
			row[8] = u.pec
			row[9] = u.profiles
			row[10] = u.card
			row[11] = u.env
			n++
			if err := sw.SetRow("A"+strconv.Itoa(n), row); err != nil {
				return 0, err
			}
			if g.opt.Progress != nil && (n-1)%1000 == 0 {
				g.opt.Progress(n - 1)
			}
		}
	}
	return n - 1, sw.Flush()
}

func (g *generator) writeWorkstations(f *excelize.File, comuni []istat.Comune) error {
	sw, err := f.NewStreamWriter(WorkstationsSheet)
	if err != nil {
		return err
	}
	if err := g.header(sw, WorkstationsHeader, []float64{13, 19, 19}); err != nil {
		return err
	}
	ws := g.opt.Workstations
	if ws == 0 {
		ws = 3
	}
	for i, c := range comuni {
		server := "SI"
		if g.rng.IntN(10) == 0 {
			server = "NO"
		}
		if err := sw.SetRow("A"+strconv.Itoa(i+2), []any{g.istatCell(c.ISTAT), ws, server}); err != nil {
			return err
		}
	}
	return sw.Flush()
}

// user is one generated row of the Utenti sheet.
type user struct {
	cf, surname, name, sex string
	birth                  time.Time
	email, pec             string
	profiles, card, env    string
}

// user generates the k-th utenza of comune c: 0 is the ASC, 1 an ALS, 2 an
// ALP, and the others operators, an APL now and then.
func (g *generator) user(c istat.Comune, k int) user {
	r := g.rng
	var profiles []domain.Profile
	switch k {
	case 0:
		profiles = []domain.Profile{domain.ASC}
	case 1:
		profiles = []domain.Profile{domain.ALS}
		if r.IntN(3) == 0 {
			profiles = append(profiles, domain.Operatore)
		}
	case 2:
		profiles = []domain.Profile{domain.ALP}
	default:
		switch x := r.IntN(100); {
		case x < 8:
			profiles = []domain.Profile{domain.APL}
		case x < 68:
			profiles = []domain.Profile{domain.Operatore}
		case x < 93:
			profiles = []domain.Profile{domain.Consultazione}
		default:
			profiles = []domain.Profile{domain.Operatore, domain.Consultazione}
		}
	}
	sep := ";"
	if r.IntN(10) == 0 {
		sep = ", "
	}
	u := user{card: "NO", env: string(domain.Produzione)}
	for i, p := range profiles {
		if i > 0 {
			u.profiles += sep
		}
		u.profiles += string(p)
		if info, ok := domain.LookupProfile(string(p)); ok && info.NeedsCard {
			u.card = "SI"
		}
	}
	if r.IntN(5) == 0 {
		u.env = string(domain.Produzione) + ";" + string(domain.PreSubentro)
	}

	female := r.IntN(2) == 0
	u.sex = "M"
	names := maleNames
	if female {
		u.sex, names = "F", femaleNames
	}
	u.surname = surnames[r.IntN(len(surnames))]
	u.name = names[r.IntN(len(names))]
	u.birth = time.Date(1950+r.IntN(53), time.Month(1+r.IntN(12)), 1, 0, 0, 0, 0, time.UTC)
	u.birth = u.birth.AddDate(0, 0, r.IntN(daysIn(u.birth)))
	birthplace := c.Belfiore // many people work where they were born
	switch x := r.IntN(10); {
	case x == 0:
		birthplace = foreignBirthplaces[r.IntN(len(foreignBirthplaces))]
	case x < 6:
		birthplace = g.births[r.IntN(len(g.births))].Belfiore
	}
	u.cf = g.uniqueCF(&u, female, birthplace)

	u.email = fmt.Sprintf("%s.%s.%d@example.it", emailLocal(u.name), emailLocal(u.surname), len(g.seen))
	if r.IntN(4) == 0 {
		u.pec = fmt.Sprintf("%s.%s.%d@pec.example.it", emailLocal(u.name), emailLocal(u.surname), len(g.seen))
	}
	return u
}

// uniqueCF returns a codice fiscale not given before: when the plain code is
// taken it uses omocodia, as the Agenzia delle Entrate does, and as a last
// resort moves the birth day (updating u.birth).
func (g *generator) uniqueCF(u *user, female bool, birthplace string) string {
	for {
		for level := 0; level <= 7; level++ {
			cf := MakeCF(u.surname, u.name, female, u.birth.Year(), int(u.birth.Month()), u.birth.Day(), birthplace, level)
			if _, taken := g.seen[cf]; !taken {
				g.seen[cf] = struct{}{}
				return cf
			}
		}
		u.birth = u.birth.AddDate(0, 0, 1)
	}
}

// daysIn returns the number of days in the month of t.
func daysIn(t time.Time) int {
	return time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// canonicalZip rewrites a workbook with its entries in a fixed order and a
// fixed time: excelize writes them in map order, so the same seed would
// give different bytes, and anprsec recognizes a file by its SHA-256.
func canonicalZip(w io.Writer, data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	files := append([]*zip.File(nil), zr.File...)
	sort.Slice(files, func(i, j int) bool {
		// [Content_Types].xml first, as spreadsheet programs write it.
		a, b := files[i].Name, files[j].Name
		if (a == "[Content_Types].xml") != (b == "[Content_Types].xml") {
			return a == "[Content_Types].xml"
		}
		return a < b
	})
	zw := zip.NewWriter(w)
	epoch := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		hdr := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: epoch}
		out, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		_, err = io.Copy(out, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return zw.Close()
}
