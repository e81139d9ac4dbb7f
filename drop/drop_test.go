package drop

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"censimento/a.xlsx", "censimento/a.xlsx", true},
		{"censimento//a.xlsx", "censimento/a.xlsx", true},
		{"./a", "a", true},
		{"", ".", true},
		{"../a", "", false},
		{"a/../../b", "", false},
		{"a/..", "", false},
		{"/etc/passwd", "", false},
		{`a\b`, "", false},
		{"a\x00b", "", false},
		{"a\nb.xlsx", "", false},
	} {
		got, err := Clean(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Clean(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafePath) {
			t.Errorf("Clean(%q) error %v is not ErrUnsafePath", tc.in, err)
		}
	}
}

func TestLocal(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, "a/b/c.txt", strings.NewReader("uno")); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, "a/b/c.txt", strings.NewReader("due")); err != nil { // replaces
		t.Fatal(err)
	}
	rc, err := d.Open(ctx, "a/b/c.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "due" {
		t.Errorf("content = %q", b)
	}
	es, err := d.List(ctx, "a/b")
	if err != nil || len(es) != 1 || es[0].Name != "c.txt" || !es[0].Regular || es[0].Size != 3 {
		t.Errorf("List = %+v, %v (no temporary file may be left)", es, err)
	}
	if es, err := d.List(ctx, "missing"); err != nil || len(es) != 0 {
		t.Errorf("List(missing) = %v, %v", es, err)
	}
	if err := d.Rename(ctx, "a/b/c.txt", "x/y.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "x/y.txt"); err != nil {
		t.Error(err)
	}
	// A symlink inside the drop is listed as not regular and never opened.
	os.Symlink("/etc/passwd", filepath.Join(root, "x", "link"))
	if e, err := d.Stat(ctx, "x/link"); err != nil || e.Regular {
		t.Errorf("Stat(link) = %+v, %v", e, err)
	}
	if _, err := d.Open(ctx, "x/link"); err == nil {
		t.Error("opened a symlink")
	}
	for _, bad := range []string{"../x", "/etc/passwd"} {
		if _, err := d.Open(ctx, bad); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("Open(%q) = %v", bad, err)
		}
		if err := d.Write(ctx, bad, strings.NewReader("x")); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("Write(%q) = %v", bad, err)
		}
	}
}

// List describes symlinks themselves, never their targets: a link to a
// big regular file outside the drop is listed as not regular, with the
// link's own size, and a link to a folder is not a folder.
func TestLocalListDoesNotFollowSymlinks(t *testing.T) {
	ctx := context.Background()
	root, outside := t.TempDir(), t.TempDir()
	big := filepath.Join(outside, "big.csv")
	os.WriteFile(big, []byte(strings.Repeat("x", 100_000)), 0o644)
	os.Mkdir(filepath.Join(root, "in"), 0o755)
	os.Symlink(big, filepath.Join(root, "in", "file.csv"))
	os.Symlink(outside, filepath.Join(root, "in", "dir"))
	d := &Local{Root: root}
	es, err := d.List(ctx, "in")
	if err != nil || len(es) != 2 {
		t.Fatalf("List = %+v, %v", es, err)
	}
	for _, e := range es {
		if e.Regular || e.Dir || e.Size == 100_000 {
			t.Errorf("%s listed as %+v: the symlink was followed", e.Name, e)
		}
	}
	// Nor does any operation go through a symlinked folder that leads
	// outside the drop (a party turning its input folder into a link).
	if _, err := d.Open(ctx, "in/dir/big.csv"); err == nil {
		t.Error("opened a file through a symlinked folder outside the drop")
	}
	if es, err := d.List(ctx, "in/dir"); err == nil || len(es) > 0 {
		t.Errorf("listed a symlinked folder outside the drop: %v, %v", es, err)
	}
	if err := d.Rename(ctx, "in/dir/big.csv", "preso.csv"); err == nil {
		t.Error("moved a file from outside the drop")
	}
	if err := d.Write(ctx, "in/dir/nuovo.csv", strings.NewReader("x")); err == nil {
		t.Error("wrote through a symlinked folder outside the drop")
	}
	if _, err := d.Stat(ctx, "in/dir/big.csv"); err == nil {
		t.Error("stat through a symlinked folder outside the drop")
	}
	if des, _ := os.ReadDir(outside); len(des) != 1 {
		t.Errorf("the folder outside holds %d entries", len(des))
	}
}

// A write or a move makes the folders it needs; a move of a file that is
// not there fails as not existing, into a folder that exists or not.
func TestLocalMakesFoldersOnlyWhenMissing(t *testing.T) {
	ctx := context.Background()
	d, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"in/esiti/a.csv", "in/esiti/b.csv"} { // missing, then there
		if err := d.Write(ctx, p, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, to := range []string{"in/elaborati/a.csv", "in/esiti/c.csv"} {
		if err := d.Rename(ctx, "in/nessuno.csv", to); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Rename of a missing file to %s = %v, want not existing", to, err)
		}
	}
	if err := d.Rename(ctx, "in/esiti/a.csv", "in/elaborati/a.csv"); err != nil {
		t.Fatal(err)
	}
	if err := d.Rename(ctx, "in/esiti/b.csv", "in/elaborati/b.csv"); err != nil {
		t.Fatal(err)
	}
	if es, err := d.List(ctx, "in/elaborati"); err != nil || len(es) != 2 {
		t.Errorf("elaborati = %+v, %v", es, err)
	}
}
