package pki

import (
	"regexp"
	"testing"
)

func TestHexPasswordsAreUniformAndBounded(t *testing.T) {
	tests := []struct {
		n, wantLen int
		wantErr    bool
	}{
		{0, DefaultPasswordLength, false}, // the default length, in hex here
		{8, 8, false},
		{9, 9, false},
		{16, 16, false},
		{64, 64, false},
		{7, 0, true},
		{-1, 0, true},
		{65, 0, true},
	}
	for _, tc := range tests {
		p, err := NewPassword(PasswordHex, tc.n)
		if tc.wantErr {
			if err == nil {
				t.Errorf("NewPassword(%d) = %q, want an error", tc.n, p)
			}
			continue
		}
		if err != nil {
			t.Fatalf("NewPassword(%d): %v", tc.n, err)
		}
		if len(p) != tc.wantLen || !regexp.MustCompile(`^[0-9A-F]+$`).MatchString(p) {
			t.Errorf("NewPassword(%d) = %q: want %d characters of 0-9A-F", tc.n, p, tc.wantLen)
		}
	}

	// 1,000 passwords: all different, and every hex digit in use at every
	// position (a stuck nibble would show).
	seen := map[string]bool{}
	var perPos [8]map[byte]bool
	for i := range perPos {
		perPos[i] = map[byte]bool{}
	}
	for i := 0; i < 1000; i++ {
		p, err := NewPassword(PasswordHex, 8)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("password %s drawn twice in %d", p, i)
		}
		seen[p] = true
		for j := 0; j < len(p); j++ {
			perPos[j][p[j]] = true
		}
	}
	for j, m := range perPos {
		if len(m) != 16 {
			t.Errorf("position %d used %d of 16 hex digits in 1,000 passwords", j, len(m))
		}
	}
}

// TestDefaultPasswordResistsAStolenFile: the default password holds at
// least 60 bits, drawn from every character of Crockford's base32 at every
// position; the 8-hex form of the seeds (32 bits) is an explicit choice.
func TestDefaultPasswordResistsAStolenFile(t *testing.T) {
	if bits, err := PasswordBits("", DefaultPasswordLength); err != nil || bits < 60 {
		t.Fatalf("default password: %.0f bits (%v), want at least 60", bits, err)
	}
	if bits, _ := PasswordBits(PasswordHex, 8); bits != 32 {
		t.Errorf("8 hex characters: %.0f bits, want 32", bits)
	}
	if _, err := NewPassword("rot13", 12); err == nil {
		t.Error("an unknown alphabet is accepted")
	}
	perPos := make([]map[byte]bool, DefaultPasswordLength)
	for i := range perPos {
		perPos[i] = map[byte]bool{}
	}
	for i := 0; i < 2000; i++ {
		p, err := NewPassword("", 0)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{12}$`).MatchString(p) {
			t.Fatalf("password %q is not 12 characters of Crockford's base32", p)
		}
		for j := 0; j < len(p); j++ {
			perPos[j][p[j]] = true
		}
	}
	for j, m := range perPos {
		if len(m) != 32 {
			t.Errorf("position %d used %d of 32 characters in 2,000 passwords", j, len(m))
		}
	}
}
