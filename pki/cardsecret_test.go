package pki

import (
	"strings"
	"testing"
)

func TestCardSecrets(t *testing.T) {
	seen := map[string]bool{}
	digits := map[byte]int{}
	for i := 0; i < 2000; i++ {
		s, err := NewCardSecrets()
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, v, alphabet string
			n                 int
		}{
			{"PIN", s.PIN, "0123456789", CardPINLength},
			{"PUK", s.PUK, "0123456789", CardPUKLength},
			{"password", s.Password, PasswordAlphabet, CardPasswordLength},
		} {
			if len(tc.v) != tc.n || strings.Trim(tc.v, tc.alphabet) != "" {
				t.Fatalf("%s %q: want %d characters of %q", tc.name, tc.v, tc.n, tc.alphabet)
			}
		}
		for j := 0; j < len(s.PIN); j++ {
			digits[s.PIN[j]]++
		}
		first, second := s.Split()
		if first.PIN+second.PIN != s.PIN || first.PUK+second.PUK != s.PUK || first.Password+second.Password != s.Password {
			t.Fatalf("halves %+v %+v do not rebuild %+v", first, second, s)
		}
		if len(first.PIN) != 4 || len(second.Password) != 5 {
			t.Fatalf("halves %+v %+v", first, second)
		}
		back, err := UnmarshalCardHalf(second.Marshal())
		if err != nil || back != second {
			t.Fatalf("half round trip: %+v %v", back, err)
		}
		if seen[s.Password] {
			t.Fatalf("password %q drawn twice", s.Password)
		}
		seen[s.Password] = true
	}
	// 16,000 digits: each of the ten about 1,600 times.
	for d := byte('0'); d <= '9'; d++ {
		if digits[d] < 1300 || digits[d] > 1900 {
			t.Errorf("digit %c drawn %d times of 16,000", d, digits[d])
		}
	}
	for _, look := range "0O1lIi5S2Z8B6GuvUVo" {
		if strings.ContainsRune(PasswordAlphabet, look) {
			t.Errorf("the password alphabet has the look-alike %c", look)
		}
	}
	if _, err := UnmarshalCardHalf([]byte(`{"pin":"1234"}`)); err == nil {
		t.Error("an incomplete half was accepted")
	}
}

func TestCardPasswordsDrawEveryCharacterEquallyOften(t *testing.T) {
	// 41 characters do not divide 256: a byte taken modulo 41 would draw
	// the first 10 about 7/6 as often as the others.
	counts := map[byte]int{}
	for i := 0; i < 4000; i++ {
		s, err := NewCardSecrets()
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < len(s.Password); j++ {
			counts[s.Password[j]]++
		}
	}
	n := len(PasswordAlphabet)
	var head, tail float64
	for i := 0; i < n; i++ {
		c := counts[PasswordAlphabet[i]]
		if c == 0 {
			t.Errorf("%c never drawn", PasswordAlphabet[i])
		}
		if i < 256%n {
			head += float64(c) / float64(256%n)
		} else {
			tail += float64(c) / float64(n-256%n)
		}
	}
	if r := head / tail; r > 1.06 || r < 0.94 {
		t.Errorf("the first %d characters are drawn %.3f times as often as the others, want 1", 256%n, r)
	}
}
