package table_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"anprsec/ingest/table"
)

// The prefettura manifest's columns (docs/rules.md#manifests), with an
// optional one.
var manifest = table.Options{
	Required: []string{"Codice ISTAT", "Seriale", "Codice Fiscale", "Data consegna", "Ritirata da"},
	Optional: []string{"Note"},
}

const hdr = "Codice ISTAT;Seriale;Codice Fiscale;Data consegna;Ritirata da"

// dump renders a table's rows as "line:istat|seriale|cf|data|ritirata|note",
// with " !CODE" for a row error.
func dump(t *table.Table) []string {
	var out []string
	for _, r := range t.Rows {
		var v []string
		for _, c := range append(append([]string{}, manifest.Required...), manifest.Optional...) {
			v = append(v, r.Get(c))
		}
		s := fmt.Sprintf("%d:%s", r.Line, strings.Join(v, "|"))
		if r.Err != nil {
			s += " !" + r.Err.Code
		}
		out = append(out, s)
	}
	return out
}

func latin1(s string) []byte {
	b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

func utf16le(s string) []byte {
	b, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

type tableCase struct {
	name    string
	file    string // file name (extension); "f.csv" when empty
	data    []byte
	opt     *table.Options
	want    []string // dump
	header  int      // header row, when not 1
	unknown []string
	enc     string
	sep     rune
	code    string // FileError code expected
	msg     []string
}

func TestCSV(t *testing.T) {
	row1 := "058091;SC0001;RSSMRA68A01H501Y;14/03/2025;CCCFBA85D03L219P"
	want1 := "2:058091|SC0001|RSSMRA68A01H501Y|14/03/2025|CCCFBA85D03L219P|"
	row2 := "15146;SC0002;MRTMRA83T56A269B;2025-03-15;CCCFBA85D03L219P"
	want2 := "3:15146|SC0002|MRTMRA83T56A269B|2025-03-15|CCCFBA85D03L219P|"
	lf := hdr + "\n" + row1 + "\n" + row2 + "\n"
	big := hdr + "\n" + strings.Repeat(row1+"\n", 12)
	cases := []tableCase{
		{name: "UTF-8 LF", data: []byte(lf), want: []string{want1, want2}, enc: "UTF-8", sep: ';'},
		{name: "UTF-8 BOM CRLF", data: []byte("\ufeff" + strings.ReplaceAll(lf, "\n", "\r\n")), want: []string{want1, want2}, enc: "UTF-8 BOM", sep: ';'},
		{name: "no final newline", data: []byte(strings.TrimSuffix(lf, "\n")), want: []string{want1, want2}},
		{name: "CR only (old Mac)", data: []byte(strings.ReplaceAll(lf, "\n", "\r")), want: []string{want1, want2}},
		{name: "comma", data: []byte(strings.ReplaceAll(lf, ";", ",")), want: []string{want1, want2}, sep: ','},
		{name: "tab", data: []byte(strings.ReplaceAll(lf, ";", "\t")), want: []string{want1, want2}, sep: '\t'},
		{name: "semicolon preferred when both appear",
			data: []byte(hdr + ";Note, varie\n058091;SC0001;RSSMRA68A01H501Y;14/03/2025;CCCFBA85D03L219P;a, b\n"),
			want: []string{want1}, unknown: []string{"Note, varie"}, sep: ';'},
		{name: "Windows-1252 with accents",
			data:    latin1("Codice ISTAT;Seriale;Codice Fiscale;Data consegna;Ritirata da;Città;Note\r\n058091;SC0001;RSSMRA68A01H501Y;14/03/2025;CCCFBA85D03L219P;Forlì;consegnata à Nicolò, è ok €\r\n"),
			want:    []string{"2:058091|SC0001|RSSMRA68A01H501Y|14/03/2025|CCCFBA85D03L219P|consegnata à Nicolò, è ok €"},
			unknown: []string{"Città"}, enc: "Windows-1252"},
		{name: "UTF-16 with BOM", data: utf16le(lf), want: []string{want1, want2}, enc: "UTF-16"},
		{name: "quoted newline moves the next record's line",
			data: []byte(hdr + ";Note\n" + row1 + ";\"prima riga\nseconda riga\"\n" + row2 + ";\"a \"\"b\"\"\"\n"),
			want: []string{want1 + "prima riga\nseconda riga", "4:15146|SC0002|MRTMRA83T56A269B|2025-03-15|CCCFBA85D03L219P|a \"b\""}},
		{name: "blank lines and separator-only lines skipped",
			data:   []byte("\n;;;\n" + hdr + "\n\n" + row1 + "\n ; ;\n\n" + row2 + "\n;;;;;;\n"),
			header: 3,
			want:   []string{"5:058091|SC0001|RSSMRA68A01H501Y|14/03/2025|CCCFBA85D03L219P|", "8:15146|SC0002|MRTMRA83T56A269B|2025-03-15|CCCFBA85D03L219P|"}},
		{name: "ragged rows",
			data: []byte(hdr + "\n" +
				"058091;SC0001\n" + // fewer cells: the rest empty
				row1 + ";;  ;\n" + // extra blank cells: ignored
				row1 + ";x\n" + // extra non-blank cell: row error
				"\n"),
			want: []string{"2:058091|SC0001||||", "3" + want1[1:], "4" + want1[1:] + " !CELLA_FUORI_INTESTAZIONE"}},
		{name: "header spelled differently, columns in another order",
			data: []byte("  ritirata-DA ;DATA CONSEGNA;codice fiscale;CODICE  istat;Séríale;NOTE\n" +
				"CCCFBA85D03L219P;14/03/2025;RSSMRA68A01H501Y;058091;SC0001;  nota  \n"),
			want: []string{"2:058091|SC0001|RSSMRA68A01H501Y|14/03/2025|CCCFBA85D03L219P|nota"}},
		{name: "blank header cells and unknown columns",
			data: []byte("Prog.;" + hdr + ";;Altro\n1;" + row1 + ";;z\n"),
			want: []string{want1}, unknown: []string{"Prog.", "Altro"}},
		{name: "header only", data: []byte(hdr + "\r\n"), want: nil},
		{name: "cell too long", opt: &table.Options{Required: manifest.Required, Optional: manifest.Optional, MaxCell: 10},
			data: []byte(hdr + "\n" + row1 + "\n"), want: []string{want1 + " !VALORE_TROPPO_LUNGO"}},
		{name: "max rows reached exactly", opt: &table.Options{Required: manifest.Required, Optional: manifest.Optional, MaxRows: 2},
			data: []byte(lf), want: []string{want1, want2}},

		{name: "missing columns", data: []byte("Codice ISTAT;Codice Fiscale;Data\n" + row1 + "\n"), code: table.CodeHeader,
			msg: []string{"riga 1", `"Seriale"`, `"Data consegna"`, `"Ritirata da"`, `"Data"`}},
		{name: "duplicate column", data: []byte(hdr + ";codice fiscale\n" + row1 + "\n"), code: table.CodeHeader,
			msg: []string{"Codice Fiscale", "due volte", "colonne C e F"}},
		{name: "duplicate optional column", data: []byte(hdr + ";Note;NOTE\n"), code: table.CodeHeader, msg: []string{"Note"}},
		{name: "empty file", data: nil, code: table.CodeHeader, msg: []string{"vuoto"}},
		{name: "blank file", data: []byte("\r\n;;\n  \n"), code: table.CodeHeader, msg: []string{"vuoto"}},
		{name: "NUL byte", data: []byte(hdr + "\n058091;SC\x000001\n"), code: table.CodeFormat, msg: []string{"riga 2", "byte nulli"}},
		{name: "control character", data: []byte(hdr + "\n\x03\x04\x05\n"), code: table.CodeFormat, msg: []string{"binario"}},
		{name: "xlsx renamed .csv", data: []byte("PK\x03\x04\x14\x00\x00\x00"), code: table.CodeFormat, msg: []string{"zip"}},
		{name: "xls renamed .csv", data: []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00"), code: table.CodeFormat, msg: []string{".xls"}},
		{name: "bare quote", data: []byte(hdr + "\n" + row1 + "\n058091;SC\"1\";x;y;z\n"), code: table.CodeFormat, msg: []string{"riga 3", "virgolette"}},
		{name: "unclosed quote", data: []byte(hdr + "\n" + row1 + "\n\"058091;SC1;x;y;z\n" + row2 + "\n"), code: table.CodeFormat, msg: []string{"riga 3", "non chiuse"}},
		{name: "over max rows", opt: &table.Options{Required: manifest.Required, MaxRows: 10}, data: []byte(big), code: table.CodeTooMany,
			msg: []string{"12 righe", "al massimo 10"}},
		{name: "other extension", file: "consegne.txt", data: []byte(lf), code: table.CodeFormat, msg: []string{".txt", ".csv e .xlsx"}},
		{name: "no extension", file: "consegne", data: []byte(lf), code: table.CodeFormat, msg: []string{"estensione"}},
		{name: "extension in capitals", file: "CONSEGNE.CSV", data: []byte(lf), want: []string{want1, want2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { check(t, c) })
	}
}

func check(t *testing.T, c tableCase) {
	t.Helper()
	opt := manifest
	if c.opt != nil {
		opt = *c.opt
	}
	name := c.file
	if name == "" {
		name = "f.csv"
	}
	tb, err := table.Open(name, c.data, opt)
	if c.code != "" {
		var fe *table.FileError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T), want a *FileError %s", err, err, c.code)
		}
		if fe.Code != c.code {
			t.Errorf("code %s, want %s (%s)", fe.Code, c.code, fe.Message)
		}
		for _, m := range c.msg {
			if !strings.Contains(fe.Message, m) {
				t.Errorf("message %q does not mention %q", fe.Message, m)
			}
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(tb); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
	}
	header := c.header
	if header == 0 {
		header = 1
	}
	if tb.HeaderRow != header {
		t.Errorf("header row %d, want %d", tb.HeaderRow, header)
	}
	if strings.Join(tb.Unknown, "|") != strings.Join(c.unknown, "|") {
		t.Errorf("unknown columns %q, want %q", tb.Unknown, c.unknown)
	}
	if c.enc != "" && tb.Encoding != c.enc {
		t.Errorf("encoding %q, want %q", tb.Encoding, c.enc)
	}
	if c.sep != 0 && tb.Separator != c.sep {
		t.Errorf("separator %q, want %q", tb.Separator, c.sep)
	}
}

func TestWhereAndGet(t *testing.T) {
	tb, err := table.Open("f.csv", []byte("Seriale;Codice ISTAT;Ritirata da;Codice Fiscale;Data consegna\nSC1;058091\n"), manifest)
	if err != nil {
		t.Fatal(err)
	}
	r := tb.Rows[0]
	for _, c := range []struct{ col, want string }{
		{"Data consegna", "colonna E (Data consegna)"},
		{"Seriale", "colonna A (Seriale)"},
		{"Note", "colonna Note (assente)"},
	} {
		if got := r.Where(c.col); got != c.want {
			t.Errorf("Where(%q) = %q, want %q", c.col, got, c.want)
		}
	}
	if r.Get("Codice ISTAT") != "058091" || r.Get("Codice Fiscale") != "" || r.Get("Note") != "" {
		t.Errorf("Get: %q %q %q", r.Get("Codice ISTAT"), r.Get("Codice Fiscale"), r.Get("Note"))
	}
	if !tb.Has("Seriale") || tb.Has("Note") || tb.Column("Ritirata da") != 2 || tb.Column("Note") != -1 {
		t.Errorf("Has/Column wrong")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("Get of an undeclared column did not panic")
		}
	}()
	r.Get("Cognome")
}

func TestExtraCellMessage(t *testing.T) {
	tb, err := table.Open("f.csv", []byte(hdr+"\n058091;SC1;RSSMRA68A01H501Y;14/03/2025;CCCFBA85D03L219P;Rossi\n"), manifest)
	if err != nil {
		t.Fatal(err)
	}
	e := tb.Rows[0].Err
	if e == nil || e.Code != table.CodeExtraCell || !strings.Contains(e.Message, "colonna F") || !strings.Contains(e.Message, `"Rossi"`) {
		t.Fatalf("row error %+v", e)
	}
}

func TestColumnLetter(t *testing.T) {
	for i, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 51: "AZ", 52: "BA", 701: "ZZ", 702: "AAA", 16383: "XFD"} {
		if got := table.ColumnLetter(i); got != want {
			t.Errorf("ColumnLetter(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestFoldHeader(t *testing.T) {
	for in, want := range map[string]string{
		"CODICE  istat":      "codice istat",
		" Data Consegna ":    "data consegna",
		"Ritirata-da":        "ritirata da",
		"PIN (prima metà)":   "pin prima meta",
		"Città\u00a0":        "citta",
		"\ufeffCodice ISTAT": "codice istat",
		"!!":                 "",
	} {
		if got := table.FoldHeader(in); got != want {
			t.Errorf("FoldHeader(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCanonicalCSVIsTheTextTheReaderReads: the same table saved in UTF-8,
// with a BOM, in Windows-1252 or UTF-16, with LF, CRLF or old-Mac CR line
// ends, with or without a final line end or DOS end-of-file mark, has one
// canonical text; a changed cell, or a CR inside a line of a file with LF
// line ends (which the reader keeps as data), gives another; what the
// reader refuses has none.
func TestCanonicalCSVIsTheTextTheReaderReads(t *testing.T) {
	text := hdr + ";Note\n058091;SC0001;RSSMRA68A01H501Y;14/03/2025;CCCFBA85D03L219P;consegnata in città\n"
	crlf := strings.ReplaceAll(text, "\n", "\r\n")
	want, ok := table.CanonicalCSV([]byte(text))
	if !ok || string(want) != strings.TrimSuffix(text, "\n") {
		t.Fatalf("canonical text %q, %v", want, ok)
	}
	for name, data := range map[string][]byte{
		"UTF-8 CRLF":             []byte(crlf),
		"UTF-8 BOM CRLF":         []byte("\ufeff" + crlf),
		"Windows-1252 CRLF":      latin1(crlf),
		"UTF-16 CRLF":            utf16le(crlf),
		"UTF-16 LF":              utf16le(text),
		"CR only":                []byte(strings.ReplaceAll(text, "\n", "\r")),
		"no final line end":      []byte(strings.TrimSuffix(text, "\n")),
		"two final line ends":    []byte(text + "\r\n"),
		"DOS end-of-file mark":   []byte(crlf + "\x1a"),
		"Windows-1252 no ending": latin1(strings.TrimSuffix(text, "\n")),
	} {
		got, ok := table.CanonicalCSV(data)
		if !ok || string(got) != string(want) {
			t.Errorf("%s: %q (%v), want %q", name, got, ok, want)
		}
	}
	for name, data := range map[string][]byte{
		"another cell":     []byte(strings.Replace(text, "SC0001", "SC0002", 1)),
		"CR inside a line": []byte(strings.Replace(text, "in città", "in\rcittà", 1)),
	} {
		if got, _ := table.CanonicalCSV(data); string(got) == string(want) {
			t.Errorf("%s: same canonical text as the original", name)
		}
	}
	if _, ok := table.CanonicalCSV([]byte("PK\x03\x04\x14\x00")); ok {
		t.Error("a zip file has a canonical CSV text")
	}
}
