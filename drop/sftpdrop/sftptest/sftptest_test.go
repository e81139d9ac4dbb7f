package sftptest_test

import (
	"errors"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"anprsec/drop/sftpdrop/sftptest"
)

// connect logs in to srv as user with key, checking the host key against
// the known_hosts file kh, and opens an SFTP client.
func connect(t *testing.T, srv *sftptest.Server, user string, key ssh.Signer, kh string) (*sftp.Client, error) {
	t.Helper()
	cb, err := knownhosts.New(kh)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}, HostKeyCallback: cb, Timeout: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	sc, err := sftp.NewClient(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(func() { sc.Close(); c.Close() })
	return sc, nil
}

func TestServer(t *testing.T) {
	cl := sftptest.NewClient(t)
	if fi, err := os.Stat(cl.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("client key file: %v, %v", fi, err)
	}
	srv := sftptest.Start(t, cl.PublicKey())
	if srv.User != sftptest.DefaultUser {
		t.Errorf("User = %q", srv.User)
	}
	kh := sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKey)
	c, err := connect(t, srv, srv.User, cl.Key.Signer, kh)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.HasExtension("posix-rename@openssh.com"); !ok {
		t.Error("no posix-rename@openssh.com")
	}

	t.Run("files land in the jail", func(t *testing.T) {
		if err := c.MkdirAll("/censimento/esiti"); err != nil {
			t.Fatal(err)
		}
		f, err := c.Create("/censimento/a.csv")
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("hello"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(srv.Dir, "censimento", "a.csv")); err != nil || string(b) != "hello" {
			t.Fatalf("on disk: %q, %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(srv.Dir, "censimento", "b.csv"), []byte("from disk"), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := c.Open("censimento/b.csv")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != "from disk" {
			t.Fatalf("read %q", b)
		}
	})

	t.Run("rename refuses a target, posix-rename replaces it", func(t *testing.T) {
		if err := c.Rename("/censimento/a.csv", "/censimento/b.csv"); err == nil {
			t.Fatal("plain rename replaced an existing file")
		}
		if err := c.PosixRename("/censimento/a.csv", "/censimento/b.csv"); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(srv.Dir, "censimento", "b.csv")); err != nil || string(b) != "hello" {
			t.Fatalf("on disk: %q, %v", b, err)
		}
	})

	t.Run("no way out of the jail", func(t *testing.T) {
		outside := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(srv.Dir, "link")); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Open("/link"); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			t.Fatalf("read %q through a symlink out of the jail", b)
		}
		rel, err := filepath.Rel(srv.Dir, outside)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := c.Open(filepath.ToSlash(rel)); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) == "secret" {
				t.Fatalf("read %s through %s", outside, rel)
			}
		}
		if fis, err := c.ReadDir("/../../.."); err != nil {
			t.Fatal(err)
		} else {
			for _, fi := range fis {
				if fi.Name() == "etc" {
					t.Fatal("/../../.. lists the real root")
				}
			}
		}
	})

	t.Run("only the client key as the user", func(t *testing.T) {
		if _, err := connect(t, srv, "root", cl.Key.Signer, kh); err == nil {
			t.Error("login as another user")
		}
		if _, err := connect(t, srv, srv.User, sftptest.NewKey(t).Signer, kh); err == nil {
			t.Error("login with another key")
		}
	})

	t.Run("close drops connections and refuses new ones", func(t *testing.T) {
		srv.Close()
		if _, err := c.Stat("/censimento"); err == nil {
			t.Error("the connection survived Close")
		}
		if c, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
			c.Close()
			t.Error("the port still accepts connections")
		}
		srv.Close() // idempotent; t.Cleanup calls it again
	})
}

func TestOptions(t *testing.T) {
	cl := sftptest.NewClient(t)
	var reads, writes int
	srv := sftptest.Start(t, cl.PublicKey(), sftptest.WithUser("comune"),
		sftptest.WithReadHook(func(r io.ReaderAt) io.ReaderAt { reads++; return r }),
		sftptest.WithWriteHook(func(w io.WriterAt) io.WriterAt { writes++; return w }))
	kh := sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "kh"), srv.Addr, srv.HostKey)
	if _, err := connect(t, srv, sftptest.DefaultUser, cl.Key.Signer, kh); err == nil {
		t.Error("login as the default user")
	}
	c, err := connect(t, srv, "comune", cl.Key.Signer, kh)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("x")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	f.Close()
	r, err := c.Open("x")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(r)
	r.Close()
	c.Close()
	srv.Close() // the hooks ran on the server's goroutines: wait for them
	if reads != 1 || writes != 1 {
		t.Errorf("hooks ran %d (read), %d (write) times, want 1 each", reads, writes)
	}
}

func TestWritePrivateMode(t *testing.T) {
	k := sftptest.NewKey(t)
	f := k.WritePrivate(t, filepath.Join(t.TempDir(), "k"), 0o644)
	fi, err := os.Stat(f)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%v, %v", fi, err)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil || string(s.PublicKey().Marshal()) != string(k.PublicKey().Marshal()) {
		t.Fatalf("the file does not hold the key: %v", err)
	}
}

// TestOnlyTests enforces the package doc: no non-test Go file of the module
// imports this package.
func TestOnlyTests(t *testing.T) {
	const self = "anprsec/drop/sftpdrop/sftptest"
	modRoot, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(modRoot, "go.mod")); err != nil || !strings.HasPrefix(string(b), "module anprsec\n") {
		t.Fatalf("module root not found at %s: %v", modRoot, err)
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(modRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != modRoot && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || filepath.Dir(p) == here {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return nil // not ours to judge
		}
		checked++
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == self {
				t.Errorf("%s imports %s, which is for tests only", p, self)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrPermission) {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d Go files checked under %s", checked, modRoot)
	}
}

// TestCut: an armed cut closes the connection in the middle of a download
// or an upload, once; a new connection then works.
func TestCut(t *testing.T) {
	cl := sftptest.NewClient(t)
	srv := sftptest.Start(t, cl.PublicKey())
	kh := sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "kh"), srv.Addr, srv.HostKey)
	content := strings.Repeat("0123456789", 50_000) // 500 kB
	if err := os.WriteFile(filepath.Join(srv.Dir, "big"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	c, err := connect(t, srv, srv.User, cl.Key.Signer, kh)
	if err != nil {
		t.Fatal(err)
	}
	srv.CutAfterSent(100_000)
	f, err := c.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err == nil || len(b) >= len(content) {
		t.Fatalf("download through a cut: %d bytes, %v", len(b), err)
	}
	if srv.Cuts() != 1 {
		t.Errorf("Cuts = %d", srv.Cuts())
	}

	c, err = connect(t, srv, srv.User, cl.Key.Signer, kh)
	if err != nil {
		t.Fatalf("connection after the cut: %v", err)
	}
	f, err = c.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != content {
		t.Fatalf("download after the cut: %d bytes, %v", len(b), err)
	}

	srv.CutAfterReceived(100_000)
	w, err := c.Create("up")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write([]byte(content))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		t.Fatal("upload through a cut succeeded")
	}
	if fi, err := os.Stat(filepath.Join(srv.Dir, "up")); err == nil && fi.Size() >= int64(len(content)) {
		t.Errorf("the server holds the whole upload (%d bytes)", fi.Size())
	}
	if srv.Cuts() != 2 {
		t.Errorf("Cuts = %d", srv.Cuts())
	}
}
