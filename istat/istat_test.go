package istat

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

func TestDefault(t *testing.T) {
	tab := Default()
	if tab.Len() != 7896 {
		t.Fatalf("Len() = %d, want 7896", tab.Len())
	}
	if Default() != tab {
		t.Error("Default() is not cached")
	}
	tests := []Comune{
		{"058091", "Roma", "058", "RM", "Lazio", "H501"},
		{"015146", "Milano", "015", "MI", "Lombardia", "F205"},
		{"001001", "Agliè", "001", "TO", "Piemonte", "A074"},
		{"021008", "Bolzano/Bozen", "021", "BZ", "Trentino-Alto Adige/Südtirol", "A952"},
		{"111001", "Arbus", "111", "SU", "Sardegna", "A359"},
		{"081025", "Misiliscemi", "081", "TP", "Sicilia", "M432"},
		{"012144", "Bardello con Malgesso e Bregano", "012", "VA", "Lombardia", "M433"},
		{"028108", "Santa Caterina d'Este", "028", "PD", "Veneto", "M438"},
		{"099030", "Montecopiolo", "099", "RN", "Emilia-Romagna", "F478"},
	}
	for _, want := range tests {
		got, ok := tab.Lookup(want.ISTAT)
		if !ok || got != want {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", want.ISTAT, got, ok, want)
		}
		got, ok = tab.ByBelfiore(want.Belfiore)
		if !ok || got != want {
			t.Errorf("ByBelfiore(%s) = %+v, %v; want %+v", want.Belfiore, got, ok, want)
		}
	}
	for _, code := range []string{"", "58091", "999999", "058091 ", "078108", "041033"} { // 078108 Rossano ceased; 041033 Montecopiolo moved
		if c, ok := tab.Lookup(code); ok {
			t.Errorf("Lookup(%q) = %+v", code, c)
		}
	}
	if _, ok := tab.ByBelfiore("Z330"); ok {
		t.Error("ByBelfiore(Z330) found a comune")
	}

	all := tab.All()
	if len(all) != 7896 || !slices.IsSortedFunc(all, func(a, b Comune) int { return strings.Compare(a.ISTAT, b.ISTAT) }) {
		t.Error("All() is not the 7,896 comuni sorted by ISTAT code")
	}
	all[0].Name = "changed"
	if tab.All()[0].Name == "changed" {
		t.Error("All() returns the table's own slice")
	}
	for _, c := range all[1:] {
		if c.Name == "" || c.Sigla == "" || c.Region == "" || c.Province != c.ISTAT[:3] || !isBelfiore(c.Belfiore) {
			t.Errorf("incomplete comune %+v", c)
		}
	}
}

// TestDefaultSpeed keeps the embedded history fast to load (the bound is
// loose so that -race and slow machines pass).
func TestDefaultSpeed(t *testing.T) {
	start := time.Now()
	if _, err := loadEmbedded(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("loading the embedded history took %v", d)
	}
}

func loadEmbedded() (*Places, error) {
	zr, err := gzip.NewReader(bytes.NewReader(luoghiGz))
	if err != nil {
		return nil, err
	}
	return LoadPlaces(zr)
}

func BenchmarkDefaultLoad(b *testing.B) {
	for b.Loop() {
		if _, err := loadEmbedded(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNormalizeISTAT(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"058091", "058091", true},
		{"58091", "058091", true},
		{"58091.0", "058091", true},
		{"58091.000", "058091", true},
		{"58091,0", "058091", true},
		{"58091.", "058091", true},
		{" 058091 ", "058091", true},
		{"\u00a058091\t", "058091", true},
		{"1001", "001001", true},
		{"1", "000001", true},
		{"111001", "111001", true},
		{"", "", false},
		{"  ", "", false},
		{"0", "", false},
		{"000000", "", false},
		{"58091.5", "", false},
		{"1058091", "", false},
		{"58 091", "", false},
		{"-58091", "", false},
		{"+58091", "", false},
		{"5.8091E4", "", false},
		{"RM", "", false},
		{"058091.0.0", "", false},
		{"٥٨٠٩١", "", false}, // Arabic-Indic digits
	}
	for _, tt := range tests {
		got, err := NormalizeISTAT(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeISTAT(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "ISTAT code") {
			t.Errorf("NormalizeISTAT(%q) error %q does not say what it is about", tt.in, err)
		}
	}
}

func TestSameName(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"Roma", "ROMA", true},
		{"Roma", " roma ", true},
		{"Agliè", "AGLIE", true},
		{"Agliè", "Aglie'", true},
		{"Agliè", "AGLIÈ", true},
		{"Forlì", "Forli", true},
		{"Sant'Angelo Lomellina", "Santangelo Lomellina", true},
		{"Sant'Angelo Lomellina", "SANT ANGELO LOMELLINA", true},
		{"Sant’Angelo Lomellina", "Sant'Angelo Lomellina", true},
		{"Castelbello-Ciardes", "castelbello ciardes", true},
		{"Bolzano/Bozen", "Bolzano", true},
		{"Bolzano/Bozen", "BOZEN", true},
		{"Bozen", "Bolzano / Bozen", true},
		{"Aosta/Aoste", "Aosta", true},
		{"Aosta/Aoste", "aoste", true},
		{"Bolzano/Bozen", "Bolzano/Bozen", true},
		{"Valle d'Aosta/Vallée d'Aoste", "Vallee d Aoste", true},
		{"Châtillon", "Chatillon", true},
		{"Bolzano", "Bozen", false},
		{"Roma", "Rome", false},
		{"Sant'Angelo Lomellina", "Sant'Angelo in Vado", false},
		{"", "", false},
		{"Roma", "", false},
		{"/", "/", false},
		{"Bolzano/", "/Bolzano", true},
	}
	for _, tt := range tests {
		if got := SameName(tt.a, tt.b); got != tt.want {
			t.Errorf("SameName(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := SameName(tt.b, tt.a); got != tt.want {
			t.Errorf("SameName(%q, %q) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestForeignBelfiore(t *testing.T) {
	tests := map[string]bool{"Z330": true, "Z100": true, "Z33": false, "Z3300": false, "H501": false, "z330": false, "ZA30": false, "": false}
	for code, want := range tests {
		if got := ForeignBelfiore(code); got != want {
			t.Errorf("ForeignBelfiore(%q) = %v, want %v", code, got, want)
		}
	}
}

// istatHeader is the header of ISTAT's "Elenco comuni italiani" CSV, with
// the line breaks ISTAT puts inside some quoted column names.
const istatHeader = "\"Codice Regione\";\"Codice dell'Unità territoriale sovracomunale \n(valida a fini statistici)\";" +
	"\"Codice Provincia (Storico)(1)\";\"Progressivo del Comune (2)\";\"Codice Comune formato alfanumerico\";" +
	"\"Denominazione (Italiana e straniera)\";\"Denominazione in italiano\";\"Denominazione altra lingua\";" +
	"\"Codice Ripartizione Geografica\";\"Ripartizione geografica\";\"Denominazione Regione\";" +
	"\"Denominazione dell'Unità territoriale sovracomunale \n(valida a fini statistici)\";" +
	"\"Flag Comune capoluogo di provincia/città metropolitana/libero consorzio\";\"Sigla automobilistica\";" +
	"\"Codice Comune formato numerico\";\"Codice Catastale del comune\"\r\n"

func latin1(t testing.TB, s string) []byte {
	t.Helper()
	b, err := charmap.ISO8859_1.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadISTATLatin1(t *testing.T) {
	src := istatHeader +
		"01;201;001;001;001001;Agliè;Agliè;;1;Nord-ovest;Piemonte;Torino;0;TO;1001;A074\r\n" +
		"04;021;021;008;021008;Bolzano/Bozen;Bolzano;Bozen;2;Nord-est;Trentino-Alto Adige/Südtirol;Bolzano/Bozen;1;BZ;21008;A952\r\n" +
		"12;258;058;091;058091;Roma;Roma;;3;Centro;Lazio;Roma;1;RM;58091;H501\r\n" +
		";;;;;;;;;;;;;;;\r\n" +
		"20;111;111;001;111001;Arbus;Arbus;;5;Isole;Sardegna;Sud Sardegna;0;SU;111001;a359\r\n"
	data := latin1(t, src)
	if utf8.Valid(data) {
		t.Fatal("test data should not be valid UTF-8")
	}
	tab, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Comune{
		{"001001", "Agliè", "001", "TO", "Piemonte", "A074"},
		{"021008", "Bolzano", "021", "BZ", "Trentino-Alto Adige/Südtirol", "A952"},
		{"058091", "Roma", "058", "RM", "Lazio", "H501"},
		{"111001", "Arbus", "111", "SU", "Sardegna", "A359"},
	}
	if got := tab.All(); !slices.Equal(got, want) {
		t.Errorf("Load = %+v\nwant  %+v", got, want)
	}
	if ppp, ok := tab.Prefettura("058091"); !ok || ppp != "058" {
		t.Errorf("Prefettura(058091) = %q, %v: the UTS code 258 must not be used", ppp, ok)
	}
	if ppp, ok := tab.Prefettura("111001"); !ok || ppp != "092" {
		t.Errorf("Prefettura(111001) = %q, %v", ppp, ok)
	}

	// The same list in UTF-8 (with a BOM), with ISTAT codes as numbers
	// (a spreadsheet's export) and only the bilingual name column.
	utf := "\ufeffCODICE COMUNE FORMATO ALFANUMERICO;Denominazione (Italiana e straniera);Sigla automobilistica;denominazione regione;Codice Catastale del Comune\n" +
		"1001;Agliè;TO;Piemonte;A074\n21008.0;Bolzano/Bozen;BZ;Trentino-Alto Adige/Südtirol;A952\n"
	tab, err = Load(strings.NewReader(utf))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := tab.Lookup("021008"); !ok || c.Name != "Bolzano/Bozen" || c.Province != "021" {
		t.Errorf("Lookup(021008) = %+v, %v", c, ok)
	}
	if c, _ := tab.Lookup("001001"); c.Name != "Agliè" {
		t.Errorf("UTF-8 name decoded as %q", c.Name)
	}
}

func TestLoadOwnFormatRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Comma = ';'
	w.Write([]string{"istat", "nome", "provincia", "sigla", "regione", "belfiore"})
	for _, c := range Default().All() {
		w.Write([]string{c.ISTAT, c.Name, c.Province, c.Sigla, c.Region, c.Belfiore})
	}
	w.Flush()
	tab, err := Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tab.All(), Default().All()) {
		t.Error("round trip changed the table")
	}
}

func TestLoadErrors(t *testing.T) {
	const h = "istat;nome;provincia;sigla;regione;belfiore\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "empty"},
		{"blank lines only", "\n;;\n", "empty"},
		{"not a list", "a;b;c\n1;2;3\n", `line 1: not a list of comuni: missing column "istat"`},
		{"missing belfiore", "istat;nome\n058091;Roma\n", `missing column "belfiore"`},
		{"title row", "\n\nElenco dei comuni al 1 gennaio\nistat;nome;belfiore\n", `line 3: not a list of comuni`},
		{"header only", h, "no comuni"},
		{"bad code", h + "058091;Roma;058;RM;Lazio;H501\n58O91;Milano;015;MI;Lombardia;F205\n", `line 3: ISTAT code "58O91" is not 1 to 6 digits`},
		{"no name", h + "058091;;058;RM;Lazio;H501\n", "line 2: comune 058091 has no name"},
		{"bad belfiore", h + "058091;Roma;058;RM;Lazio;H50\n", `line 2: comune 058091 Roma: Belfiore code "H50"`},
		{"foreign belfiore", h + "058091;Roma;058;RM;Lazio;Z501\n", "foreign country"},
		{"wrong province", h + "058091;Roma;059;RM;Lazio;H501\n", `line 2: comune 058091 Roma: province "059"`},
		{"duplicate code", h + "058091;Roma;058;RM;Lazio;H501\n015146;Milano;015;MI;Lombardia;F205\n58091;Roma;058;RM;Lazio;H502\n", "line 4: ISTAT code 058091 is already on line 2"},
		{"duplicate belfiore", h + "058091;Roma;058;RM;Lazio;H501\n015146;Milano;015;MI;Lombardia;H501\n", "line 3: Belfiore code H501 of 015146 is already used by 058091 Roma on line 2"},
		{"bad quotes", h + "058091;\"Roma;058;RM;Lazio;H501\n", "line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Load(strings.NewReader(tt.src))
			if err == nil {
				t.Fatalf("Load accepted it: %d comuni", tab.Len())
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "istat: ") {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("istat;nome;provincia;sigla;regione;belfiore\n058091;Roma;058;RM;Lazio;H501\n"))
	f.Add(latin1(f, istatHeader+"01;201;001;001;001001;Agliè;Agliè;;1;Nord-ovest;Piemonte;Torino;0;TO;1001;A074\r\n"))
	f.Add([]byte("istat,nome,belfiore\n1,\"A\"\"b\",A001\n2,B,A001\n"))
	f.Add([]byte("istat;nome;provincia;sigla;regione;belfiore\n081025;Misiliscemi;081;TP;Sicilia;M432\n021008;Bolzano/Bozen;021;BZ;Trentino-Alto Adige/Südtirol;A952\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Load(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "istat: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		all := tab.All()
		if len(all) == 0 || len(all) != tab.Len() {
			t.Fatalf("Load returned %d comuni, Len %d", len(all), tab.Len())
		}
		for _, c := range all {
			if n, err := NormalizeISTAT(c.ISTAT); err != nil || n != c.ISTAT || c.Province != c.ISTAT[:3] {
				t.Fatalf("bad code in %+v", c)
			}
			if got, ok := tab.Lookup(c.ISTAT); !ok || got != c {
				t.Fatalf("Lookup(%s) = %+v", c.ISTAT, got)
			}
			if got, ok := tab.ByBelfiore(c.Belfiore); !ok || got != c {
				t.Fatalf("ByBelfiore(%s) = %+v", c.Belfiore, got)
			}
			if c.Name == "" || !utf8.ValidString(c.Name) {
				t.Fatalf("bad name in %+v", c)
			}
			tab.Prefettura(c.ISTAT)
		}
	})
}

func FuzzNormalizeISTAT(f *testing.F) {
	for _, s := range []string{"058091", "58091", "58091.0", " 058091 ", "", "0", "58091,00", "1e5", "\u00a01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeISTAT(s)
		if err != nil {
			if n != "" {
				t.Fatalf("NormalizeISTAT(%q) = %q with error %v", s, n, err)
			}
			return
		}
		if len(n) != 6 || !isDigits(n) || n == "000000" {
			t.Fatalf("NormalizeISTAT(%q) = %q", s, n)
		}
		if again, err := NormalizeISTAT(n); err != nil || again != n {
			t.Fatalf("NormalizeISTAT is not idempotent on %q: %q, %v", n, again, err)
		}
	})
}

func FuzzSameName(f *testing.F) {
	f.Add("Bolzano/Bozen", "bozen")
	f.Add("Sant'Angelo", "SANT ANGELO")
	f.Fuzz(func(t *testing.T, a, b string) {
		if SameName(a, b) != SameName(b, a) {
			t.Fatalf("SameName(%q, %q) is not symmetric", a, b)
		}
		if nameKey(a) != "" && strings.Trim(nameKey(a), "/") != "" && !SameName(a, a) {
			t.Fatalf("SameName(%q, itself) = false", a)
		}
	})
}
