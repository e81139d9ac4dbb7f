package codfisc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		code  string
		want  CF
		omo   bool
		abroa bool
	}{
		{"CCCFBA85D03L219P", CF{Sex: "M", BirthDay: 3, BirthMonth: 4, BirthYY: 85, Belfiore: "L219"}, false, false},
		{"RSSMRA68A01H501Y", CF{Sex: "M", BirthDay: 1, BirthMonth: 1, BirthYY: 68, Belfiore: "H501"}, false, false},
		{"MRTMRA83T56A269B", CF{Sex: "F", BirthDay: 16, BirthMonth: 12, BirthYY: 83, Belfiore: "A269"}, false, false},
		{"THDSDA95P08Z330H", CF{Sex: "M", BirthDay: 8, BirthMonth: 9, BirthYY: 95, Belfiore: "Z330"}, false, true},
		{"CCCFBA85D03L21VE", CF{Sex: "M", BirthDay: 3, BirthMonth: 4, BirthYY: 85, Belfiore: "L219"}, true, false},
		{"CCCFBAURDLPLNMVU", CF{Sex: "M", BirthDay: 3, BirthMonth: 4, BirthYY: 85, Belfiore: "L219"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			got, err := Parse(tt.code)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.code, err)
			}
			tt.want.Code = tt.code
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.code, got, tt.want)
			}
			if got.Omocode() != tt.omo {
				t.Errorf("Omocode() = %v, want %v", got.Omocode(), tt.omo)
			}
			if got.Foreign() != tt.abroa {
				t.Errorf("Foreign() = %v, want %v", got.Foreign(), tt.abroa)
			}
			if c := CheckLetter(tt.code[:15]); c != tt.code[15] {
				t.Errorf("CheckLetter = %c, want %c", c, tt.code[15])
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		code string
		kind error
		msg  string
	}{
		{"CCCFBA85D03L219B", ErrCheckLetter, "il carattere di controllo è B, atteso P"},
		{"CCCFBA85D00L219P", ErrDay, "il giorno 00 non è valido"},
		{"CCCFBA85X03L219P", ErrMonth, "la lettera del mese X non è valida"},
		{"", ErrLength, "ha 0 caratteri invece di 16"},
		{"CCCFBA85D03L219", ErrLength, "ha 15 caratteri invece di 16"},
		{"CCCFBA85D03L219PP", ErrLength, "ha 17 caratteri invece di 16"},
		{"cccfba85d03l219p", ErrFormat, "il carattere 1 'c' deve essere maiuscolo"},
		{"CCCFB185D03L219P", ErrFormat, "il carattere 6 '1' deve essere una lettera maiuscola"},
		{"CCCFBA8AD03L219P", ErrFormat, "il carattere 8 'A' deve essere una cifra"},
		{"CCCFBA85D03L2W9P", ErrFormat, "il carattere 14 'W' deve essere una cifra"},
		{"CCCFBA85D0301219P"[:16], ErrFormat, "il carattere 12 '0' deve essere una lettera maiuscola"},
		{"CCCFBA85D32L219P", ErrDay, "il giorno 32 non è valido"},
		{"CCCFBA85D40L219P", ErrDay, "il giorno 40 non è valido"},
		{"CCCFBA85D72L219P", ErrDay, "il giorno 72 non è valido"},
		{"CCCFBA85D31L219P", ErrDate, "la data 31/04/85 non esiste"},
		{"CCCFBA85B29L219P", ErrDate, "la data 29/02/85 non esiste"},
		{"CCCFBA85B70L219P", ErrDate, "la data 30/02/85 non esiste"},
		{"CCCFBA85D03L219È", ErrFormat, "solo lettere A-Z e cifre"},
		{"CCCFBA85D03 L219P", ErrLength, "ha 17 caratteri"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			_, err := Parse(tt.code)
			if err == nil {
				t.Fatalf("Parse(%q) accepted an invalid code", tt.code)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("Parse(%q) error %v is not %v", tt.code, err, tt.kind)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Parse(%q) error %q does not contain %q", tt.code, err.Error(), tt.msg)
			}
		})
	}
}

func TestLeapDay(t *testing.T) {
	// 29 February exists when the two-digit year is divisible by 4 (00 = 2000).
	for _, yy := range []string{"00", "84", "96", "RV"} { // omocodia RV = 59, not a leap year
		first := "RSSMRA" + yy + "B29H501"
		code := first + string(CheckLetter(first))
		_, err := Parse(code)
		leap := yy != "RV"
		if (err == nil) != leap {
			t.Errorf("Parse(%s) err=%v, want leap=%v", code, err, leap)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"RSSMRA68A01H501Y", "RSSMRA68A01H501Y"},
		{"rssmra68a01h501y", "RSSMRA68A01H501Y"},
		{" RSS MRA 68A01 H501Y\t\n", "RSSMRA68A01H501Y"},
		{"RSS\u00a0MRA68A01H501Y", "RSSMRA68A01H501Y"},
		{"\ufeffRSSMRA68A01H501Y", "RSSMRA68A01H501Y"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckLetterRejects(t *testing.T) {
	for _, s := range []string{"", "RSSMRA68A01H501", "rssmra68a01h501", "RSSMRA68A01H50-"} {
		want := byte(0)
		if s == "RSSMRA68A01H501" {
			want = 'Y'
		}
		if got := CheckLetter(s); got != want {
			t.Errorf("CheckLetter(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestMatches(t *testing.T) {
	cf, err := Parse("MRTMRA83T56A269B")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		date time.Time
		want bool
	}{
		{time.Date(1983, 12, 16, 0, 0, 0, 0, time.UTC), true},
		{time.Date(1983, 12, 16, 23, 59, 0, 0, time.Local), true},
		{time.Date(2083, 12, 16, 0, 0, 0, 0, time.UTC), true}, // the code cannot tell the century
		{time.Date(1983, 12, 17, 0, 0, 0, 0, time.UTC), false},
		{time.Date(1983, 11, 16, 0, 0, 0, 0, time.UTC), false},
		{time.Date(1984, 12, 16, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		if got := cf.Matches(tt.date); got != tt.want {
			t.Errorf("Matches(%v) = %v, want %v", tt.date, got, tt.want)
		}
	}
}

func TestMonthLetter(t *testing.T) {
	for m := 1; m <= 12; m++ {
		first := "RSSMRA68" + string(MonthLetter(m)) + "01H501"
		cf, err := Parse(first + string(CheckLetter(first)))
		if err != nil || cf.BirthMonth != m {
			t.Errorf("month %d: %+v, %v", m, cf, err)
		}
	}
	if MonthLetter(0) != 0 || MonthLetter(13) != 0 {
		t.Error("MonthLetter accepts months out of range")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"CCCFBA85D03L219P", "RSSMRA68A01H501Y", "MRTMRA83T56A269B", "THDSDA95P08Z330H",
		"CCCFBA85D03L21VE", "CCCFBAURDLPLNMVU", "CCCFBA85D03L219B", "CCCFBA85D00L219P",
		"CCCFBA85X03L219P", "", "rssmra68a01h501y", "RSSMRA68A01H501\u00e8",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cf, err := Parse(s)
		n := Normalize(s)
		if Normalize(n) != n {
			t.Fatalf("Normalize is not idempotent on %q", s)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind == nil || e.Error() == "" {
				t.Fatalf("Parse(%q) returned a bad error %#v", s, err)
			}
			return
		}
		if n != s {
			t.Fatalf("Parse accepted %q, which normalizes to %q", s, n)
		}
		if CheckLetter(s[:15]) != s[15] {
			t.Fatalf("Parse accepted %q with a wrong check letter", s)
		}
		if cf.Code != s || len(cf.Belfiore) != 4 || cf.BirthDay < 1 || cf.BirthDay > 31 ||
			cf.BirthMonth < 1 || cf.BirthMonth > 12 || cf.BirthYY < 0 || cf.BirthYY > 99 ||
			(cf.Sex != "M" && cf.Sex != "F") {
			t.Fatalf("Parse(%q) = %+v", s, cf)
		}
		century := 1900
		if cf.BirthYY%4 == 0 {
			century = 2000 // 1900 was not a leap year, 2000 was
		}
		d := time.Date(century+cf.BirthYY, time.Month(cf.BirthMonth), cf.BirthDay, 0, 0, 0, 0, time.UTC)
		if !cf.Matches(d) {
			t.Fatalf("Parse(%q) = %+v gives a date that does not exist", s, cf)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("CCCFBAURDLPLNMVU"); err != nil {
			b.Fatal(err)
		}
	}
}
