package sftpdrop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/drop"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t testing.TB, d drop.Drop, name string) []byte {
	t.Helper()
	rc, err := d.Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("closing %s: %v", name, err)
	}
	return b
}

func mustWrite(t testing.TB, d drop.Drop, name string, content []byte) {
	t.Helper()
	if err := d.Write(context.Background(), name, bytes.NewReader(content)); err != nil {
		t.Fatalf("Write(%s): %v", name, err)
	}
}

func names(es []drop.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

// failingReader yields some data, then an error.
type failingReader struct{ n int }

func (r *failingReader) Read(b []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("source broke")
	}
	if len(b) > r.n {
		b = b[:r.n]
	}
	for i := range b {
		b[i] = 'x'
	}
	r.n -= len(b)
	return len(b), nil
}

// runRoundTrip runs the drop.Drop contract against d, whose base path is
// the folder disk on this machine. It compares with drop.Local on the same
// folder where both can be asked.
func runRoundTrip(t *testing.T, d drop.Drop, disk string) {
	ctx := context.Background()
	local, err := drop.NewLocal(disk)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"write then list, stat, open", func(t *testing.T) {
			content := randomBytes(t, 100_000) // several 32 KiB packets
			mustWrite(t, d, "censimento/a.xlsx", content)
			if got := readAll(t, d, "censimento/a.xlsx"); !bytes.Equal(got, content) {
				t.Fatalf("content differs: got %d bytes, want %d", len(got), len(content))
			}
			e, err := d.Stat(ctx, "censimento/a.xlsx")
			if err != nil {
				t.Fatal(err)
			}
			if e.Name != "a.xlsx" || e.Size != int64(len(content)) || !e.Regular || e.Dir {
				t.Fatalf("Stat = %+v", e)
			}
			if time.Since(e.ModTime) > time.Hour || time.Until(e.ModTime) > time.Hour {
				t.Errorf("ModTime %v is not now", e.ModTime)
			}
			es, err := d.List(ctx, "censimento")
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 || es[0].Name != "a.xlsx" || es[0].Size != int64(len(content)) || !es[0].Regular {
				t.Fatalf("List = %+v (no temporary file may remain)", es)
			}
			top, err := d.List(ctx, ".")
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, e := range top {
				if e.Name == "censimento" {
					found = e.Dir && !e.Regular
				}
			}
			if !found {
				t.Fatalf("List(.) = %+v: no folder censimento", top)
			}
			onDisk, err := os.ReadFile(filepath.Join(disk, "censimento", "a.xlsx"))
			if err != nil || !bytes.Equal(onDisk, content) {
				t.Fatalf("file on the server's disk: %v", err)
			}
		}},
		{"1 MiB round trip is not truncated", func(t *testing.T) {
			content := randomBytes(t, 1<<20+17)
			mustWrite(t, d, "big/ordine.pgp", content)
			got := readAll(t, d, "big/ordine.pgp")
			if sha256.Sum256(got) != sha256.Sum256(content) {
				t.Fatalf("got %d bytes, want %d, hashes differ", len(got), len(content))
			}
		}},
		{"empty file", func(t *testing.T) {
			mustWrite(t, d, "empty/vuoto.csv", nil)
			if got := readAll(t, d, "empty/vuoto.csv"); len(got) != 0 {
				t.Fatalf("got %d bytes", len(got))
			}
			if e, err := d.Stat(ctx, "empty/vuoto.csv"); err != nil || e.Size != 0 || !e.Regular {
				t.Fatalf("Stat = %+v, %v", e, err)
			}
		}},
		{"write replaces an existing file", func(t *testing.T) {
			mustWrite(t, d, "replace/x.csv", []byte("old content, longer than the new one"))
			mustWrite(t, d, "replace/x.csv", []byte("new"))
			if got := readAll(t, d, "replace/x.csv"); string(got) != "new" {
				t.Fatalf("got %q", got)
			}
			es, err := d.List(ctx, "replace")
			if err != nil || len(es) != 1 {
				t.Fatalf("List = %v, %v", names(es), err)
			}
		}},
		{"rename replaces the target and makes its parents", func(t *testing.T) {
			mustWrite(t, d, "ren/in/a.csv", []byte("A"))
			mustWrite(t, d, "ren/out/sub/a.csv", []byte("old B"))
			if err := d.Rename(ctx, "ren/in/a.csv", "ren/out/sub/a.csv"); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, d, "ren/out/sub/a.csv"); string(got) != "A" {
				t.Fatalf("got %q", got)
			}
			if _, err := d.Stat(ctx, "ren/in/a.csv"); !errors.Is(err, drop.ErrNotExist) {
				t.Fatalf("source still there: %v", err)
			}
			if err := d.Rename(ctx, "ren/out/sub/a.csv", "ren/new/deep/elaborati/a.csv"); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, d, "ren/new/deep/elaborati/a.csv"); string(got) != "A" {
				t.Fatalf("got %q", got)
			}
			if err := d.Rename(ctx, "ren/missing.csv", "ren/x.csv"); !errors.Is(err, drop.ErrNotExist) {
				t.Fatalf("rename of a missing file: %v", err)
			}
		}},
		{"list of a missing folder is empty", func(t *testing.T) {
			es, err := d.List(ctx, "comuni/058091/richieste")
			if err != nil || len(es) != 0 {
				t.Fatalf("List = %v, %v", es, err)
			}
		}},
		{"missing files", func(t *testing.T) {
			if _, err := d.Stat(ctx, "nope.csv"); !errors.Is(err, drop.ErrNotExist) {
				t.Errorf("Stat: %v", err)
			}
			if _, err := d.Open(ctx, "nope.csv"); !errors.Is(err, drop.ErrNotExist) {
				t.Errorf("Open: %v", err)
			}
			if err := d.Remove(ctx, "nope.csv"); !errors.Is(err, drop.ErrNotExist) {
				t.Errorf("Remove: %v", err)
			}
		}},
		{"remove", func(t *testing.T) {
			mustWrite(t, d, "rm/a.csv", []byte("a"))
			if err := d.Remove(ctx, "rm/a.csv"); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Stat(ctx, "rm/a.csv"); !errors.Is(err, drop.ErrNotExist) {
				t.Fatalf("still there: %v", err)
			}
		}},
		{"symlinks are listed as not regular and not opened", func(t *testing.T) {
			mustWrite(t, d, "sym/real.csv", []byte("real"))
			if err := os.Symlink("real.csv", filepath.Join(disk, "sym", "link.csv")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/passwd", filepath.Join(disk, "sym", "out.csv")); err != nil {
				t.Fatal(err)
			}
			es, err := d.List(ctx, "sym")
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(names(es), ","); got != "link.csv,out.csv,real.csv" {
				t.Fatalf("List = %s", got)
			}
			for _, e := range es {
				if want := e.Name == "real.csv"; e.Regular != want {
					t.Errorf("%s: Regular = %v", e.Name, e.Regular)
				}
			}
			for _, n := range []string{"sym/link.csv", "sym/out.csv"} {
				e, err := d.Stat(ctx, n)
				if err != nil || e.Regular {
					t.Errorf("Stat(%s) = %+v, %v", n, e, err)
				}
				if rc, err := d.Open(ctx, n); err == nil || !strings.Contains(err.Error(), "non è un file regolare") {
					if rc != nil {
						rc.Close()
					}
					t.Errorf("Open(%s) = %v, want refused", n, err)
				}
			}
		}},
		{"unsafe names are refused", func(t *testing.T) {
			for _, n := range []string{"../x", "/etc/passwd", "a/../../x", `a\b`, "a\x00b"} {
				if _, err := d.List(ctx, n); !errors.Is(err, drop.ErrUnsafePath) {
					t.Errorf("List(%q): %v", n, err)
				}
				if _, err := d.Stat(ctx, n); !errors.Is(err, drop.ErrUnsafePath) {
					t.Errorf("Stat(%q): %v", n, err)
				}
				if _, err := d.Open(ctx, n); !errors.Is(err, drop.ErrUnsafePath) {
					t.Errorf("Open(%q): %v", n, err)
				}
				if err := d.Write(ctx, n, strings.NewReader("x")); !errors.Is(err, drop.ErrUnsafePath) {
					t.Errorf("Write(%q): %v", n, err)
				}
				if err := d.Rename(ctx, "ok.csv", n); !errors.Is(err, drop.ErrUnsafePath) {
					t.Errorf("Rename(ok, %q): %v", n, err)
				}
				if err := d.Rename(ctx, n, "ok.csv"); !errors.Is(err, drop.ErrUnsafePath) {
					t.Errorf("Rename(%q, ok): %v", n, err)
				}
				if err := d.Remove(ctx, n); !errors.Is(err, drop.ErrUnsafePath) {
					t.Errorf("Remove(%q): %v", n, err)
				}
			}
		}},
		{"a failed write leaves nothing behind", func(t *testing.T) {
			mustWrite(t, d, "fail/x.csv", []byte("kept"))
			err := d.Write(ctx, "fail/x.csv", &failingReader{n: 70_000})
			if err == nil || !strings.Contains(err.Error(), "source broke") {
				t.Fatalf("Write = %v", err)
			}
			es, err := d.List(ctx, "fail")
			if err != nil || strings.Join(names(es), ",") != "x.csv" {
				t.Fatalf("List = %v, %v", names(es), err)
			}
			if got := readAll(t, d, "fail/x.csv"); string(got) != "kept" {
				t.Fatalf("got %q", got)
			}
		}},
		{"cancelled context", func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := d.List(cctx, "."); !errors.Is(err, context.Canceled) {
				t.Errorf("List: %v", err)
			}
			if err := d.Write(cctx, "cancel/x.csv", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
				t.Errorf("Write: %v", err)
			}
		}},
		{"same listing as the local drop", func(t *testing.T) {
			mustWrite(t, d, "cmp/b.csv", []byte("bb"))
			mustWrite(t, d, "cmp/a.xlsx", []byte("a"))
			mustWrite(t, d, "cmp/elaborati/c.csv", []byte("ccc"))
			if err := os.Symlink("a.xlsx", filepath.Join(disk, "cmp", "l")); err != nil {
				t.Fatal(err)
			}
			for _, dir := range []string{"cmp", "cmp/elaborati", "cmp/missing"} {
				want, err := local.List(ctx, dir)
				if err != nil {
					t.Fatal(err)
				}
				got, err := d.List(ctx, dir)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("List(%s): sftp %v, local %v", dir, names(got), names(want))
				}
				for i := range got {
					g, w := got[i], want[i]
					if g.Name != w.Name || g.Dir != w.Dir || g.Regular != w.Regular || (!g.Dir && g.Size != w.Size) ||
						g.ModTime.Unix() != w.ModTime.Unix() {
						t.Errorf("List(%s)[%d]: sftp %+v, local %+v", dir, i, g, w)
					}
				}
			}
			for _, n := range []string{"cmp/a.xlsx", "cmp/l"} {
				g, gerr := d.Stat(ctx, n)
				w, werr := local.Stat(ctx, n)
				if gerr != nil || werr != nil || g.Name != w.Name || g.Size != w.Size || g.Regular != w.Regular {
					t.Errorf("Stat(%s): sftp %+v %v, local %+v %v", n, g, gerr, w, werr)
				}
			}
			fi, err := os.Stat(filepath.Join(disk, "cmp", "a.xlsx"))
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode().Perm(); m&0o007 != 0 {
				t.Errorf("uploaded file has mode %04o, want no access for others", m)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}
