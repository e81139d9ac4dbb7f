package sftpdrop

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"anprsec/drop"
	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/internal/testnet"
)

// inProcess starts a jailed in-process server (sftptest) and returns a
// Config that dials it with base path /base (created on disk) and that folder.
func inProcess(t *testing.T, opts ...sftptest.Option) (Config, *sftptest.Server, string) {
	t.Helper()
	cl := sftptest.NewClient(t)
	srv := sftptest.Start(t, cl.PublicKey(), opts...)
	disk := filepath.Join(srv.Dir, "base")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Address:    srv.Addr,
		User:       srv.User,
		KeyFile:    cl.KeyFile,
		KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKey),
		BasePath:   "/base",
		Timeout:    5 * time.Second,
	}
	return cfg, srv, disk
}

func dial(t *testing.T, cfg Config) *Drop {
	t.Helper()
	d, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestInProcessRoundTrip(t *testing.T) {
	cfg, _, disk := inProcess(t)
	d := dial(t, cfg)
	if !d.posix {
		t.Fatal("the pkg/sftp request server advertises posix-rename@openssh.com")
	}
	if got, want := d.String(), "sftp://anpr@"+cfg.Address+"/base"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	runRoundTrip(t, d, disk)
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.List(context.Background(), "."); err == nil {
		t.Error("List after Close succeeded")
	}
}

func TestString(t *testing.T) {
	for base, want := range map[string]string{
		"/srv/drop": "sftp://u@h:22/srv/drop",
		"drop":      "sftp://u@h:22/~/drop",
		"":          "sftp://u@h:22/~",
	} {
		d := &Drop{cfg: Config{User: "u", Address: "h:22", BasePath: base}}
		if got := d.String(); got != want {
			t.Errorf("base %q: %q, want %q", base, got, want)
		}
	}
}

// Without posix-rename, Write and Rename still replace their target
// (remove + rename); plain SFTP rename onto an existing file fails.
func TestRenameFallbackWithoutPosixRename(t *testing.T) {
	cfg, _, _ := inProcess(t)
	d := dial(t, cfg)
	ctx := context.Background()

	mustWrite(t, d, "a.csv", []byte("A"))
	mustWrite(t, d, "b.csv", []byte("B"))
	if err := d.client.Rename("/base/a.csv", "/base/b.csv"); err == nil {
		t.Fatal("plain SFTP rename onto an existing file succeeded: the fallback test proves nothing")
	}

	d.posix = false
	mustWrite(t, d, "b.csv", []byte("B2"))
	if got := readAll(t, d, "b.csv"); string(got) != "B2" {
		t.Fatalf("got %q", got)
	}
	if err := d.Rename(ctx, "a.csv", "b.csv"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, "b.csv"); string(got) != "A" {
		t.Fatalf("got %q", got)
	}
}

// truncatedReader serves a file as if it ended at n bytes.
type truncatedReader struct {
	io.ReaderAt
	n int64
}

func (r truncatedReader) ReadAt(b []byte, off int64) (int, error) {
	if off >= r.n {
		return 0, io.EOF
	}
	if int64(len(b)) > r.n-off {
		b = b[:r.n-off]
	}
	return r.ReaderAt.ReadAt(b, off)
}

func (r truncatedReader) Close() error {
	if c, ok := r.ReaderAt.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func TestOpenDetectsShortFile(t *testing.T) {
	cfg, _, _ := inProcess(t, sftptest.WithReadHook(func(r io.ReaderAt) io.ReaderAt { return truncatedReader{r, 40_000} }))
	d := dial(t, cfg)
	mustWrite(t, d, "census/w.xlsx", randomBytes(t, 100_000))
	rc, err := d.Open(context.Background(), "census/w.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "census/w.xlsx") {
		t.Fatalf("ReadAll = %d bytes, %v; want io.ErrUnexpectedEOF naming the file", len(b), err)
	}
	if len(b) != 40_000 {
		t.Errorf("read %d bytes", len(b))
	}
}

func TestHostKeyChecks(t *testing.T) {
	cfg, srv, _ := inProcess(t)
	other := sftptest.NewKey(t).PublicKey()
	dir := t.TempDir()
	tests := []struct {
		name       string
		knownHosts string
		want       error
		msg        []string
	}{
		{"mismatch", sftptest.WriteKnownHosts(t, filepath.Join(dir, "mismatch"), srv.Addr, other), ErrHostKeyMismatch,
			[]string{"la chiave del server sftp " + srv.Addr + " non corrisponde a known_hosts " + filepath.Join(dir, "mismatch") +
				" (possibile man-in-the-middle; aggiornare known_hosts se la chiave del server è davvero cambiata)", "ssh-ed25519 SHA256:"}},
		{"unknown host", sftptest.WriteKnownHosts(t, filepath.Join(dir, "unknown"), "127.0.0.1:1", srv.HostKey), ErrHostUnknown,
			[]string{"il server sftp " + srv.Addr + " non è in known_hosts " + filepath.Join(dir, "unknown")}},
		{"revoked", func() string {
			f := filepath.Join(dir, "revoked")
			line := "@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey)))
			if err := os.WriteFile(f, []byte(line+"\n"+knownhosts.Line([]string{srv.Addr}, srv.HostKey)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return f
		}(), ErrHostKeyRevoked, []string{"@revoked"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.KnownHosts = tc.knownHosts
			d, err := Dial(context.Background(), c)
			if err == nil {
				d.Close()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q\nlacks %q", err, m)
				}
			}
		})
	}
	t.Run("missing known_hosts", func(t *testing.T) {
		c := cfg
		c.KnownHosts = filepath.Join(dir, "none")
		if _, err := Dial(context.Background(), c); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
		c.KnownHosts = ""
		if _, err := Dial(context.Background(), c); err == nil || !strings.Contains(err.Error(), "known_hosts") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClientKeyChecks(t *testing.T) {
	cfg, _, _ := inProcess(t)
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		f := sftptest.NewKey(t).WritePrivate(t, filepath.Join(dir, "key"+mode.String()), mode)
		c := cfg
		c.KeyFile = f
		_, err := Dial(context.Background(), c)
		if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), f) {
			t.Errorf("mode %04o: err = %v, want ErrKeyFileMode naming %s", mode, err, f)
		}
	}
	t.Run("key not authorized", func(t *testing.T) {
		c := cfg
		c.KeyFile = sftptest.NewKey(t).WritePrivate(t, filepath.Join(dir, "stranger"), 0o600)
		_, err := Dial(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), `accesso come "anpr" con la chiave `+c.KeyFile+" rifiutato") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("passphrase", func(t *testing.T) {
		// testdata/encrypted_ed25519: a throwaway key made with
		// ssh-keygen -N not-a-secret (generating one here costs a second of bcrypt).
		b, err := os.ReadFile("testdata/encrypted_ed25519")
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "enc")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.KeyFile = f
		if _, err := Dial(context.Background(), c); err == nil || !strings.Contains(err.Error(), "passphrase") {
			t.Fatalf("err = %v", err)
		}
	})
}

// --- stalls --------------------------------------------------------------------

const stallTimeout = time.Second

// within runs fn and fails the test unless it returns an error in about
// one to two stallTimeout.
func within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	start := time.Now()
	err := fn()
	el := time.Since(start)
	if err == nil {
		t.Fatalf("%s succeeded against a stalled server", what)
	}
	if el > 2*stallTimeout+stallTimeout/2 {
		t.Errorf("%s failed after %v, want within ~2×%v", what, el, stallTimeout)
	}
	t.Logf("%s failed after %v: %v", what, el.Round(time.Millisecond), err)
	return err
}

// blockAfter serves the first n bytes of a file, then hangs until release.
type blockAfter struct {
	io.ReaderAt
	io.WriterAt
	n       int64
	release <-chan struct{}
}

func (b blockAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > b.n {
		<-b.release
		return 0, errors.New("released")
	}
	return b.ReaderAt.ReadAt(p, off)
}

func (b blockAfter) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > b.n {
		<-b.release
		return 0, errors.New("released")
	}
	return b.WriterAt.WriteAt(p, off)
}

func (b blockAfter) Close() error {
	for _, x := range []any{b.ReaderAt, b.WriterAt} {
		if c, ok := x.(io.Closer); ok {
			return c.Close()
		}
	}
	return nil
}

func TestStalls(t *testing.T) {
	t.Run("server accepts TCP and never answers", func(t *testing.T) {
		t.Parallel()
		cl := sftptest.NewClient(t)
		addr := testnet.Blackhole(t)
		cfg := Config{
			Address: addr, User: "anpr", KeyFile: cl.KeyFile,
			KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "kh"), addr, sftptest.NewKey(t).PublicKey()),
			Timeout:    stallTimeout,
		}
		err := within(t, "Dial", func() error {
			d, err := Dial(context.Background(), cfg)
			if err == nil {
				d.Close()
			}
			return err
		})
		if !strings.Contains(err.Error(), "non ha risposto entro 1s") {
			t.Errorf("unclear error: %v", err)
		}
	})

	t.Run("download stalls mid-transfer while SSH keepalives are answered", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		var stall sync.Mutex
		stalling := false
		cfg, _, _ := inProcess(t, sftptest.WithReadHook(func(r io.ReaderAt) io.ReaderAt {
			stall.Lock()
			defer stall.Unlock()
			if !stalling {
				return r
			}
			return blockAfter{ReaderAt: r, n: 64 * 1024, release: release}
		}))
		t.Cleanup(func() { close(release) })
		cfg.Timeout, cfg.Keepalive = stallTimeout, 100*time.Millisecond
		d := dial(t, cfg)
		mustWrite(t, d, "big.xlsx", randomBytes(t, 300_000))
		stall.Lock()
		stalling = true
		stall.Unlock()
		rc, err := d.Open(context.Background(), "big.xlsx")
		if err != nil {
			t.Fatal(err)
		}
		err = within(t, "reading", func() error { _, err := io.ReadAll(rc); return err })
		if !strings.Contains(err.Error(), "server bloccato") {
			t.Errorf("unclear error: %v", err)
		}
		start := time.Now()
		d.Close()
		if el := time.Since(start); el > 2*stallTimeout {
			t.Errorf("Close took %v", el)
		}
	})

	t.Run("upload stalls mid-transfer", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		cfg, _, _ := inProcess(t, sftptest.WithWriteHook(func(w io.WriterAt) io.WriterAt {
			return blockAfter{WriterAt: w, n: 100 * 1024, release: release}
		}))
		t.Cleanup(func() { close(release) })
		cfg.Timeout = stallTimeout
		d := dial(t, cfg)
		within(t, "Write", func() error {
			return d.Write(context.Background(), "ordini/o.pgp", strings.NewReader(strings.Repeat("x", 1<<20)))
		})
		within(t, "next operation", func() error { _, err := d.List(context.Background(), "."); return err })
	})

	t.Run("network black hole during an operation", func(t *testing.T) {
		t.Parallel()
		cfg, srv, _ := inProcess(t)
		proxy := startFreezeProxy(t, srv.Addr)
		cfg.Address = proxy.Addr
		cfg.KnownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "kh"), proxy.Addr, srv.HostKey)
		cfg.Timeout = stallTimeout
		d := dial(t, cfg)
		mustWrite(t, d, "a.csv", []byte("a"))
		proxy.Freeze()
		err := within(t, "List", func() error { _, err := d.List(context.Background(), "."); return err })
		if !strings.Contains(err.Error(), "server bloccato") {
			t.Errorf("unclear error: %v", err)
		}
		start := time.Now()
		d.Close()
		if el := time.Since(start); el > 2*stallTimeout {
			t.Errorf("Close took %v", el)
		}
	})

	t.Run("keepalive notices a black hole on an idle connection", func(t *testing.T) {
		t.Parallel()
		cfg, srv, _ := inProcess(t)
		proxy := startFreezeProxy(t, srv.Addr)
		cfg.Address = proxy.Addr
		cfg.KnownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "kh"), proxy.Addr, srv.HostKey)
		cfg.Timeout, cfg.Keepalive = stallTimeout, 100*time.Millisecond
		d := dial(t, cfg)
		mustWrite(t, d, "a.csv", []byte("a"))
		proxy.Freeze()
		// No operation is in flight: only an unanswered keepalive can
		// close the connection.
		closed := make(chan struct{})
		go func() { d.ssh.Wait(); close(closed) }()
		start := time.Now()
		select {
		case <-closed:
			t.Logf("keepalive closed the connection after %v", time.Since(start).Round(time.Millisecond))
		case <-time.After(cfg.Keepalive + 2*stallTimeout + stallTimeout/2):
			t.Fatal("the connection is still open through a black hole")
		}
		if _, err := d.Stat(context.Background(), "a.csv"); err == nil {
			t.Fatal("Stat succeeded through a black hole")
		}
	})

	t.Run("an idle connection without keepalive traffic stays usable", func(t *testing.T) {
		t.Parallel()
		cfg, _, _ := inProcess(t)
		cfg.Timeout, cfg.Keepalive = stallTimeout, -1
		d := dial(t, cfg)
		mustWrite(t, d, "a.csv", []byte("a"))
		time.Sleep(2*cfg.Timeout + cfg.Timeout/4) // no operation: no read deadline
		if got := readAll(t, d, "a.csv"); string(got) != "a" {
			t.Fatalf("got %q", got)
		}
	})
}

var _ drop.Drop = (*Drop)(nil)
