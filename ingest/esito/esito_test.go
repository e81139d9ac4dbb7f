package esito_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"unicode/utf8"

	"anprsec/ingest/esito"
	"anprsec/internal/cellsafe"
)

// parse reads CSV lines written by Append (no header).
func parse(t *testing.T, data []byte) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = ';'
	r.FieldsPerRecord = 5
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("receipt does not parse as ';' CSV: %v\n%s", err, data)
	}
	return recs
}

func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		name string
		line esito.Line
		raw  string   // exact CSV text
		want []string // fields read back
	}{
		{"plain", esito.Line{Sheet: "Utenti", Row: 2, Outcome: esito.OK, Code: "CREATA", Message: "utenza creata"},
			"Utenti;2;OK;CREATA;utenza creata\n",
			[]string{"Utenti", "2", "OK", "CREATA", "utenza creata"}},
		{"riga 0", esito.Line{Outcome: esito.Scartato, Code: "FILE_VUOTO", Message: "il file è vuoto"},
			";0;SCARTATO;FILE_VUOTO;il file è vuoto\n",
			[]string{"", "0", "SCARTATO", "FILE_VUOTO", "il file è vuoto"}},
		{"semicolon", esito.Line{Sheet: "Utenti", Row: 3, Outcome: esito.Scartato, Code: "PROFILO", Message: "profili ALS;XYZ"},
			"Utenti;3;SCARTATO;PROFILO;\"profili ALS;XYZ\"\n",
			[]string{"Utenti", "3", "SCARTATO", "PROFILO", "profili ALS;XYZ"}},
		{"newline", esito.Line{Sheet: "Utenti", Row: 4, Outcome: esito.Scartato, Code: "X", Message: "riga uno\nriga due"},
			"Utenti;4;SCARTATO;X;\"riga uno\nriga due\"\n",
			[]string{"Utenti", "4", "SCARTATO", "X", "riga uno\nriga due"}},
		{"quote", esito.Line{Sheet: "Utenti", Row: 5, Outcome: esito.Scartato, Code: "COGNOME", Message: `colonna "Cognome" (D): "D'Amico"`},
			"Utenti;5;SCARTATO;COGNOME;\"colonna \"\"Cognome\"\" (D): \"\"D'Amico\"\"\"\n",
			[]string{"Utenti", "5", "SCARTATO", "COGNOME", `colonna "Cognome" (D): "D'Amico"`}},
		{"formula =", esito.Line{Sheet: "Utenti", Row: 6, Outcome: esito.Scartato, Code: "X", Message: "=cmd|' /C calc'!A0"},
			"Utenti;6;SCARTATO;X;'=cmd|' /C calc'!A0\n",
			[]string{"Utenti", "6", "SCARTATO", "X", "'=cmd|' /C calc'!A0"}},
		{"formula + with ;", esito.Line{Sheet: "Utenti", Row: 7, Outcome: esito.Scartato, Code: "X", Message: "+1;2"},
			"Utenti;7;SCARTATO;X;\"'+1;2\"\n",
			[]string{"Utenti", "7", "SCARTATO", "X", "'+1;2"}},
		{"formula -", esito.Line{Sheet: "Utenti", Row: 8, Outcome: esito.Scartato, Code: "X", Message: "-2+3"},
			"Utenti;8;SCARTATO;X;'-2+3\n",
			[]string{"Utenti", "8", "SCARTATO", "X", "'-2+3"}},
		{"formula @", esito.Line{Sheet: "Utenti", Row: 9, Outcome: esito.Scartato, Code: "X", Message: "@A1"},
			"Utenti;9;SCARTATO;X;'@A1\n",
			[]string{"Utenti", "9", "SCARTATO", "X", "'@A1"}},
		{"formula tab", esito.Line{Sheet: "Utenti", Row: 10, Outcome: esito.Scartato, Code: "X", Message: "\t=1"},
			"Utenti;10;SCARTATO;X;'\t=1\n",
			[]string{"Utenti", "10", "SCARTATO", "X", "'\t=1"}},
		{"formula CR", esito.Line{Sheet: "Utenti", Row: 11, Outcome: esito.Scartato, Code: "X", Message: "\r=1"},
			"Utenti;11;SCARTATO;X;\"'\r=1\"\n",
			[]string{"Utenti", "11", "SCARTATO", "X", "'\r=1"}},
		{"leading space", esito.Line{Sheet: "Utenti", Row: 12, Outcome: esito.OK, Code: "CREATA", Message: " spazio"},
			"Utenti;12;OK;CREATA;\" spazio\"\n",
			[]string{"Utenti", "12", "OK", "CREATA", " spazio"}},
		{"sheet with ;", esito.Line{Sheet: "Ute;nti", Row: 13, Outcome: esito.OK, Code: "CREATA", Message: "x"},
			"\"Ute;nti\";13;OK;CREATA;x\n",
			[]string{"Ute;nti", "13", "OK", "CREATA", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			esito.Append(&buf, tc.line)
			if buf.String() != tc.raw {
				t.Errorf("Append = %q, want %q", buf.String(), tc.raw)
			}
			recs := parse(t, buf.Bytes())
			if len(recs) != 1 || strings.Join(recs[0], "|") != strings.Join(tc.want, "|") {
				t.Errorf("read back %q, want %q", recs, tc.want)
			}
		})
	}
}

func TestAppendManyLines(t *testing.T) {
	var buf bytes.Buffer
	esito.Append(&buf) // no lines: nothing written
	if buf.Len() != 0 {
		t.Fatalf("Append() with no lines wrote %q", buf.String())
	}
	esito.Append(&buf,
		esito.Line{Sheet: "Utenti", Row: 2, Outcome: esito.OK, Code: "CREATA", Message: "a;b"},
		esito.Line{Sheet: "Utenti", Row: 3, Outcome: esito.Scartato, Code: "CF", Message: "=x\ny"},
	)
	esito.Append(&buf, esito.Line{Sheet: "Postazioni", Row: 2, Outcome: esito.OK, Code: "AGGIORNATA", Message: ""})
	recs := parse(t, esito.File(buf.Bytes())[len(esito.Header):])
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3: %q", len(recs), recs)
	}
	if recs[1][4] != "'=x\ny" || recs[2][0] != "Postazioni" || recs[2][4] != "" {
		t.Errorf("records = %q", recs)
	}
}

func TestFile(t *testing.T) {
	if got := string(esito.File()); got != esito.Header {
		t.Errorf("File() = %q, want only the header", got)
	}
	if esito.Header != "foglio;riga;esito;codice;messaggio\n" {
		t.Errorf("Header = %q", esito.Header)
	}
	var a, b bytes.Buffer
	esito.Append(&a, esito.Line{Sheet: "Utenti", Row: 2, Outcome: esito.OK, Code: "CREATA", Message: "x"})
	esito.Append(&b, esito.Line{Sheet: "Utenti", Row: 3, Outcome: esito.OK, Code: "CREATA", Message: "y"})
	got := string(esito.File(a.Bytes(), nil, b.Bytes()))
	want := esito.Header + "Utenti;2;OK;CREATA;x\nUtenti;3;OK;CREATA;y\n"
	if got != want {
		t.Errorf("File = %q, want %q", got, want)
	}
	if !utf8.ValidString(got) {
		t.Error("receipt is not UTF-8")
	}
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct{ code, msg, want string }{
		{"FILE_VUOTO", "il file è vuoto", ";0;SCARTATO;FILE_VUOTO;il file è vuoto\n"},
		{"DUPLICATO", "contenuto già elaborato; file a.xlsx", ";0;SCARTATO;DUPLICATO;\"contenuto già elaborato; file a.xlsx\"\n"},
		{"X", "=1+1", ";0;SCARTATO;X;'=1+1\n"},
		{"X", "a\nb", ";0;SCARTATO;X;\"a\nb\"\n"},
	} {
		got := string(esito.Refused(tc.code, tc.msg))
		if got != esito.Header+tc.want {
			t.Errorf("Refused(%q, %q) = %q, want %q", tc.code, tc.msg, got, esito.Header+tc.want)
		}
		recs := parse(t, []byte(got))
		if len(recs) != 2 || recs[1][1] != "0" || recs[1][2] != esito.Scartato || recs[1][3] != tc.code {
			t.Errorf("Refused(%q) read back as %q", tc.code, recs)
		}
	}
}

// TestAppendMatchesEncodingCSV: the hand-written quoting gives what
// encoding/csv writes, for awkward fields.
func TestAppendMatchesEncodingCSV(t *testing.T) {
	fields := []string{"", "a", "a;b", `a"b`, "a\nb", "a\r\nb", " lead", "\tlead", `\.`, "x\"", "é;ü", "trail "}
	for _, f := range fields {
		var got bytes.Buffer
		esito.Append(&got, esito.Line{Sheet: "S", Row: 3, Outcome: esito.OK, Code: "C", Message: f})
		var want bytes.Buffer
		w := csv.NewWriter(&want)
		w.Comma = ';'
		w.Write([]string{"S", "3", esito.OK, "C", cellsafe.Neutralize(f)})
		w.Flush()
		if got.String() != want.String() {
			t.Errorf("message %q: got %q, want %q", f, got.String(), want.String())
		}
	}
}

// A receipt line is bounded whatever its fields hold: a huge message or
// sheet name is written cut, with its length and a hash.
func TestHugeFieldsAreWrittenCut(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	var b bytes.Buffer
	esito.Append(&b, esito.Line{Sheet: huge, Row: 2, Outcome: esito.Scartato, Code: huge, Message: huge})
	if b.Len() > esito.MaxSheet+esito.MaxCode+esito.MaxMessage+32 {
		t.Errorf("line of %d bytes", b.Len())
	}
	recs := parse(t, append([]byte(esito.Header), b.Bytes()...))
	if len(recs) != 2 || !strings.Contains(recs[1][4], "tagliato: 1048576 byte") || !strings.Contains(recs[1][0], "tagliato") {
		t.Errorf("line read back as %.300q", recs)
	}
}
