package drop

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// alike runs f with openat2 and with os.Root, each on a fresh root made
// by setup, and wants the same outcome from both.
func alike(t *testing.T, setup func(root string), f func(d *Local) string) {
	t.Helper()
	var got [2]string
	for i, off := range []bool{false, true} {
		beneathOff.Store(off)
		root := t.TempDir()
		setup(root)
		got[i] = f(&Local{Root: root})
	}
	beneathOff.Store(false)
	if got[0] != got[1] {
		t.Errorf("openat2: %s\nos.Root: %s", got[0], got[1])
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, fs.ErrNotExist):
		return "missing"
	}
	return "error"
}

// An empty folder planted at a file's temporary name does not keep the
// file (a receipt, a bundle, the CRL) from being written.
func TestLocalWritesOverAnEmptyFolderAtItsTemporaryName(t *testing.T) {
	alike(t, func(root string) {
		os.MkdirAll(filepath.Join(root, "in", ".r.csv.tmp"), 0o755)
	}, func(d *Local) string {
		err := d.Write(context.Background(), "in/r.csv", strings.NewReader("x"))
		b, _ := os.ReadFile(filepath.Join(d.Root, "in", "r.csv"))
		return outcome(err) + " " + string(b)
	})
}

// Remove deletes a file or an empty folder.
func TestLocalRemovesAnEmptyFolder(t *testing.T) {
	alike(t, func(root string) { os.MkdirAll(filepath.Join(root, "in", "d"), 0o755) },
		func(d *Local) string { return outcome(d.Remove(context.Background(), "in/d")) })
}

// A move from a folder that does not exist fails as missing (and makes
// the destination folder, as the os.Root path does).
func TestLocalRenameFromAMissingFolderFailsAsMissing(t *testing.T) {
	alike(t, func(root string) {}, func(d *Local) string {
		err := d.Rename(context.Background(), "nope/a.csv", "dest/a.csv")
		_, serr := os.Stat(filepath.Join(d.Root, "dest"))
		return outcome(err) + " destination folder " + outcome(serr)
	})
}

// Every operation on a missing file, or in a missing folder, fails as
// missing; a missing folder lists empty.
func TestLocalReportsMissingFilesAlike(t *testing.T) {
	ctx := context.Background()
	alike(t, func(root string) { os.MkdirAll(filepath.Join(root, "in"), 0o755) }, func(d *Local) string {
		_, e1 := d.Stat(ctx, "in/x")
		_, e2 := d.Stat(ctx, "nope/x")
		_, e3 := d.Open(ctx, "in/x")
		_, e4 := d.Open(ctx, "nope/x")
		e5 := d.Remove(ctx, "in/x")
		e6 := d.Remove(ctx, "nope/x")
		e7 := d.Rename(ctx, "in/x", "in/y")
		es, e8 := d.List(ctx, "nope")
		return strings.Join([]string{outcome(e1), outcome(e2), outcome(e3), outcome(e4), outcome(e5), outcome(e6), outcome(e7), outcome(e8)}, ",") + map[bool]string{true: " nil", false: " entries"}[es == nil]
	})
}

// Symlinks resolve alike: an absolute one is refused even when it points
// inside, one climbing out is refused, one with ".." that stays inside is
// followed, and one at the last element is described, never opened.
func TestLocalResolvesSymlinksAlike(t *testing.T) {
	ctx := context.Background()
	alike(t, func(root string) {
		os.MkdirAll(filepath.Join(root, "real"), 0o755)
		os.WriteFile(filepath.Join(root, "real", "f"), []byte("x"), 0o644)
		os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "abs"))
		os.Symlink("../..", filepath.Join(root, "real", "up"))
		os.Symlink("f", filepath.Join(root, "real", "lf"))
		os.Symlink("real/../real", filepath.Join(root, "dd"))
	}, func(d *Local) string {
		_, e1 := d.Stat(ctx, "abs/f")
		_, e2 := d.Stat(ctx, "real/up/x")
		_, e3 := d.Open(ctx, "real/lf")
		e, e4 := d.Stat(ctx, "real/lf")
		_, e5 := d.Open(ctx, "dd/f")
		return strings.Join([]string{outcome(e1), outcome(e2), outcome(e3), outcome(e4), outcome(e5)}, ",") + map[bool]string{true: " link described", false: " link followed"}[!e.Regular]
	})
}

// The handle of the drop root, held for an operation on a top-level
// entry, is not inherited by a program started meanwhile.
func TestLocalRootHandleIsClosedOnExec(t *testing.T) {
	d := &Local{Root: t.TempDir()}
	fd, err := d.beneathDir(".")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("the root's handle has flags %#x (%v), want FD_CLOEXEC", fl, err)
	}
}

// No operation leaves a file descriptor open, whatever the drop holds:
// folders at temporary names, FIFOs, links out of the drop and at the
// last element, missing folders.
func TestLocalLeaksNoFileDescriptors(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "in", ".r.tmp", "full"), 0o755)
	os.MkdirAll(filepath.Join(root, "in", "d", "x"), 0o755)
	syscall.Mkfifo(filepath.Join(root, "in", "p"), 0o644)
	os.Symlink("/etc", filepath.Join(root, "esc"))
	os.Symlink("/etc/passwd", filepath.Join(root, "in", "lp"))
	d := &Local{Root: root}
	open := func() int { es, _ := os.ReadDir("/proc/self/fd"); return len(es) }
	before := open()
	for range 50 {
		d.Write(ctx, "in/r", strings.NewReader("x"))
		d.Write(ctx, "new/a/b", strings.NewReader("x"))
		d.Write(ctx, "esc/x", strings.NewReader("x"))
		d.Write(ctx, "in/d", strings.NewReader("x"))
		d.Stat(ctx, "esc/passwd")
		d.Stat(ctx, "in/p")
		if f, err := d.Open(ctx, "new/a/b"); err == nil {
			io.ReadAll(f)
			f.Close()
		}
		d.Open(ctx, "in/p")
		d.Open(ctx, "in/lp")
		d.Open(ctx, "esc/passwd")
		d.List(ctx, "in")
		d.List(ctx, "esc")
		d.List(ctx, "in/p")
		d.Rename(ctx, "nope/a", "z/a")
		d.Rename(ctx, "new/a/b", "esc/b")
		d.Rename(ctx, "in/lp", "in/lp2")
		d.Rename(ctx, "in/lp2", "in/lp")
		d.Remove(ctx, "in/d")
		d.Remove(ctx, "esc/passwd")
	}
	if after := open(); after != before {
		t.Errorf("open descriptors %d before, %d after", before, after)
	}
}
