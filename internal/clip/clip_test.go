package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShortValueIsKeptWhole(t *testing.T) {
	for _, s := range []string{"", "RSSMRA68A01H501Y", strings.Repeat("x", 100)} {
		if got := String(s, 100); got != s {
			t.Errorf("String(%q) = %q", s, got)
		}
	}
}

func TestLongValueIsCutWithItsLengthAndHash(t *testing.T) {
	big := strings.Repeat("è", 1<<19) // 1 MiB of two-byte characters
	got := String(big, 200)
	if len(got) > 200 {
		t.Errorf("cut value is %d bytes, want at most 200", len(got))
	}
	if !utf8.ValidString(got) {
		t.Errorf("cut in the middle of a character: %q", got)
	}
	if !strings.HasPrefix(got, "èèè") || !strings.Contains(got, "tagliato: 1048576 byte, sha256 ") {
		t.Errorf("String = %q", got)
	}
	other := String(strings.Repeat("è", 1<<19-1)+"e", 200)
	if other == got {
		t.Error("two different values cut to the same text: the hash must tell them apart")
	}
	if again := String(big, 200); again != got {
		t.Error("the same value is cut differently twice")
	}
}

func TestTinyLimitStillBoundsTheValue(t *testing.T) {
	got := String(strings.Repeat("a", 10000), 5)
	if len(got) > Max(5) || !strings.Contains(got, "10000 byte") {
		t.Errorf("String = %q (%d bytes), want at most %d", got, len(got), Max(5))
	}
}
