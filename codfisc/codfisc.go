// Package codfisc validates and decodes the Italian codice fiscale (CF) of a
// person: the 16-character tax code that carries surname and name letters,
// birth date, sex, birthplace (Belfiore code) and a check letter.
//
// The layout is
//
//	pos  1-6   7-8  9      10-11      12-15        16
//	     AAAAAA YY  month  day(+40 F) birthplace   check
//	     RSSMRA 68  A      01         H501         Y
//
// When two people would get the same code, the Agenzia delle Entrate replaces
// digits, starting from the right, with the letters LMNPQRSTUV (meaning 0–9):
// this is "omocodia". Only positions 7, 8, 10, 11, 13, 14 and 15 may be
// replaced. Parse accepts such codes and decodes them.
//
// The package knows nothing about which Belfiore codes exist: checking the
// birthplace against the table of comuni is the job of package istat.
package codfisc

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Length is the number of characters of a personal codice fiscale.
const Length = 16

// monthLetters maps month 1–12 to its letter: monthLetters[m-1].
const monthLetters = "ABCDEHLMPRST"

// omocodia lists the letters that replace the digits 0–9 in omocodia codes.
const omocodia = "LMNPQRSTUV"

// digitPos are the 0-based positions that hold digits (or omocodia letters).
var digitPos = [...]int{6, 7, 9, 10, 12, 13, 14}

// oddValue holds the value of a character in an odd (1-based) position for
// the check letter, indexed by digit 0–9 or letter A–Z alike (digit d and the
// d-th letter have the same value).
var oddValue = [26]int{
	1, 0, 5, 7, 9, 13, 15, 17, 19, 21, // A-J and 0-9
	2, 4, 18, 20, 11, 3, 6, 8, 12, 14, // K-T
	16, 10, 22, 25, 24, 23, // U-Z
}

// Sentinel errors: every error returned by Parse is an *Error whose Unwrap
// yields one of these, so callers can use errors.Is to classify it.
var (
	ErrLength      = errors.New("wrong length")
	ErrFormat      = errors.New("wrong format")
	ErrMonth       = errors.New("invalid month")
	ErrDay         = errors.New("invalid day")
	ErrDate        = errors.New("invalid date")
	ErrCheckLetter = errors.New("wrong check letter")
)

// Error describes why a codice fiscale was rejected. Its message is meant to
// be shown to an operator as it is (e.g. in an esito line), for example
// "codice fiscale RSSMRA68A01H501B: check letter is B, expected Y".
type Error struct {
	Code   string // the code as given to Parse
	Kind   error  // one of the Err* sentinels
	Detail string // what is wrong, e.g. "check letter is B, expected Y"
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Code == "" {
		return "codice fiscale: " + e.Detail
	}
	return fmt.Sprintf("codice fiscale %s: %s", e.Code, e.Detail)
}

// Unwrap returns the sentinel (ErrLength, ErrFormat, …) of the error.
func (e *Error) Unwrap() error { return e.Kind }

func fail(code string, kind error, format string, args ...any) *Error {
	// Quote codes that are not plain printable text, so a stray control
	// character cannot mangle the operator's report.
	if !isPrintable(code) || len(code) > 32 {
		code = fmt.Sprintf("%.40q", code)
	}
	return &Error{Code: code, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

func isPrintable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

// CF is a decoded, valid codice fiscale.
type CF struct {
	Code       string // the 16 characters, as given (omocodia letters kept)
	Sex        string // "M" or "F"
	BirthDay   int    // 1–31
	BirthMonth int    // 1–12
	BirthYY    int    // the last two digits of the birth year, 0–99
	Belfiore   string // birthplace code with omocodia decoded, e.g. "H501"; "Z…" = abroad
}

// Normalize upper-cases s and removes every blank in it (spaces, tabs,
// newlines, no-break spaces and any other Unicode space), which is how codes
// typed or pasted by people usually differ from the canonical form.
func Normalize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c <= ' ' || ('a' <= c && c <= 'z') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.IsSpace(r) || r == '\u00a0' || r == '\u200b' || r == '\ufeff' {
			continue
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// digitValue returns the value of a digit or of an omocodia letter, or -1.
func digitValue(c byte) int {
	if '0' <= c && c <= '9' {
		return int(c - '0')
	}
	if i := strings.IndexByte(omocodia, c); i >= 0 {
		return i
	}
	return -1
}

// CheckLetter computes the check letter (16th character) of a codice fiscale
// from its first 15 characters, which must be digits or upper-case letters.
// It returns 0 when first15 is not 15 such characters. Omocodia letters are
// used as they are, as the Agenzia delle Entrate does.
func CheckLetter(first15 string) byte {
	if len(first15) != Length-1 {
		return 0
	}
	sum := 0
	for i := 0; i < len(first15); i++ {
		c := first15[i]
		var v int
		switch {
		case '0' <= c && c <= '9':
			v = int(c - '0')
		case 'A' <= c && c <= 'Z':
			v = int(c - 'A')
		default:
			return 0
		}
		if i%2 == 0 { // odd position, 1-based
			v = oddValue[v]
		}
		sum += v
	}
	return byte('A' + sum%26)
}

// Parse validates a normalized codice fiscale (see Normalize) and decodes it.
// It checks, in this order: the length, the kind of character in each
// position (omocodia letters allowed where digits go), the month letter, the
// day (1–31 for men, 41–71 for women), the calendar date as far as two year
// digits tell (29 February only in years ending in a multiple of four; see
// BirthDates for the full date) and the check letter.
// The error, an *Error, says what is wrong in words an operator understands.
func Parse(s string) (CF, error) {
	if len(s) != Length {
		n := len([]rune(s))
		if n == Length && len(s) != Length {
			return CF{}, fail(s, ErrFormat, "sono ammesse solo lettere A-Z e cifre")
		}
		return CF{}, fail(s, ErrLength, "ha %d caratteri invece di %d", n, Length)
	}
	for i := 0; i < Length; i++ {
		c := s[i]
		switch i {
		case 6, 7, 9, 10, 12, 13, 14:
			if digitValue(c) < 0 {
				return CF{}, fail(s, ErrFormat, "il carattere %d %q deve essere una cifra (o una lettera di omocodia L-V)", i+1, rune(c))
			}
		default:
			if c < 'A' || c > 'Z' {
				what := "una lettera maiuscola"
				if 'a' <= c && c <= 'z' {
					what = "maiuscolo"
				}
				return CF{}, fail(s, ErrFormat, "il carattere %d %q deve essere %s", i+1, rune(c), what)
			}
		}
	}

	month := strings.IndexByte(monthLetters, s[8]) + 1
	if month == 0 {
		return CF{}, fail(s, ErrMonth, "la lettera del mese %c non è valida (ammesse: %s)", s[8], monthLetters)
	}
	yy := digitValue(s[6])*10 + digitValue(s[7])
	day := digitValue(s[9])*10 + digitValue(s[10])
	sex := "M"
	switch {
	case day >= 1 && day <= 31:
	case day >= 41 && day <= 71:
		sex = "F"
		day -= 40
	default:
		return CF{}, fail(s, ErrDay, "il giorno %02d non è valido (1-31 per gli uomini, 41-71 per le donne)", day)
	}
	if day > daysIn(month, yy) {
		return CF{}, fail(s, ErrDate, "la data %02d/%02d/%02d non esiste", day, month, yy)
	}
	if want := CheckLetter(s[:15]); s[15] != want {
		return CF{}, fail(s, ErrCheckLetter, "il carattere di controllo è %c, atteso %c", s[15], want)
	}

	var bf [4]byte
	bf[0] = s[11]
	for i := 0; i < 3; i++ {
		bf[i+1] = byte('0' + digitValue(s[12+i]))
	}
	return CF{
		Code:       s,
		Sex:        sex,
		BirthDay:   day,
		BirthMonth: month,
		BirthYY:    yy,
		Belfiore:   string(bf[:]),
	}, nil
}

// daysIn returns the number of days of month in a year ending in yy, as far
// as two digits tell: 29 February is accepted whenever yy%4 == 0, since 2000
// was a leap year. Whether 00 means 2000 or 1900 (not a leap year) is told by
// BirthDates, or by the full birth date when it is known.
func daysIn(month, yy int) int {
	switch month {
	case 2:
		if yy%4 == 0 {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ValidDate reports whether year-month-day is a day of the Gregorian
// calendar: 29 February only in leap years (divisible by 4, and by 400 for
// the years of a new century: 2000 was one, 1900 was not).
func ValidDate(year, month, day int) bool {
	if month < 1 || month > 12 || day < 1 {
		return false
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Day() == day
}

// BirthDates returns the full birth dates the code allows, latest first: its
// day and month in the year 20yy and in 19yy, each when it is a real date
// (29 February of 00 is 2000, never 1900) and not after today.
func (c CF) BirthDates(today time.Time) []time.Time {
	var out []time.Time
	for _, century := range []int{2000, 1900} {
		y := century + c.BirthYY
		if !ValidDate(y, c.BirthMonth, c.BirthDay) {
			continue
		}
		d := time.Date(y, time.Month(c.BirthMonth), c.BirthDay, 0, 0, 0, 0, time.UTC)
		if !d.After(today) {
			out = append(out, d)
		}
	}
	return out
}

// Matches reports whether a full birth date agrees with the day, month and
// two-digit year in the code. Only the date part of birth is used; a
// time.Time is always a real calendar date.
func (c CF) Matches(birth time.Time) bool {
	return birth.Day() == c.BirthDay &&
		int(birth.Month()) == c.BirthMonth &&
		birth.Year()%100 == c.BirthYY
}

// Foreign reports whether the person was born abroad (Belfiore code Z…).
func (c CF) Foreign() bool { return strings.HasPrefix(c.Belfiore, "Z") }

// Omocode reports whether the code uses omocodia letters in place of digits.
func (c CF) Omocode() bool {
	for _, i := range digitPos {
		if c.Code[i] > '9' {
			return true
		}
	}
	return false
}

// MonthLetter returns the letter that encodes month m (1–12) in a codice
// fiscale, or 0 for any other m. Generators use it to build valid codes.
func MonthLetter(m int) byte {
	if m < 1 || m > 12 {
		return 0
	}
	return monthLetters[m-1]
}
