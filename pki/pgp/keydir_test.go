package pgp

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKeyDir: the folder read once answers like KeyForEmail.
func TestKeyDir(t *testing.T) {
	dir := t.TempDir()
	for i, email := range []string{"a@example.it", "B@Example.it", "b@example.it"} {
		pub, _, err := Generate("x", email)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, string(rune('0'+i))+".asc"), pub, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "junk.asc"), []byte("not a key"), 0o644)
	k, warnings, err := OpenKeyDir(dir)
	if err != nil || len(warnings) != 1 {
		t.Fatalf("open: %v, warnings %v", err, warnings)
	}
	for _, tc := range []struct {
		email string
		n     int
		err   bool
	}{{"a@example.it", 1, false}, {" A@EXAMPLE.IT ", 1, false}, {"b@example.it", 0, true}, {"c@example.it", 0, false}} {
		got, err := k.ForEmail(tc.email)
		old, _, oldErr := KeyForEmail(dir, tc.email)
		if len(got) != tc.n || (err != nil) != tc.err || len(old) != len(got) || (oldErr != nil) != (err != nil) {
			t.Errorf("%q: %d keys, %v; KeyForEmail %d keys, %v", tc.email, len(got), err, len(old), oldErr)
		}
	}
	if k, _, err := OpenKeyDir(filepath.Join(dir, "missing")); err != nil || k == nil {
		t.Errorf("missing folder: %v", err)
	}
}
