package sftpdrop

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// --- keys -------------------------------------------------------------------

// testKey is an ephemeral ed25519 key pair.
type testKey struct {
	priv   ed25519.PrivateKey
	signer ssh.Signer
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, signer: s}
}

// writePrivate writes the key in OpenSSH format with the given mode.
func (k testKey) writePrivate(t testing.TB, file string, mode os.FileMode) string {
	t.Helper()
	blk, err := ssh.MarshalPrivateKey(k.priv, "anprsec test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil { // umask
		t.Fatal(err)
	}
	return file
}

// writeKnownHosts writes a known_hosts file listing keys for addr.
func writeKnownHosts(t testing.TB, file, addr string, keys ...ssh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# anprsec test\n")
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{addr}, k) + "\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// --- jailed SFTP handlers ---------------------------------------------------

// jailFS serves SFTP requests from a folder through os.Root, so no path or
// symlink leads outside it. Rename refuses an existing target, as OpenSSH
// does; PosixRename replaces it.
type jailFS struct {
	root *os.Root

	// readHook, if set, wraps every file opened for reading.
	readHook func(io.ReaderAt) io.ReaderAt
	// writeHook, if set, wraps every file opened for writing.
	writeHook func(io.WriterAt) io.WriterAt
}

func (j *jailFS) handlers() sftp.Handlers {
	return sftp.Handlers{FileGet: j, FilePut: j, FileCmd: j, FileList: j}
}

// rel maps a request path (absolute, cleaned by the server) into the root.
func rel(p string) string {
	r := strings.TrimPrefix(path.Clean("/"+p), "/")
	if r == "" {
		return "."
	}
	return r
}

func (j *jailFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := j.root.Open(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	if j.readHook != nil {
		return j.readHook(f), nil
	}
	return f, nil
}

func (j *jailFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	pf := r.Pflags()
	flags := os.O_WRONLY
	if pf.Read {
		flags = os.O_RDWR
	}
	if pf.Creat {
		flags |= os.O_CREATE
	}
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	f, err := j.root.OpenFile(rel(r.Filepath), flags, 0o644)
	if err != nil {
		return nil, err
	}
	if j.writeHook != nil {
		return j.writeHook(f), nil
	}
	return f, nil
}

func (j *jailFS) Filecmd(r *sftp.Request) error {
	p := rel(r.Filepath)
	switch r.Method {
	case "Setstat":
		if r.AttrFlags().Permissions {
			return j.root.Chmod(p, r.Attributes().FileMode().Perm())
		}
		return nil
	case "Rename":
		if _, err := j.root.Lstat(rel(r.Target)); err == nil {
			return &os.PathError{Op: "rename", Path: r.Target, Err: syscall.EEXIST}
		}
		return j.root.Rename(p, rel(r.Target))
	case "Rmdir", "Remove":
		return j.root.Remove(p)
	case "Mkdir":
		return j.root.Mkdir(p, 0o755)
	case "Symlink":
		return j.root.Symlink(r.Filepath, rel(r.Target))
	}
	return sftp.ErrSSHFxOpUnsupported
}

func (j *jailFS) PosixRename(r *sftp.Request) error {
	return j.root.Rename(rel(r.Filepath), rel(r.Target))
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(ls []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[off:])
	if n < len(ls) {
		return n, io.EOF
	}
	return n, nil
}

func (j *jailFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := rel(r.Filepath)
	switch r.Method {
	case "List":
		f, err := j.root.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		des, err := f.ReadDir(-1)
		if err != nil {
			return nil, err
		}
		var out listerAt
		for _, de := range des {
			if fi, err := de.Info(); err == nil { // lstat
				out = append(out, fi)
			}
		}
		return out, nil
	case "Stat":
		fi, err := j.root.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

func (j *jailFS) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := j.root.Lstat(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return listerAt{fi}, nil
}

// --- in-process SSH server ---------------------------------------------------

// testServer is an SSH server on 127.0.0.1 serving the "sftp" subsystem
// from a jailed folder.
type testServer struct {
	Addr    string
	HostKey testKey
	Dir     string // jail folder on disk
	FS      *jailFS

	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// startServer starts a server accepting clientKey for user "anpr".
// configure, if not nil, may set hooks on the jail before serving.
func startServer(t testing.TB, clientKey ssh.PublicKey, configure func(*jailFS)) *testServer {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{HostKey: newTestKey(t), Dir: dir, FS: &jailFS{root: root}}
	if configure != nil {
		configure(s.FS)
	}
	conf := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "anpr" && bytes.Equal(key.Marshal(), clientKey.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	conf.AddHostKey(s.HostKey.signer)
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = s.ln.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serveConn(c, conf)
			}()
		}
	}()
	t.Cleanup(func() {
		s.ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		root.Close()
	})
	return s
}

func (s *testServer) serveConn(c net.Conn, conf *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, conf)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // answers keepalive@openssh.com (with "false")
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for req := range requests {
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				req.Reply(ok, nil)
				if ok {
					s.wg.Add(1)
					go func() {
						defer s.wg.Done()
						rs := sftp.NewRequestServer(ch, s.FS.handlers())
						rs.Serve()
						rs.Close()
						ch.Close()
					}()
				}
			}
		}()
	}
}

// --- a TCP proxy that can freeze ---------------------------------------------

// freezeProxy forwards TCP to target until Freeze; then it stops moving
// bytes in both directions without closing anything: a black hole.
type freezeProxy struct {
	Addr   string
	ln     net.Listener
	frozen chan struct{}
	once   sync.Once
	mu     sync.Mutex
	conns  []net.Conn
}

func startFreezeProxy(t testing.TB, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{Addr: ln.Addr().String(), ln: ln, frozen: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); p.pipe(u, c) }()
			go func() { defer wg.Done(); p.pipe(c, u) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.frozen:
				// swallow everything from now on
			default:
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// Freeze stops all traffic through the proxy.
func (p *freezeProxy) Freeze() { p.once.Do(func() { close(p.frozen) }) }

// --- helpers -------------------------------------------------------------------

// testClient is what a test needs to dial a server.
type testClient struct {
	Key     testKey
	KeyFile string
	Dir     string
}

func newTestClient(t testing.TB) testClient {
	t.Helper()
	dir := t.TempDir()
	k := newTestKey(t)
	return testClient{Key: k, KeyFile: k.writePrivate(t, filepath.Join(dir, "id_ed25519"), 0o600), Dir: dir}
}

func knownhostsLine(addr string, k ssh.PublicKey) string { return knownhosts.Line([]string{addr}, k) }
