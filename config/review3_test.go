package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReview3UnknownKeyMessageIsClean checks the message an operator gets
// for a mistyped key in a section that holds a sub-section (drop: sftp,
// mail: smtp).
//
// SPEC.md: "Config: `anprsec.yaml` in the working directory, or `--config
// PATH`, or `ANPRSEC_CONFIG`. Every key has a default"; ARCHITECTURE.md:
// "Errors say what was wrong with which file, row and column, in words an
// operator understands."
//
// The message must name the key and end with the hint, without the tail of
// a Go struct type (`"yaml:\"sftp\"" }`) that friendlyYAMLError's
// non-greedy `struct \{.*?\}` leaves behind when the type has a nested
// struct.
func TestReview3UnknownKeyMessageIsClean(t *testing.T) {
	for _, yml := range []string{
		"drop:\n  setle: 0s\n",
		"mail:\n  fromm: x@example.it\n",
	} {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p, true)
		if err == nil {
			t.Fatalf("Load(%q): no error", yml)
		}
		msg := err.Error()
		if !strings.HasSuffix(msg, "(see the commented default written by anprsec init)") ||
			strings.Contains(msg, `yaml:\"`) || strings.Contains(msg, "}") {
			t.Errorf("Load(%q) = %q: the operator sees leftovers of a Go struct type", yml, msg)
		}
	}
}
