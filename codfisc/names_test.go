package codfisc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The expected letters were worked out by hand from the Agenzia delle
// Entrate's rule and agree with a second, independent implementation.
func TestSurnameLetters(t *testing.T) {
	tests := map[string]string{
		"Rossi": "RSS", "Esposito": "SPS", "ROSSI": "RSS", "rossi": "RSS",
		// short surnames: vowels, then X
		"Fo": "FOX", "Re": "REX", "Wu": "WUX", "Li": "LIX", "Ai": "AIX", "O": "OXX",
		"Yi": "YIX", // Y is a consonant
		// double surnames, particles and apostrophes count as one word
		"De Luca": "DLC", "D'Angelo": "DNG", "Dell'Acqua": "DLL", "De Santis": "DSN",
		"Rossi Bianchi": "RSS", "Bianchi-Rossi": "BNC", "Lo Presti": "LPR", "D’Amico": "DMC",
		// accents dropped
		"Nicolò": "NCL", "Dall'Òglio": "DLL", "Müller": "MLL", "Öztürk": "ZTR", "Çelik": "CLK",
		"Ngô": "NGO", "Nguyễn": "NGY",
		// foreign names
		"O'Brien": "BRN", "Øster": "STR", "Kowalski": "KWL", "Smith": "SMT",
		"": "XXX", "  ": "XXX",
	}
	for in, want := range tests {
		if got := SurnameLetters(in); got != want {
			t.Errorf("SurnameLetters(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNameLetters(t *testing.T) {
	tests := map[string]string{
		"Mario": "MRA", "Maria": "MRA", "Marco": "MRC", "Luca": "LCU", "Chiara": "CHR",
		// four consonants or more: the 1st, 3rd and 4th
		"Giuseppe": "GPP", "Francesco": "FNC", "Alessandro": "LSN", "Caterina": "CRN",
		"Cristian": "CST", "Christian": "CRS", "Niccolò": "NCL",
		// double names count as one
		"Gian Luca": "GLC", "Gianluca": "GLC", "Pier Paolo": "PPL", "Anna Maria": "NMR",
		"Maria Grazia": "MGR",
		// short names
		"Bea": "BEA", "Eva": "VEA", "Ugo": "GUO", "Al": "LAX", "Io": "IOX",
		// accents and foreign names
		"Nicolò": "NCL", "José": "JSO", "François": "FNC", "Zoë": "ZOE", "Kai": "KAI", "Wei": "WEI",
	}
	for in, want := range tests {
		if got := NameLetters(in); got != want {
			t.Errorf("NameLetters(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCheckNamesNamesThePartThatDiffers(t *testing.T) {
	cf, err := Parse("RSSMRA68A01H501Y")
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.CheckNames("Rossi", "Mario"); err != nil {
		t.Errorf("Rossi Mario: %v", err)
	}
	if err := cf.CheckNames("ROSSI", "maria"); err != nil { // MRA too
		t.Errorf("ROSSI maria: %v", err)
	}
	tests := []struct {
		surname, name string
		bad           []string
		good          []string
	}{
		{"Esposito", "Mario", []string{`il cognome "Esposito" dà SPS, il codice fiscale RSSMRA68A01H501Y ha RSS`}, []string{"il nome"}},
		{"Rossi", "Giuseppe", []string{`il nome "Giuseppe" dà GPP, il codice fiscale RSSMRA68A01H501Y ha MRA`}, []string{"il cognome"}},
		{"Esposito", "Maria Grazia", []string{"il cognome", "il nome", "SPS", "MGR"}, nil},
	}
	for _, tt := range tests {
		err := cf.CheckNames(tt.surname, tt.name)
		var ne *NameError
		if !errors.As(err, &ne) || !errors.Is(err, ErrName) {
			t.Fatalf("CheckNames(%s, %s) = %v", tt.surname, tt.name, err)
		}
		for _, s := range tt.bad {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("CheckNames(%s, %s) = %q, want it to say %q", tt.surname, tt.name, err, s)
			}
		}
		for _, s := range tt.good {
			if strings.Contains(err.Error(), s) {
				t.Errorf("CheckNames(%s, %s) = %q names the %s, which agrees", tt.surname, tt.name, err, s)
			}
		}
	}
}

func TestCheckNamesIgnoresOmocodia(t *testing.T) {
	cf, err := Parse("CCCFBAURDLPLNMVU") // omocodia in every digit position
	if err != nil {
		t.Fatal(err)
	}
	// CCC: a surname with consonant C only, e.g. "Cocco"; FBA: "Fabia"
	if err := cf.CheckNames("Cocco", "Fabia"); err != nil {
		t.Errorf("CheckNames on an omocode: %v", err)
	}
}

func TestValidDate(t *testing.T) {
	tests := []struct {
		y, m, d int
		want    bool
	}{
		{2000, 2, 29, true}, {1900, 2, 29, false}, {2024, 2, 29, true}, {2023, 2, 29, false},
		{1996, 2, 29, true}, {2100, 2, 29, false}, {1999, 4, 31, false}, {1999, 12, 31, true},
		{1999, 13, 1, false}, {1999, 0, 1, false}, {1999, 1, 0, false},
	}
	for _, tt := range tests {
		if got := ValidDate(tt.y, tt.m, tt.d); got != tt.want {
			t.Errorf("ValidDate(%d-%d-%d) = %v", tt.y, tt.m, tt.d, got)
		}
	}
}

func TestBirthDatesFollowTheCalendar(t *testing.T) {
	today := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	date := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		code string
		want []time.Time
	}{
		// 29 February of year 00: 2000 was a leap year, 1900 was not.
		{"RSSMRA00B29H501" + string(CheckLetter("RSSMRA00B29H501")), []time.Time{date(2000, 2, 29)}},
		// 29 February of year 04: both 2004 and 1904.
		{"RSSMRA04B29H501" + string(CheckLetter("RSSMRA04B29H501")), []time.Time{date(2004, 2, 29), date(1904, 2, 29)}},
		// year 68: 2068 is in the future.
		{"RSSMRA68A01H501Y", []time.Time{date(1968, 1, 1)}},
		// year 26, 1 March: 2026-03-01 is past, so both.
		{"RSSMRA26C01H501" + string(CheckLetter("RSSMRA26C01H501")), []time.Time{date(2026, 3, 1), date(1926, 3, 1)}},
	}
	for _, tt := range tests {
		cf, err := Parse(tt.code)
		if err != nil {
			t.Fatalf("Parse(%s): %v", tt.code, err)
		}
		got := cf.BirthDates(today)
		if len(got) != len(tt.want) {
			t.Errorf("BirthDates(%s) = %v, want %v", tt.code, got, tt.want)
			continue
		}
		for i := range got {
			if !got[i].Equal(tt.want[i]) {
				t.Errorf("BirthDates(%s) = %v, want %v", tt.code, got, tt.want)
			}
		}
	}
}
