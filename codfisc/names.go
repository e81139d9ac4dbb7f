package codfisc

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// ErrName is the Kind of the *NameError that CheckNames returns.
var ErrName = errors.New("surname or name does not match")

// SurnameLetters returns the three letters that a surname gives in a codice
// fiscale, as the Agenzia delle Entrate computes them: its consonants in
// order, then its vowels in order, then X, the first three of them. Only
// letters count: accents are dropped (È = E, Ü = U), and apostrophes,
// blanks, hyphens and dots are skipped, so a double surname counts as one
// word ("De Luca" = DELUCA = DLC, "D'Angelo" = DNG, "Fo" = FOX). A, E, I, O
// and U are vowels; every other letter, J, K, W, X and Y included, is a
// consonant.
func SurnameLetters(surname string) string {
	c, v := splitLetters(plainLetters(surname))
	return (c + v + "XXX")[:3]
}

// NameLetters returns the three letters that a first name gives in a codice
// fiscale: the 1st, 3rd and 4th consonant when it has four or more, and
// otherwise the same as SurnameLetters. All the given names count as one
// word ("Gian Luca" = GIANLUCA = GLC, "Maria Grazia" = MGR).
func NameLetters(name string) string {
	c, v := splitLetters(plainLetters(name))
	if len(c) >= 4 {
		return c[:1] + c[2:4]
	}
	return (c + v + "XXX")[:3]
}

// NameError says which of surname and name do not give the letters of the
// codice fiscale. Its message is in Italian, for the operator.
type NameError struct {
	Code                  string
	Surname, Name         string // as given
	WantSurname, WantName string // letters they give
	BadSurname, BadName   bool
}

func (e *NameError) Error() string {
	var parts []string
	if e.BadSurname {
		parts = append(parts, fmt.Sprintf("il cognome %q dà %s, il codice fiscale %s ha %s", e.Surname, e.WantSurname, e.Code, e.Code[:3]))
	}
	if e.BadName {
		parts = append(parts, fmt.Sprintf("il nome %q dà %s, il codice fiscale %s ha %s", e.Name, e.WantName, e.Code, e.Code[3:6]))
	}
	return strings.Join(parts, "; ")
}

func (e *NameError) Unwrap() error { return ErrName }

// CheckNames reports whether surname and name give the first six letters of
// the code. The error is a *NameError naming the part, or both, that differ.
func (c CF) CheckNames(surname, name string) error {
	s, n := SurnameLetters(surname), NameLetters(name)
	e := &NameError{Code: c.Code, Surname: surname, Name: name, WantSurname: s, WantName: n,
		BadSurname: c.Code[:3] != s, BadName: c.Code[3:6] != n}
	if e.BadSurname || e.BadName {
		return e
	}
	return nil
}

// plainLetters returns the letters of s in upper-case A–Z: accents and other
// marks are dropped, a few letters without a decomposition are spelled out
// (Æ = AE, Ø = O, ß = SS, Ł = L, Đ = D, Þ = TH), and anything else is
// skipped.
func plainLetters(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		r = unicode.ToUpper(r)
		switch {
		case 'A' <= r && r <= 'Z':
			b.WriteRune(r)
		case unicode.Is(unicode.Mn, r):
		default:
			b.WriteString(spelled[r])
		}
	}
	return b.String()
}

var spelled = map[rune]string{
	'Æ': "AE", 'Œ': "OE", 'Ø': "O", 'ẞ': "SS", 'ß': "SS", 'Ł': "L", 'Đ': "D", 'Ð': "D", 'Þ': "TH", 'ı': "I",
}

func splitLetters(s string) (consonants, vowels string) {
	var c, v strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte("AEIOU", s[i]) >= 0 {
			v.WriteByte(s[i])
		} else {
			c.WriteByte(s[i])
		}
	}
	return c.String(), v.String()
}
