package sftpdrop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"anprsec/drop/sftpdrop/sftptest"
)

// startOpenSSH starts a real sshd authorizing clientKey, or skips the test
// when OpenSSH is not installed.
func startOpenSSH(t *testing.T, clientKey ssh.PublicKey) *sftptest.OpenSSH {
	t.Helper()
	return sftptest.StartOpenSSH(t, clientKey)
}

func TestOpenSSH(t *testing.T) {
	cl := sftptest.NewClient(t)
	srv := startOpenSSH(t, cl.PublicKey())
	disk := filepath.Join(srv.SFTPRoot, "drop")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Address:    srv.Addr,
		User:       srv.User,
		KeyFile:    cl.KeyFile,
		KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKeys[0]), // Ed25519 only
		BasePath:   "drop",                                                                                       // relative to internal-sftp -d
		Timeout:    5 * time.Second,
	}
	d := dial(t, cfg)
	if !d.posix {
		t.Fatal("OpenSSH does not advertise posix-rename@openssh.com?")
	}
	if got, want := d.String(), "sftp://"+srv.User+"@"+srv.Addr+"/~/drop"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	t.Run("round trip", func(t *testing.T) { runRoundTrip(t, d, disk) })

	t.Run("posix-rename replaces an existing file; plain rename does not", func(t *testing.T) {
		ctx := context.Background()
		mustWrite(t, d, "pr/a.csv", []byte("A"))
		mustWrite(t, d, "pr/b.csv", []byte("B"))
		if err := d.client.Rename("drop/pr/a.csv", "drop/pr/b.csv"); err == nil {
			t.Error("OpenSSH's plain SFTP rename replaced an existing file")
		}
		if err := d.Rename(ctx, "pr/a.csv", "pr/b.csv"); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, d, "pr/b.csv"); string(got) != "A" {
			t.Fatalf("got %q", got)
		}
		es, err := d.List(ctx, "pr")
		if err != nil || len(es) != 1 {
			t.Fatalf("List = %v, %v", names(es), err)
		}
	})

	t.Run("known_hosts with only the ECDSA key", func(t *testing.T) {
		c := cfg
		c.KnownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "kh"), srv.Addr, srv.HostKeys[1])
		d2 := dial(t, c)
		if _, err := d2.Stat(context.Background(), "."); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("host key mismatch refused", func(t *testing.T) {
		c := cfg
		c.KnownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "kh"), srv.Addr, sftptest.NewKey(t).PublicKey())
		_, err := Dial(context.Background(), c)
		if !errors.Is(err, ErrHostKeyMismatch) || !strings.Contains(err.Error(), "possibile man-in-the-middle") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("unauthorized key refused", func(t *testing.T) {
		c := cfg
		c.KeyFile = sftptest.NewKey(t).WritePrivate(t, filepath.Join(t.TempDir(), "k"), 0o600)
		_, err := Dial(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("err = %v", err)
		}
	})

	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
