// Package sftpdrop is the SFTP implementation of drop.Drop: the drop
// layout (docs/rules.md#drops-and-receipts) under a base path on an SFTP server (OpenSSH or any
// server speaking SFTP version 3).
//
// Security: key authentication only; the server key is always checked
// against a known_hosts file; the private key file must not be accessible
// by group or others.
//
// Robustness: pkg/sftp and x/crypto/ssh have no timeouts, so every
// operation runs under a deadline on the TCP connection (Config.Timeout
// without progress of the SFTP stream) and an idle connection is watched
// with keepalive@openssh.com requests. A stalled server makes operations
// fail in bounded time; after such a failure the Drop is unusable: Close
// it and Dial again.
package sftpdrop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"anprsec/drop"
)

// Defaults of Config.
const (
	// DefaultTimeout is Config.Timeout when zero.
	DefaultTimeout = 30 * time.Second
	// DefaultKeepalive is Config.Keepalive when zero.
	DefaultKeepalive = 15 * time.Second
)

// maxPacket is the SFTP payload size. 32 KiB is what every server must
// accept; larger values have silently truncated downloads with pkg/sftp.
const maxPacket = 32 * 1024

// chunk is the size of one read or write call on a remote file: eight
// packets in flight at a time.
const chunk = 8 * maxPacket

// Config describes an SFTP drop.
type Config struct {
	// Address is the server as host:port.
	Address string
	// User is the login name.
	User string
	// KeyFile is the unencrypted private key (OpenSSH or PEM format). It
	// is refused if group or others may access it (mode & 0o077 != 0).
	KeyFile string
	// KnownHosts is an OpenSSH known_hosts file; the server key must be
	// listed in it for Address.
	KnownHosts string
	// BasePath is the remote folder holding the drop layout. A relative
	// path is relative to the login folder of the server.
	BasePath string
	// Timeout bounds the dial and the SSH handshake, and the time any
	// operation may wait without progress (default DefaultTimeout).
	Timeout time.Duration
	// Keepalive is the interval of SSH keepalive requests on the
	// connection (default DefaultKeepalive; negative disables them).
	Keepalive time.Duration
}

// Drop is a drop.Drop on an SFTP server. It is safe for concurrent use.
type Drop struct {
	cfg    Config
	conn   *watchConn
	ssh    *ssh.Client
	client *sftp.Client
	posix  bool // server supports posix-rename@openssh.com

	stop      chan struct{}
	kaDone    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ drop.Drop = (*Drop)(nil)

// Dial connects to the SFTP server of cfg, checks its host key against
// cfg.KnownHosts, logs in with cfg.KeyFile and opens the SFTP subsystem.
// ctx bounds the dial and the handshake only.
func Dial(ctx context.Context, cfg Config) (*Drop, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Keepalive == 0 {
		cfg.Keepalive = DefaultKeepalive
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("drop sftp %s: timeout negativo %v", cfg.Address, cfg.Timeout)
	case cfg.Address == "":
		return nil, errors.New("drop sftp: manca l'indirizzo del server")
	case cfg.User == "":
		return nil, fmt.Errorf("drop sftp %s: manca l'utente", cfg.Address)
	case cfg.KeyFile == "":
		return nil, fmt.Errorf("drop sftp %s: manca il file della chiave", cfg.Address)
	case cfg.KnownHosts == "":
		return nil, fmt.Errorf("drop sftp %s: manca il file known_hosts: la chiave del server va verificata", cfg.Address)
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("drop sftp: l'indirizzo %q non è nella forma host:porta: %w", cfg.Address, err)
	}
	signer, err := loadSigner(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	hk, err := newHostKeyChecker(cfg.KnownHosts)
	if err != nil {
		return nil, err
	}

	dialer := net.Dialer{Timeout: cfg.Timeout}
	raw, err := dialer.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("drop sftp %s: %w", cfg.Address, err)
	}
	// Cancelling ctx aborts the handshake by closing the connection.
	stopCancel := context.AfterFunc(ctx, func() { raw.Close() })
	defer stopCancel()

	d := &Drop{cfg: cfg, conn: newWatchConn(raw, cfg.Timeout), stop: make(chan struct{}), kaDone: make(chan struct{})}
	id := d.conn.begin()
	err = d.handshake(signer, hk)
	d.conn.end(id)
	if err != nil {
		if d.ssh != nil {
			d.ssh.Close()
		}
		raw.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("drop sftp %s: %w", cfg.Address, cerr)
		}
		if herr := hk.failure(); herr != nil {
			return nil, herr
		}
		if d.conn.expired.Load() {
			return nil, fmt.Errorf("drop sftp %s: il server non ha risposto entro %v: %w", cfg.Address, cfg.Timeout, err)
		}
		return nil, fmt.Errorf("drop sftp %s: %w", cfg.Address, err)
	}
	if cfg.Keepalive > 0 {
		go d.keepalive()
	} else {
		close(d.kaDone)
	}
	return d, nil
}

// handshake runs the SSH handshake and starts the SFTP subsystem on d.conn.
func (d *Drop) handshake(signer ssh.Signer, hk *hostKeyChecker) error {
	conf := &ssh.ClientConfig{
		User:              d.cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(d.cfg.Address, d.conn.RemoteAddr()),
		Timeout:           d.cfg.Timeout,
	}
	c, chans, reqs, err := ssh.NewClientConn(d.conn, d.cfg.Address, conf)
	if err != nil {
		if strings.Contains(err.Error(), "unable to authenticate") {
			return fmt.Errorf("accesso come %q con la chiave %s rifiutato: %w", d.cfg.User, d.cfg.KeyFile, err)
		}
		return err
	}
	d.ssh = ssh.NewClient(c, chans, reqs)

	// Like sftp.NewClient, but the stream from the server goes through
	// progressReader, which feeds the deadlines of watchConn.
	s, err := d.ssh.NewSession()
	if err != nil {
		return fmt.Errorf("apertura della sessione SSH: %w", err)
	}
	w, err := s.StdinPipe()
	if err != nil {
		return err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := s.StderrPipe()
	if err != nil {
		return err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		return fmt.Errorf("avvio del sottosistema sftp: %w", err)
	}
	go io.Copy(io.Discard, stderr) // an unread stderr would stall the channel
	d.client, err = sftp.NewClientPipe(progressReader{r: r, c: d.conn}, w,
		sftp.MaxPacket(maxPacket), sftp.UseConcurrentWrites(true))
	if err != nil {
		return err
	}
	_, d.posix = d.client.HasExtension("posix-rename@openssh.com")
	return nil
}

// keepalive sends keepalive@openssh.com requests until Close. A request
// is an operation of watchConn: an unanswered one breaks the connection
// after Timeout.
func (d *Drop) keepalive() {
	defer close(d.kaDone)
	t := time.NewTicker(d.cfg.Keepalive)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		id := d.conn.begin()
		_, _, err := d.ssh.SendRequest("keepalive@openssh.com", true, nil)
		d.conn.end(id)
		if err != nil {
			d.ssh.Close() // fail everything now rather than at the next operation
			return
		}
	}
}

// String names the drop as sftp://user@host:port/base. A relative base
// path is shown under /~/ (the login folder).
func (d *Drop) String() string {
	base := d.cfg.BasePath
	if !strings.HasPrefix(base, "/") {
		base = path.Join("/~", base)
	}
	return "sftp://" + d.cfg.User + "@" + d.cfg.Address + base
}

// Close ends the SFTP session and the SSH connection and stops the
// keepalives. It waits at most about Timeout for a stalled server.
func (d *Drop) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		id := d.conn.begin()
		err := d.client.Close()
		d.conn.end(id)
		if cerr := d.ssh.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
		<-d.kaDone
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			d.closeErr = fmt.Errorf("chiusura di %s: %w", d, err)
		}
	})
	return d.closeErr
}

// remote checks name with drop.Clean and joins it to the base path.
func (d *Drop) remote(name string) (string, error) {
	c, err := drop.Clean(name)
	if err != nil {
		return "", err
	}
	return path.Join(d.cfg.BasePath, c), nil
}

// do runs fn as one operation under the connection deadlines.
func (d *Drop) do(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := d.conn.begin()
	defer d.conn.end(id)
	return fn()
}

// fail describes an error of operation op on name. An error that is not
// about the file itself (the connection lost or stalled, a refusal or a
// failure of the server) is marked drop.ErrUnavailable, as drop.Lazy
// tells them: a failure of the environment.
func (d *Drop) fail(op, name string, err error) error {
	if d.conn.expired.Load() {
		return drop.Unavailable(fmt.Errorf("sftp %s %s su %s: server bloccato (nessuna risposta entro %v): %w", op, name, d, d.cfg.Timeout, err))
	}
	err = fmt.Errorf("sftp %s %s su %s: %w", op, name, d, err)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, drop.ErrUnsafePath) || errors.Is(err, context.Canceled) {
		return err
	}
	return drop.Unavailable(err)
}

func toEntry(fi os.FileInfo, name string) drop.Entry {
	return drop.Entry{Name: name, Size: fi.Size(), ModTime: fi.ModTime(), Dir: fi.IsDir(), Regular: fi.Mode().IsRegular()}
}

// List implements drop.Drop. Entries are described without following
// symlinks (as the server's READDIR does) and sorted by name, as the local
// drop lists them. A missing dir is an empty list.
func (d *Drop) List(ctx context.Context, dir string) ([]drop.Entry, error) {
	p, err := d.remote(dir)
	if err != nil {
		return nil, err
	}
	var fis []os.FileInfo
	err = d.do(ctx, func() (err error) {
		fis, err = d.client.ReadDirContext(ctx, p)
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, d.fail("list", dir, err)
	}
	out := make([]drop.Entry, 0, len(fis))
	for _, fi := range fis {
		out = append(out, toEntry(fi, fi.Name()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Stat implements drop.Drop (lstat: a symlink is described, not followed).
func (d *Drop) Stat(ctx context.Context, name string) (drop.Entry, error) {
	p, err := d.remote(name)
	if err != nil {
		return drop.Entry{}, err
	}
	var fi os.FileInfo
	err = d.do(ctx, func() (err error) {
		fi, err = d.client.Lstat(p)
		return err
	})
	if err != nil {
		return drop.Entry{}, d.fail("stat", name, err)
	}
	return toEntry(fi, path.Base(p)), nil
}

// Open implements drop.Drop. It refuses anything but a regular file. The
// returned reader fails with io.ErrUnexpectedEOF (wrapped, naming the
// file) when the file ends before the size the server reported at open.
// Each Read is bounded by the connection deadlines and fails once ctx is
// done.
func (d *Drop) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := d.remote(name)
	if err != nil {
		return nil, err
	}
	var f *sftp.File
	var size int64
	err = d.do(ctx, func() error {
		fi, err := d.client.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: non è un file regolare", name)
		}
		if f, err = d.client.Open(p); err != nil {
			return err
		}
		if fi, err = f.Stat(); err != nil {
			f.Close()
			return err
		}
		size = fi.Size()
		return nil
	})
	if err != nil {
		return nil, d.fail("open", name, err)
	}
	return &reader{ctx: ctx, d: d, f: f, name: name, size: size}, nil
}

// reader is the body of an opened remote file.
type reader struct {
	ctx  context.Context
	d    *Drop
	f    *sftp.File
	name string
	size int64 // at open
	read int64
}

func (r *reader) Read(b []byte) (int, error) {
	if len(b) > chunk {
		b = b[:chunk]
	}
	var n int
	err := r.d.do(r.ctx, func() (err error) {
		n, err = r.f.Read(b)
		return err
	})
	r.read += int64(n)
	switch {
	case err == io.EOF && r.read < r.size:
		return n, fmt.Errorf("sftp read %s su %s: %w: letti %d byte su %d", r.name, r.d, io.ErrUnexpectedEOF, r.read, r.size)
	case err == io.EOF:
		return n, io.EOF
	case err != nil:
		return n, r.d.fail("read", r.name, err)
	}
	return n, nil
}

func (r *reader) Close() error {
	id := r.d.conn.begin()
	defer r.d.conn.end(id)
	if err := r.f.Close(); err != nil {
		return r.d.fail("close", r.name, err)
	}
	return nil
}

// Write implements drop.Drop: the content goes to drop.TempName(name),
// its size is checked on the server, and it is renamed onto name with
// posix-rename (atomic replacement). On error the temporary file is
// removed (best effort: not possible when the connection itself failed;
// readers skip it by its .tmp suffix, and the next write of name reuses
// it).
func (d *Drop) Write(ctx context.Context, name string, r io.Reader) error {
	c, err := drop.Clean(name)
	if err != nil {
		return err
	}
	p, err := d.remote(c)
	if err != nil {
		return err
	}
	tmp, err := d.remote(drop.TempName(c))
	if err != nil {
		return err
	}
	if err := d.mkdirAll(ctx, path.Dir(p)); err != nil {
		return d.fail("write", name, err)
	}
	var f *sftp.File
	err = d.do(ctx, func() (err error) {
		// A file or symlink at the temporary name is removed, not followed.
		if rerr := d.client.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return rerr
		}
		f, err = d.client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err == nil {
			f.Chmod(0o640) // best effort, as the local drop; servers may refuse
		}
		return err
	})
	if err != nil {
		return d.fail("write", name, err)
	}
	written, err := d.upload(ctx, f, r)
	if cerr := d.do(context.WithoutCancel(ctx), f.Close); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.do(ctx, func() error {
			fi, err := d.client.Lstat(tmp)
			if err != nil {
				return err
			}
			if fi.Size() != written {
				return fmt.Errorf("inviati %d byte ma il server ne ha %d", written, fi.Size())
			}
			return d.rename(tmp, p)
		})
	}
	if err != nil {
		d.do(context.WithoutCancel(ctx), func() error { return d.client.Remove(tmp) })
		return d.fail("write", name, err)
	}
	return nil
}

// upload copies r to f: reading r is not part of an operation, so a slow
// local producer does not count against the server.
func (d *Drop) upload(ctx context.Context, f *sftp.File, r io.Reader) (int64, error) {
	buf := make([]byte, chunk)
	var written int64
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			var m int
			err := d.do(ctx, func() (err error) {
				m, err = f.Write(buf[:n])
				return err
			})
			written += int64(m)
			if err != nil {
				return written, err
			}
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return written, nil
		case rerr != nil:
			return written, fmt.Errorf("lettura del contenuto: %w", rerr)
		}
	}
}

// Rename implements drop.Drop with posix-rename semantics: the target is
// replaced atomically; its parent folders are created.
func (d *Drop) Rename(ctx context.Context, from, to string) error {
	pf, err := d.remote(from)
	if err != nil {
		return err
	}
	pt, err := d.remote(to)
	if err != nil {
		return err
	}
	if err := d.mkdirAll(ctx, path.Dir(pt)); err != nil {
		return d.fail("rename", from+" -> "+to, err)
	}
	if err := d.do(ctx, func() error { return d.rename(pf, pt) }); err != nil {
		return d.fail("rename", from+" -> "+to, err)
	}
	return nil
}

// rename replaces newname with oldname. SFTP's own RENAME fails when the
// target exists (on OpenSSH and pkg/sftp servers alike), so it uses
// posix-rename@openssh.com, and only on a server without that extension
// falls back to remove + rename (not atomic).
func (d *Drop) rename(oldname, newname string) error {
	if d.posix {
		return d.client.PosixRename(oldname, newname)
	}
	if err := d.client.Remove(newname); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return d.client.Rename(oldname, newname)
}

// mkdirAll creates dir and its missing parents (mode 0750, best effort),
// each creation being one operation.
func (d *Drop) mkdirAll(ctx context.Context, dir string) error {
	var fi os.FileInfo
	err := d.do(ctx, func() (err error) {
		fi, err = d.client.Stat(dir)
		return err
	})
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s esiste e non è una cartella", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if parent := path.Dir(dir); parent != dir {
		if err := d.mkdirAll(ctx, parent); err != nil {
			return err
		}
	}
	return d.do(ctx, func() error {
		err := d.client.Mkdir(dir)
		if err != nil {
			// lost a race with another writer?
			if fi, serr := d.client.Stat(dir); serr == nil && fi.IsDir() {
				return nil
			}
			return err
		}
		d.client.Chmod(dir, 0o750) // best effort, as the local drop
		return nil
	})
}

// Remove implements drop.Drop.
func (d *Drop) Remove(ctx context.Context, name string) error {
	p, err := d.remote(name)
	if err != nil {
		return err
	}
	if err := d.do(ctx, func() error { return d.client.Remove(p) }); err != nil {
		return d.fail("remove", name, err)
	}
	return nil
}
