package drop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The Local tests run again with os.Root, as on a kernel without openat2:
// both ways keep every path beneath the drop root.
func TestLocalWithOSRootKeepsTheSameRules(t *testing.T) {
	beneathOff.Store(true)
	defer beneathOff.Store(false)
	t.Run("Local", TestLocal)
	t.Run("ListDoesNotFollowSymlinks", TestLocalListDoesNotFollowSymlinks)
	t.Run("MakesFoldersOnlyWhenMissing", TestLocalMakesFoldersOnlyWhenMissing)
	t.Run("PlantedTemporaryName", TestLocalWriteRemovesWhatIsPlantedAtItsTemporaryName)
	t.Run("FIFO", TestLocalOpenRefusesAFIFOWithoutBlocking)
	t.Run("SymlinkInside", TestLocalFollowsAFolderSymlinkThatStaysInside)
}

// On a kernel with openat2 a Local uses it: the os.Root path is the
// fallback, not the rule.
func TestLocalResolvesWithOpenat2WhenTheKernelHasIt(t *testing.T) {
	root := t.TempDir()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	probe, err := unix.Openat2(fd, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY, Resolve: beneathResolve})
	if err != nil {
		t.Skipf("this kernel has no usable openat2 (%v): Local uses os.Root", err)
	}
	unix.Close(probe)
	d := &Local{Root: root}
	if err := d.Write(context.Background(), "a/b.txt", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(context.Background(), "a/b.txt"); err != nil {
		t.Fatal(err)
	}
	if beneathOff.Load() {
		t.Fatal("Local turned openat2 off on a kernel that has it")
	}
}

// A symlink planted at a file's temporary name, pointing outside the
// drop, is removed, not written through.
func TestLocalWriteRemovesWhatIsPlantedAtItsTemporaryName(t *testing.T) {
	ctx := context.Background()
	root, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("intatto"), 0o644)
	os.MkdirAll(filepath.Join(root, "in", "esiti"), 0o755)
	if err := os.Symlink(victim, filepath.Join(root, filepath.FromSlash(TempName("in/esiti/r.csv")))); err != nil {
		t.Fatal(err)
	}
	d := &Local{Root: root}
	if err := d.Write(ctx, "in/esiti/r.csv", strings.NewReader("esito")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "intatto" {
		t.Errorf("the file outside became %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "in", "esiti", "r.csv")); string(b) != "esito" {
		t.Errorf("the receipt is %q", b)
	}
	if es, _ := d.List(ctx, "in/esiti"); len(es) != 1 {
		t.Errorf("esiti holds %+v, want the receipt alone", es)
	}
}

// A FIFO dropped in place of a file is refused at once: opening it
// must not wait for a writer.
func TestLocalOpenRefusesAFIFOWithoutBlocking(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "in"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(root, "in", "x.csv"), 0o644); err != nil {
		t.Skip("no FIFO here:", err)
	}
	d := &Local{Root: root}
	done := make(chan error, 1)
	go func() {
		f, err := d.Open(context.Background(), "in/x.csv")
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("opened a FIFO")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Open of a FIFO blocked")
	}
}

// A folder symlink that stays inside the drop is followed, as os.Root
// follows it: a comune's folder may be a link to another place of the
// drop.
func TestLocalFollowsAFolderSymlinkThatStaysInside(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "real", "richieste"), 0o755)
	os.WriteFile(filepath.Join(root, "real", "richieste", "a.csv"), []byte("x"), 0o644)
	if err := os.Symlink("real", filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}
	d := &Local{Root: root}
	e, err := d.Stat(ctx, "alias/richieste/a.csv")
	if err != nil || !e.Regular || e.Size != 1 {
		t.Errorf("Stat through an inside link = %+v, %v", e, err)
	}
	if err := d.Rename(ctx, "alias/richieste/a.csv", "alias/elaborati/a.csv"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "real", "elaborati", "a.csv")); err != nil {
		t.Error(err)
	}
}
