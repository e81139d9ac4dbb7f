package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFullDiskIsACleanJobError: the working directory on a small tmpfs,
// filled by a ballast file below min_free: the census job fails at once
// with a named error, reads nothing, applies nothing, and the binary does
// not crash; once the ballast is gone the same run completes, once
// (docs/architecture.md, full disk). Needs root for mount: skipped, with
// the reason, where mounting is not allowed.
func TestFullDiskIsACleanJobError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and mounts a tmpfs")
	}
	bin := binary(t)
	base := t.TempDir()
	gen := &workdir{t: t, bin: bin, dir: base}
	wbPath := filepath.Join(base, "small.xlsx")
	gen.run("gen", "censimento", "--comuni", "3", "--users", "30", "-o", wbPath)
	workbook, err := os.ReadFile(wbPath)
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(base, "disk")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=192m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): the full-disk test needs root", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	w := newWorkdir(t, bin, filepath.Join(mnt, "w"), workbook)
	// Fill the disk to below min_free (64 MiB by default).
	var fs syscall.Statfs_t
	if err := syscall.Statfs(mnt, &fs); err != nil {
		t.Fatal(err)
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, free-16<<20), 0o600); err != nil {
		t.Fatalf("ballast of %d bytes: %v", free-16<<20, err)
	}
	stdout, stderr, err := w.try(nil, "jobs", "run", "ingest-censimento")
	if err == nil {
		t.Fatalf("the census ran on a full disk:\n%s", stdout)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.Contains(stderr, "SIGBUS") || strings.Contains(stderr, "goroutine") {
		t.Fatalf("not a clean job error: %v\n%s", err, tail(stderr, 2000))
	}
	if !strings.Contains(stderr, "spazio su disco insufficiente") || !strings.Contains(stderr, "min_free") {
		t.Errorf("the error does not name the full disk:\n%s", tail(stderr, 2000))
	}
	if _, err := os.Stat(w.path("var/drop/censimento/big.xlsx")); err != nil {
		t.Errorf("the workbook moved although nothing was read: %v", err)
	}
	if got := w.ls("var/drop/censimento/esiti"); len(got) != 0 {
		t.Errorf("receipts written on a full disk: %v", got)
	}

	// Space freed: the run completes, once.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	stdout, _ = w.run("jobs", "run", "ingest-censimento")
	if !strings.Contains(stdout, "ingest-censimento: ok") || !strings.Contains(stdout, "files=1") {
		t.Errorf("after freeing space: %s", stdout)
	}
	stdout, _ = w.run("jobs", "run", "ingest-censimento")
	if strings.Contains(stdout, "files=1") {
		t.Errorf("the workbook was read twice: %s", stdout)
	}
	w.run("history", "verify")
}
