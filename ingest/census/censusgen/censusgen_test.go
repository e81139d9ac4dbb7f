package censusgen

import (
	"archive/zip"
	"bytes"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/codfisc"
	"anprsec/istat"
)

// readSheet reads a sheet with the Rows iterator and raw cell values, as the
// census ingester does.
func readSheet(t *testing.T, data []byte, sheet string) [][]string {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{UsersSheet, WorkstationsSheet}) {
		t.Fatalf("sheets = %v", got)
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, slices.Clone(cols))
	}
	if err := rows.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
	}{
		{"text cells", Options{Comuni: 200, TotalUsers: 2000, Seed: 1}},
		{"numbers and dates", Options{Comuni: 200, TotalUsers: 2000, Seed: 2, NumericISTAT: true, DateCells: true, Workstations: 5}},
		{"minimum users", Options{Comuni: 50, TotalUsers: 10, Seed: 3}},
		{"users per comune", Options{Comuni: 30, UsersPerComune: 7, Seed: 4}},
	}
	tab := istat.Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			st, err := Write(&buf, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if st.Comuni != tt.opt.Comuni {
				t.Errorf("Stats.Comuni = %d, want %d", st.Comuni, tt.opt.Comuni)
			}
			wantRows := max(tt.opt.TotalUsers, MinUsersPerComune*tt.opt.Comuni)
			if tt.opt.UsersPerComune > 0 {
				wantRows = tt.opt.UsersPerComune * tt.opt.Comuni
			}
			if st.Rows != wantRows {
				t.Errorf("Stats.Rows = %d, want %d", st.Rows, wantRows)
			}

			rows := readSheet(t, buf.Bytes(), UsersSheet)
			if !slices.Equal(rows[0], Header) {
				t.Fatalf("header = %q", rows[0])
			}
			if len(rows)-1 != st.Rows {
				t.Fatalf("%d data rows, Stats.Rows = %d", len(rows)-1, st.Rows)
			}
			checkUsers(t, tab, rows[1:], tt.opt)

			ws := readSheet(t, buf.Bytes(), WorkstationsSheet)
			if !slices.Equal(ws[0], WorkstationsHeader) || len(ws)-1 != st.Comuni {
				t.Fatalf("Postazioni: header %q, %d rows", ws[0], len(ws)-1)
			}
			wantWS := strconv.Itoa(max(tt.opt.Workstations, 3))
			for _, r := range ws[1:] {
				code, err := istat.NormalizeISTAT(r[0])
				if _, ok := tab.Lookup(code); err != nil || !ok || r[1] != wantWS || (r[2] != "SI" && r[2] != "NO") {
					t.Errorf("Postazioni row %q", r)
				}
			}
		})
	}
}

// checkUsers checks the rules the generator promises on the Utenti rows.
func checkUsers(t *testing.T, tab *istat.Table, rows [][]string, opt Options) {
	t.Helper()
	type counts struct{ asc, als, alp int }
	perComune := map[string]*counts{}
	seenCF := map[string]int{}
	seenEmail := map[string]bool{}
	for i, r := range rows {
		line := i + 2
		if len(r) < 11 {
			t.Fatalf("row %d: %q", line, r)
		}
		if opt.NumericISTAT && r[0][0] == '0' || !opt.NumericISTAT && len(r[0]) != 6 {
			t.Errorf("row %d: ISTAT cell %q (numeric=%v)", line, r[0], opt.NumericISTAT)
		}
		code, err := istat.NormalizeISTAT(r[0])
		if err != nil {
			t.Fatalf("row %d: %v", line, err)
		}
		c, ok := tab.Lookup(code)
		if !ok || c.Name != r[1] {
			t.Errorf("row %d: comune %s %q not in the table", line, code, r[1])
		}

		cf, err := codfisc.Parse(r[2])
		if err != nil {
			t.Fatalf("row %d: %v", line, err)
		}
		if prev, dup := seenCF[cf.Code]; dup {
			t.Errorf("row %d: CF %s already on row %d", line, cf.Code, prev)
		}
		seenCF[cf.Code] = line
		if cf.Sex != r[5] {
			t.Errorf("row %d: CF %s sex %s, column %s", line, cf.Code, cf.Sex, r[5])
		}
		var birth time.Time
		if opt.DateCells {
			serial, err := strconv.ParseFloat(r[6], 64)
			if err != nil {
				t.Fatalf("row %d: date cell %q: %v", line, r[6], err)
			}
			if birth, err = excelize.ExcelDateToTime(serial, false); err != nil {
				t.Fatal(err)
			}
		} else if birth, err = time.Parse("02/01/2006", r[6]); err != nil {
			t.Fatalf("row %d: %v", line, err)
		}
		if !cf.Matches(birth) {
			t.Errorf("row %d: CF %s does not match birth date %s", line, cf.Code, birth.Format(time.DateOnly))
		}
		if _, ok := tab.ByBelfiore(cf.Belfiore); !ok && !istat.ForeignBelfiore(cf.Belfiore) {
			t.Errorf("row %d: CF %s birthplace %s unknown", line, cf.Code, cf.Belfiore)
		}
		if want := codfisc.SurnameLetters(r[3]) + codfisc.NameLetters(r[4]); cf.Code[:6] != want {
			t.Errorf("row %d: CF %s does not start with %s (%s %s)", line, cf.Code, want, r[3], r[4])
		}

		email, pec := r[7], r[8]
		if !strings.HasSuffix(email, "@example.it") || strings.Contains(email, "pec") || seenEmail[email] {
			t.Errorf("row %d: personal e-mail %q", line, email)
		}
		seenEmail[email] = true
		if pec != "" && !strings.HasSuffix(pec, "@pec.example.it") {
			t.Errorf("row %d: PEC %q", line, pec)
		}

		cnt := perComune[code]
		if cnt == nil {
			cnt = &counts{}
			perComune[code] = cnt
		}
		needsCard := false
		for _, p := range strings.FieldsFunc(r[9], func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
			switch p {
			case "ASC":
				cnt.asc++
			case "ALS":
				cnt.als++
			case "ALP":
				cnt.alp++
			case "APL", "OPERATORE", "CONSULTAZIONE":
			default:
				t.Errorf("row %d: profile %q", line, p)
			}
			needsCard = needsCard || p == "ASC" || p == "APL" || p == "ALS" || p == "ALP"
		}
		if want := map[bool]string{true: "SI", false: "NO"}[needsCard]; r[10] != want {
			t.Errorf("row %d: Smart Card %q for %q", line, r[10], r[9])
		}
		if env := r[11]; env != "PRODUZIONE" && env != "PRODUZIONE;PRE-SUBENTRO" {
			t.Errorf("row %d: Ambiente %q", line, env)
		}
	}
	if len(perComune) != opt.Comuni {
		t.Errorf("%d comuni in Utenti, want %d", len(perComune), opt.Comuni)
	}
	for code, c := range perComune {
		if c.asc != 1 || c.als < 1 || c.alp < 1 {
			t.Errorf("comune %s: %d ASC, %d ALS, %d ALP", code, c.asc, c.als, c.alp)
		}
	}
}

func TestWriteDeterministic(t *testing.T) {
	opt := Options{Comuni: 20, TotalUsers: 300, Seed: 42}
	var a, b, c bytes.Buffer
	if _, err := Write(&a, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&b, opt); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(unzip(t, a.Bytes()), unzip(t, b.Bytes())) {
		t.Error("the same options gave different workbooks")
	}
	opt.Seed = 43
	if _, err := Write(&c, opt); err != nil {
		t.Fatal(err)
	}
	if maps.Equal(unzip(t, a.Bytes()), unzip(t, c.Bytes())) {
		t.Error("different seeds gave the same workbook")
	}
}

// unzip returns the entries of a workbook. excelize writes them in an order
// that varies from run to run, so the bytes of two equal workbooks may differ.
func unzip(t *testing.T, data []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = string(b)
	}
	return out
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "censimento.xlsx")
	st, err := WriteFile(path, Options{Comuni: 3, Seed: 1, TotalUsers: 12})
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{Rows: 12, Comuni: 3}) {
		t.Errorf("Stats = %+v", st)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := WriteFile(filepath.Join(t.TempDir(), "missing", "x.xlsx"), Options{Comuni: 1}); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
	if _, err := Write(io.Discard, Options{Comuni: -1}); err == nil {
		t.Error("negative options accepted")
	}
}

func TestMakeCF(t *testing.T) {
	tests := []struct {
		surname, name string
		female        bool
		y, m, d       int
		place         string
		level         int
		want          string
	}{
		// RSSMRA68A01H501Y is a known code (python-codicefiscale test suite).
		{"Rossi", "Mario", false, 1968, 1, 1, "H501", 0, "RSSMRA68A01H501Y"},
		{"Rossi", "Maria", true, 1983, 12, 16, "A269", 0, ""},
		{"Fo", "Eva", true, 1990, 2, 28, "F205", 0, ""},
		{"D'Angelo", "Nicolò", false, 1975, 6, 15, "Z330", 3, ""},
		{"Re", "Gian Luca", false, 2000, 2, 29, "A074", 7, ""},
	}
	for _, tt := range tests {
		got := MakeCF(tt.surname, tt.name, tt.female, tt.y, tt.m, tt.d, tt.place, tt.level)
		if tt.want != "" && got != tt.want {
			t.Errorf("MakeCF(%s %s) = %s, want %s", tt.surname, tt.name, got, tt.want)
		}
		cf, err := codfisc.Parse(got)
		if err != nil {
			t.Fatalf("MakeCF(%s %s) = %s: %v", tt.surname, tt.name, got, err)
		}
		if cf.Belfiore != tt.place || !cf.Matches(time.Date(tt.y, time.Month(tt.m), tt.d, 0, 0, 0, 0, time.UTC)) ||
			(cf.Sex == "F") != tt.female || (cf.Omocode() != (tt.level > 0)) {
			t.Errorf("MakeCF(%s %s) = %s decodes to %+v", tt.surname, tt.name, got, cf)
		}
	}
	codes := map[string]string{"Rossi": "RSS", "Fo": "FOX", "Re": "REX", "D'Angelo": "DNG", "Nicolò": "NCL", "De Luca": "DLC"}
	for in, want := range codes {
		if got := codfisc.SurnameLetters(in); got != want {
			t.Errorf("SurnameLetters(%q) = %q, want %q", in, got, want)
		}
	}
	names := map[string]string{"Mario": "MRA", "Gian Luca": "GLC", "Francesco": "FNC", "Eva": "VEA", "Bea": "BEA", "Alessandro": "LSN"}
	for in, want := range names {
		if got := codfisc.NameLetters(in); got != want {
			t.Errorf("NameLetters(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	istat.Default() // parse the table outside the timing
	for b.Loop() {
		st, err := Write(io.Discard, Options{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		if st.Rows != DefaultTotalUsers {
			b.Fatalf("%d rows", st.Rows)
		}
	}
}

// TestProgress: the callback sees the rows written, every 1,000.
func TestProgress(t *testing.T) {
	var seen []int
	st, err := Write(io.Discard, Options{Comuni: 10, TotalUsers: 2500, Progress: func(n int) { seen = append(seen, n) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != 1000 || seen[1] != 2000 || st.Rows < 2500 {
		t.Errorf("progress %v for %d rows", seen, st.Rows)
	}
}
