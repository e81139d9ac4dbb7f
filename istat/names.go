package istat

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// SameName reports whether two comune names denote the same comune as people
// write them: case, accents, apostrophes, hyphens and blanks are ignored
// ("Agliè" = "AGLIE'", "Sant'Angelo" = "Santangelo", "Castelbello-Ciardes" =
// "castelbello ciardes"), and either half of a bilingual name written with a
// slash is accepted ("Bolzano/Bozen" = "Bolzano" = "BOZEN", "Aosta/Aoste" =
// "Aosta"). Empty names never match.
func SameName(a, b string) bool {
	ka, kb := nameKey(a), nameKey(b)
	if strings.Trim(ka, "/") == "" || strings.Trim(kb, "/") == "" {
		return false
	}
	if ka == kb {
		return true
	}
	if !strings.Contains(ka, "/") && !strings.Contains(kb, "/") {
		return false
	}
	for _, ha := range strings.Split(ka, "/") {
		if ha == "" {
			continue
		}
		for _, hb := range strings.Split(kb, "/") {
			if ha == hb {
				return true
			}
		}
	}
	return false
}

// nameKey folds a name for comparison: lower case, no accents, and no
// apostrophes, hyphens or blanks.
func nameKey(s string) string {
	s = foldAccents(s)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r), r == '\u200b', r == '\ufeff':
		case r == '\'', r == '’', r == '‘', r == '`', r == '´', r == 'ʼ':
		case r == '-', r == '‐', r == '‑', r == '–', r == '—':
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// foldAccents removes diacritics ("è" -> "e", "ü" -> "u"). ASCII strings
// are returned as they are.
func foldAccents(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
