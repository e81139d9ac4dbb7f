// Package sftptest runs an in-process SSH server that serves the "sftp"
// subsystem from a jailed temporary folder, and makes the keys and
// known_hosts files a client needs to reach it. It is for tests only:
// non-test code must never import it (it imports "testing", and its server
// has no limits, no logging and one authorized key); TestOnlyTests in this
// package fails when a non-test file of the module does.
//
// A typical test:
//
//	cl := sftptest.NewClient(t)
//	srv := sftptest.Start(t, cl.PublicKey())
//	kh := sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKey)
//	// dial srv.Addr as srv.User with cl.KeyFile and kh; the files are under srv.Dir
//
// The server listens on 127.0.0.1, accepts only public-key login as
// Server.User with the given key, and serves SFTP version 3 with the
// posix-rename@openssh.com extension. Requests are resolved inside
// Server.Dir through os.Root, so no path or symlink leads outside it; a
// plain rename refuses an existing target, as OpenSSH does, while
// posix-rename replaces it. Server.CutAfterSent and CutAfterReceived
// simulate a connection cut in the middle of a transfer. Everything stops
// in t.Cleanup.
package sftptest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// DefaultUser is the login name a Server accepts unless WithUser says otherwise.
const DefaultUser = "anpr"

// Server is a running in-process SSH/SFTP server.
type Server struct {
	// Addr is the listening address, 127.0.0.1:port.
	Addr string
	// Dir is the jail on disk: the SFTP path "/" is this folder. Tests may
	// create and inspect files here directly.
	Dir string
	// User is the only login name accepted.
	User string
	// HostKey is the server's ed25519 host key, for known_hosts.
	HostKey ssh.PublicKey

	fs   *jailFS
	root *os.Root
	ln   net.Listener

	mu     sync.Mutex
	closed bool
	conns  []net.Conn
	wg     sync.WaitGroup
	once   sync.Once

	cutMu   sync.Mutex
	cutSent int64 // bytes to client before the cut; < 0: not armed
	cutRecv int64 // bytes from client before the cut; < 0: not armed
	cuts    int
}

// Option configures Start.
type Option func(*options)

type options struct {
	user      string
	readHook  func(io.ReaderAt) io.ReaderAt
	writeHook func(io.WriterAt) io.WriterAt
}

// WithUser sets the accepted login name (default DefaultUser).
func WithUser(name string) Option { return func(o *options) { o.user = name } }

// WithReadHook wraps every file the server opens for reading, e.g. to
// truncate or stall downloads. The wrapper's Close, if any, is called when
// the client closes the file; it should close the wrapped file.
func WithReadHook(h func(io.ReaderAt) io.ReaderAt) Option {
	return func(o *options) { o.readHook = h }
}

// WithWriteHook wraps every file the server opens for writing, e.g. to
// stall uploads. The wrapper's Close, if any, should close the wrapped file.
func WithWriteHook(h func(io.WriterAt) io.WriterAt) Option {
	return func(o *options) { o.writeHook = h }
}

// Start starts a server on 127.0.0.1 with a new host key and an empty jail
// in t.TempDir(), accepting public-key login with clientKey only. It is
// closed in t.Cleanup, which waits for every connection to end.
func Start(t testing.TB, clientKey ssh.PublicKey, opts ...Option) *Server {
	t.Helper()
	o := options{user: DefaultUser}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	host := NewKey(t)
	s := &Server{
		Dir: dir, User: o.user, HostKey: host.PublicKey(), root: root,
		fs:      &jailFS{root: root, readHook: o.readHook, writeHook: o.writeHook},
		cutSent: -1, cutRecv: -1,
	}
	want := clientKey.Marshal()
	conf := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == o.user && bytes.Equal(key.Marshal(), want) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	conf.AddHostKey(host.Signer)
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		root.Close()
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
			c = &cutConn{Conn: c, s: s}
			if !s.track(c) {
				c.Close()
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serveConn(c, conf)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// track records c for Close; it reports false once the server is closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

// Close stops the server: it stops listening (the port then refuses
// connections), drops every connection and waits for its goroutines. It is
// called by t.Cleanup; calling it earlier simulates a server going away.
// A hook blocked in a read or write must be released before Close returns.
func (s *Server) Close() {
	s.once.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		s.root.Close()
	})
}

func (s *Server) serveConn(c net.Conn, conf *ssh.ServerConfig) {
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
						rs := sftp.NewRequestServer(ch, s.fs.handlers())
						rs.Serve()
						rs.Close()
						ch.Close()
					}()
				}
			}
		}()
	}
}

// CutAfterSent arms a one-shot fault: after n more bytes sent to clients
// (on any connection, counted from now), the connection carrying them is
// closed abruptly, in the middle of whatever it was sending: a download
// cut by the network. Later connections are not affected.
func (s *Server) CutAfterSent(n int64) {
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	s.cutSent = n
}

// CutAfterReceived is CutAfterSent for bytes received from clients: an
// upload cut by the network.
func (s *Server) CutAfterReceived(n int64) {
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	s.cutRecv = n
}

// Cuts is how many connections an armed cut has closed.
func (s *Server) Cuts() int {
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	return s.cuts
}

// allow returns how many of n bytes may pass in one direction before an
// armed cut, and whether the connection must be cut after them.
func (s *Server) allow(counter *int64, n int) (int, bool) {
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	if *counter < 0 {
		return n, false
	}
	if int64(n) < *counter {
		*counter -= int64(n)
		return n, false
	}
	m := int(*counter)
	*counter = -1
	s.cuts++
	return m, true
}

// cutConn is a server-side connection that an armed cut closes.
type cutConn struct {
	net.Conn
	s *Server
}

func (c *cutConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		m, cut := c.s.allow(&c.s.cutRecv, n)
		if cut {
			c.Conn.Close()
			return m, net.ErrClosed
		}
	}
	return n, err
}

func (c *cutConn) Write(b []byte) (int, error) {
	m, cut := c.s.allow(&c.s.cutSent, len(b))
	if !cut {
		return c.Conn.Write(b)
	}
	n, _ := c.Conn.Write(b[:m])
	c.Conn.Close()
	return n, net.ErrClosed
}
