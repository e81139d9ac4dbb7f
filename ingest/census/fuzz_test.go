package census_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/ingest/census/censusgen"
	"anprsec/ingest/esito"
	"anprsec/internal/ziptest"
	"anprsec/istat"
	"anprsec/secret"
	"anprsec/store"
)

// fuzzName is the name under which every fuzz input is dropped.
const fuzzName = "fuzz.xlsx"

// ingestOnce drops data as censimento/fuzz.xlsx on a fresh local drop with
// a fresh in-memory store, runs one pass of the census inbox and checks
// what every pass must leave, whatever the input:
//   - no error (an in-memory store does not fail, so no input may make the
//     pass fail);
//   - a receipt, valid UTF-8 and ';' CSV with the header, either one riga 0
//     line (file in scartati/) or one line per data row (file in elaborati/;
//     none for a sheet with a header and no data row), each (foglio, riga)
//     once, counted as the stats say;
//   - no receipt field that a spreadsheet would read as a formula;
//   - the history chain intact, one "utenza.crea" per CREATA line and at most
//     one card requested per codice fiscale.
func ingestOnce(t *testing.T, data []byte) [][]string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{5}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root := filepath.Join(dir, "drop")
	d, err := drop.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(root, "censimento")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, fuzzName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	inbox := &ingest.Inbox{Drop: d, Store: st, Kind: "ingest-censimento", Dir: "censimento", Exts: []string{".xlsx"},
		MaxSize: 4 << 20, SpoolDir: filepath.Join(dir, "spool"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	g := &census.Ingester{Store: st, Comuni: istat.Default(), ChunkRows: 3, MaxRows: 300, CardPrefix: "SC"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stats, err := inbox.Run(ctx, g.Process)
	if err != nil {
		t.Fatalf("Run returned an error (system errors should not happen with an in-memory store): %v", err)
	}

	raw, err := os.ReadFile(filepath.Join(in, "esiti", fuzzName+".esito.csv"))
	if err != nil {
		t.Fatalf("no receipt: %v (stats %+v)", err, stats)
	}
	if !utf8.Valid(raw) {
		t.Errorf("receipt is not valid UTF-8: %q", raw)
	}
	if !bytes.HasPrefix(raw, []byte(esito.Header)) {
		t.Fatalf("receipt without header: %q", raw)
	}
	r := csv.NewReader(bytes.NewReader(raw))
	r.Comma = ';'
	r.FieldsPerRecord = 5
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("receipt is not ';' CSV: %v\n%q", err, raw)
	}
	lines := recs[1:]
	_, errIn := os.Lstat(filepath.Join(in, fuzzName))
	_, errOK := os.Lstat(filepath.Join(in, "elaborati", fuzzName))
	_, errKO := os.Lstat(filepath.Join(in, "scartati", fuzzName))
	if errIn == nil {
		t.Error("the file is still in censimento/")
	}
	if len(lines) > 0 && lines[0][1] == "0" {
		if len(lines) != 1 || lines[0][2] != esito.Scartato || lines[0][3] == "" {
			t.Errorf("refused file: receipt %q, want one riga 0 SCARTATO line with a code", lines)
		}
		if errKO != nil || errOK == nil {
			t.Errorf("refused file not (only) in scartati/: %v, %v", errKO, errOK)
		}
		if stats.RowsOK != 0 {
			t.Errorf("refused file with rows OK: %+v", stats)
		}
	} else {
		if errOK != nil || errKO == nil {
			t.Errorf("read file not (only) in elaborati/: %v, %v", errOK, errKO)
		}
		seen := map[string]bool{}
		ok, ko, created := 0, 0, 0
		for _, l := range lines {
			for _, field := range []string{l[0], l[3], l[4]} {
				if field != "" && strings.ContainsRune("=+-@\t\r", rune(field[0])) {
					t.Errorf("receipt field %q of line %q is read as a formula by a spreadsheet (not neutralized)", field, l)
				}
			}
			k := l[0] + ":" + l[1]
			if seen[k] {
				t.Errorf("receipt line %s twice", k)
			}
			seen[k] = true
			if n, err := strconv.Atoi(l[1]); err != nil || n < 2 || l[0] == "" {
				t.Errorf("receipt line %q: bad sheet or row", l)
			}
			switch l[2] {
			case esito.OK:
				ok++
				switch l[3] {
				case "CREATA":
					created++
				case "AGGIORNATA", "INVARIATA":
				default:
					t.Errorf("OK line with code %q", l[3])
				}
			case esito.Scartato:
				ko++
				if l[3] == "" || l[4] == "" {
					t.Errorf("refused line without code or message: %q", l)
				}
			default:
				t.Errorf("receipt line %q: esito %q", l, l[2])
			}
		}
		if ok != stats.RowsOK || ko != stats.RowsRefused {
			t.Errorf("receipt has %d OK and %d refused lines, stats say %+v", ok, ko, stats)
		}
		crea, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "utenza.crea" })
		if err != nil || len(crea) != created {
			t.Errorf("%d utenza.crea history entries, %d CREATA lines (%v)", len(crea), created, err)
		}
	}
	cards, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "smartcard.richiesta" })
	if err != nil {
		t.Fatal(err)
	}
	holders := map[string]bool{}
	for _, c := range cards {
		cf := strings.Fields(strings.TrimPrefix(c.Detail, "titolare "))[0]
		if holders[cf] {
			t.Errorf("two cards requested for %s", cf)
		}
		holders[cf] = true
	}
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("history: %v", err)
	}
	return lines
}

// Rows of testdata/casi.xlsx that make Roma valid: ASC, ALS, ALP.
var romaRows = [][]any{
	{58091, "Roma", "rssmra 68a01 h501y", "Rossi", "Mario", "M", time.Date(1968, 1, 1, 0, 0, 0, 0, time.UTC), "mario.rossi@example.it", "", "ASC", "SI", "PRODUZIONE"},
	{"058091", "ROMA", "CCCFBA85D03L21VE", "Cucco", "Fabio", "M", "03/04/1985", "fabio.cucco@example.it", "fabio@pec.example.it", "ALS; OPERATORE", "SI", "PRODUZIONE;PRE-SUBENTRO"},
	{58091.0, "Roma", "MRTMRA83T56A269B", "Martini", "Maria", "F", 30666, "maria.martini@example.it", "", "ALP", "si", "produzione"},
}

// workbook builds an .xlsx in memory: sheets in order, each a list of rows.
func workbook(tb testing.TB, sheets ...struct {
	name string
	rows [][]any
}) []byte {
	tb.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, s := range sheets {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", s.name); err != nil {
				tb.Fatal(err)
			}
		} else if _, err := f.NewSheet(s.name); err != nil {
			tb.Fatal(err)
		}
		for j, row := range s.rows {
			if row == nil {
				continue // a gap: an empty row number
			}
			cell, _ := excelize.CoordinatesToCellName(1, j+1)
			if err := f.SetSheetRow(s.name, cell, &row); err != nil {
				tb.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

type sheet = struct {
	name string
	rows [][]any
}

func header() []any {
	h := make([]any, len(censusgen.Header))
	for i, c := range censusgen.Header {
		h[i] = c
	}
	return h
}

func seedWorkbooks(tb testing.TB) [][]byte {
	casi, err := os.ReadFile("testdata/casi.xlsx")
	if err != nil {
		tb.Fatal(err)
	}
	var gen bytes.Buffer
	if _, err := censusgen.Write(&gen, censusgen.Options{Comuni: 2, UsersPerComune: 4, Seed: 7, NumericISTAT: true, DateCells: true}); err != nil {
		tb.Fatal(err)
	}
	valid := append([][]any{header()}, romaRows...)
	ws := []any{"Codice ISTAT", "Numero postazioni", "Certificato server"}
	odd := []any{"  CODICE   istat ", "comune", "Codice Fìscale", "COGNOME", "nome", "sesso", "Data di Nascita!", "E-mail", "P.E.C.", "profili", "smart-card", "AMBIENTE", "Note"}
	var zipOnly bytes.Buffer
	zw := zip.NewWriter(&zipOnly)
	w, _ := zw.Create("hello.txt")
	w.Write([]byte("not a workbook"))
	zw.Close()

	return [][]byte{
		casi,
		gen.Bytes(),
		// valid, with numbers and date cells, and workstations
		workbook(tb, sheet{"Utenti", valid}, sheet{"Postazioni", [][]any{ws, {58091, 2, "SI"}, {"058091", "3", "no"}}}),
		// header only
		workbook(tb, sheet{"Utenti", [][]any{header()}}),
		// empty sheet
		workbook(tb, sheet{"Utenti", nil}),
		// odd headers, blank rows, gaps, an extra column
		workbook(tb, sheet{"UTENTI", [][]any{nil, {"", " "}, odd, append(romaRows[0], "nota"), nil, {"", "", ""}, romaRows[1], nil, romaRows[2]}}),
		// duplicated and missing columns
		workbook(tb, sheet{"Utenti", [][]any{{"Codice ISTAT", "Codice Istat", "Cognome"}, {1, 2, 3}}}),
		workbook(tb, sheet{"Utenti", [][]any{{"Codice ISTAT", "Cognome"}, {58091, "Rossi"}}}),
		// numbers everywhere
		workbook(tb, sheet{"Utenti", [][]any{header(), {58091, 1, 2, 3, 4, 5, 24838, 6, 7, 8, 1, 9}, {-1, 1e300, 0.5, true, false, 0, -24838, 1.5, 2, 3, 0, 1}}}),
		// only the Postazioni sheet; a sheet with another name
		workbook(tb, sheet{"Postazioni", [][]any{ws, {58091, 2, "SI"}}}),
		workbook(tb, sheet{"Foglio1", valid}),
		// Postazioni with bad values
		workbook(tb, sheet{"Utenti", valid}, sheet{"Postazioni", [][]any{ws, {58091, -1, "SI"}, {58091, 2.5, "forse"}, {"ABC", 99999, ""}, {15146, 1, "SI"}}}),
		zipOnly.Bytes(),
		{},
		[]byte("PK\x03\x04 not really a zip"),
		[]byte("Codice ISTAT;Comune\n058091;Roma\n"),
	}
}

// blankCells: the row is skipped as blank by the census reader.
func blankCells(row []any) bool {
	for _, c := range row {
		if s, ok := c.(string); !ok || strings.TrimSpace(s) != "" {
			return false
		}
	}
	return true
}

// TestFormulaSheetName: the sheet is found by its folded name, so "=Utenti"
// (or "@Utenti", "-Utenti", "+Utenti") is read as the Utenti sheet, and its
// name goes into the foglio column of every receipt line. Only the message
// column is neutralized (esito.Append), so a spreadsheet reads the foglio
// cell as a formula.
func TestFormulaSheetName(t *testing.T) {
	for _, name := range []string{"=Utenti", "@Utenti"} {
		t.Run(name, func(t *testing.T) {
			ingestOnce(t, workbook(t, sheet{name, append([][]any{header()}, romaRows...)}))
		})
	}
}

// FuzzCensusWorkbook feeds arbitrary bytes as a census workbook through the
// inbox and the census ingester.
func FuzzCensusWorkbook(f *testing.F) {
	for _, s := range seedWorkbooks(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ingestOnce(t, data)
	})
}

// FuzzCensusCells builds a valid workbook around one fuzzed Utenti row (after
// the ASC, ALS and ALP of Roma) and one fuzzed Postazioni row, so the
// validator, the comune rules and the commit run on arbitrary cell values.
// Bits of asNumber write the ISTAT code (1), the birth date (2) and the
// number of workstations (4) as numeric cells when they parse as numbers.
func FuzzCensusCells(f *testing.F) {
	f.Add("58091", "Roma", "VRDGPP80A01H501U", "Verdi", "Giuseppe", "M", "01/01/1980", "giuseppe.verdi@example.it", "", "OPERATORE", "NO", "PRODUZIONE", "3", "SI", uint8(0))
	f.Add("058091", "roma", "cstmrc 66h10 h501p", "Costa", "Marco", "", "24268", "marco.costa@example.it", "m@pec.example.it", "APL,CONSULTAZIONE", "si", "pre-subentro; produzione", "2", "NO", uint8(7))
	f.Add("15146", "Milano", "BNCLRA75M41F205A", "Bianchi", "Laura", "F", "1975-08-01", "laura.bianchi@example.it", "", "ASC;ALS;ALP", "SI", "PRODUZIONE", "1", "SI", uint8(1))
	f.Add("58091", "Roma", "RSSMRA68A01H501Y", "Rossi", "Mario", "M", "NaN", "=1+1@example.it", "", "ASC", "SI", "PRODUZIONE", "9998", "X", uint8(3))
	f.Add("58091.0", "Roma", "THDSDA95P08Z330H", "Thdsda", "Ada", "F", "08/09/1995", "ada@example.it", "", "OPERATORE", "NO", "PRODUZIONE", "1e3", "1", uint8(4))
	f.Fuzz(func(t *testing.T, codice, comune, cf, cognome, nome, sesso, nascita, email, pec, profili, card, ambiente, npost, server string, asNumber uint8) {
		num := func(s string, bit uint8) any {
			if asNumber&bit != 0 {
				if v, err := strconv.ParseFloat(s, 64); err == nil && v == v && v < 1e300 && v > -1e300 {
					return v
				}
			}
			return s
		}
		// excelize refuses cells over 32767 characters; keep inputs small.
		for _, s := range []string{codice, comune, cf, cognome, nome, sesso, nascita, email, pec, profili, card, ambiente, npost, server} {
			if len(s) > 1000 {
				return
			}
		}
		users := append([][]any{header()}, romaRows...)
		users = append(users, []any{num(codice, 1), comune, cf, cognome, nome, sesso, num(nascita, 2), email, pec, profili, card, ambiente})
		ws := [][]any{{"Codice ISTAT", "Numero postazioni", "Certificato server"}, {58091, 2, "SI"}, {num(codice, 1), num(npost, 4), server}}
		wb := excelize.NewFile()
		defer wb.Close()
		wb.SetSheetName("Sheet1", "Utenti")
		wb.NewSheet("Postazioni")
		for sheetName, rows := range map[string][][]any{"Utenti": users, "Postazioni": ws} {
			for j, row := range rows {
				cell, _ := excelize.CoordinatesToCellName(1, j+1)
				if err := wb.SetSheetRow(sheetName, cell, &row); err != nil {
					return // a value excelize cannot write
				}
			}
		}
		var buf bytes.Buffer
		if _, err := wb.WriteTo(&buf); err != nil {
			return
		}
		lines := ingestOnce(t, buf.Bytes())
		if len(lines) > 0 && lines[0][1] == "0" {
			t.Fatalf("a well-formed workbook was refused whole: %q", lines)
		}
		want := 3 + 1 // Roma's three users, Roma's workstations
		if !blankCells(users[len(users)-1]) {
			want++
		}
		if !blankCells(ws[2]) {
			want++
		}
		if len(lines) != want {
			t.Errorf("receipt has %d lines, want %d: %q", len(lines), want, lines)
		}
	})
}

// rezip and zipPart: see internal/ziptest.
func rezip(tb testing.TB, base []byte, parts map[string][]byte) []byte {
	return ziptest.Rezip(tb, base, parts)
}

func zipPart(tb testing.TB, data []byte, name string) []byte { return ziptest.Part(tb, data, name) }

// FuzzCensusSheetXML keeps a valid workbook and fuzzes the rows of its
// Utenti sheet (the XML inside <sheetData>, after the header row) and its
// shared strings: this is what excelize's streaming reader parses, in a
// goroutine of its own that the inbox's recover does not cover.
func FuzzCensusSheetXML(f *testing.F) {
	const sheetPart, sstPart = "xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"
	base := workbook(f, sheet{"Utenti", append([][]any{header()}, romaRows...)},
		sheet{"Postazioni", [][]any{{"Codice ISTAT", "Numero postazioni", "Certificato server"}, {58091, 2, "SI"}}})
	sheetXML, sst := string(zipPart(f, base, sheetPart)), zipPart(f, base, sstPart)
	// The header row is row 1; the fuzzed rows replace rows 2 and after.
	start := strings.Index(sheetXML, `<row r="2"`)
	end := strings.Index(sheetXML, "</sheetData>")
	if start < 0 || end < start {
		f.Fatalf("unexpected sheet XML: %s", sheetXML)
	}
	prefix, rows, suffix := sheetXML[:start], sheetXML[start:end], sheetXML[end:]
	f.Add(rows, sst)
	for _, r := range []string{
		`<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row>`,
		`<row r="0"><c r="A0"><v>1</v></c></row>`,
		`<row r="2"><c r="XFE2"><v>1</v></c></row>`,
		`<row r="2"><c r="A2" t="s"><v>99999</v></c><c r="B2" t="s"><v>-1</v></c><c t="s"><v>x</v></c></row>`,
		`<row r="2"><c r="A2" t="n"><v>abc</v></c><c r="B2" t="b"><v>2</v></c><c r="C2" t="e"><v>#N/A</v></c><c r="D2" t="d"><v>2020-01-01</v></c></row>`,
		`<row r="3"><c r="C3"><v>1</v></c><c r="A3"><v>2</v></c><c r="C3"><v>3</v></c></row><row r="2"><c r="A2"><v>58091</v></c></row>`,
		`<row r="2"><c r="A2" t="str"><f>1+1</f><v>2</v></c><c r="B2" s="999"><v>1</v></c></row>`,
		`<row><c><v>58091</v></c><c t="inlineStr"><is><t>Roma</t></is></c></row><row><c><v>1</v></c></row>`,
		`<row r="2" spans="1:16384"><c r="A2" t="inlineStr"><is><r><t>05</t></r><r><t>8091</t></r></is></c></row>`,
	} {
		f.Add(r, sst)
	}
	f.Add(rows, []byte(`<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="-1"></sst>`))
	f.Add(rows, []byte(`<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><r><t>a</t></r><r><t>b</t></r></si></sst>`))
	f.Fuzz(func(t *testing.T, rowsXML string, sstData []byte) {
		ingestOnce(t, rezip(t, base, map[string][]byte{sheetPart: []byte(prefix + rowsXML + suffix), sstPart: sstData}))
	})
}
