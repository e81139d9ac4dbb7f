package control

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Handler runs the command of a session and returns its exit code.
type Handler func(ctx context.Context, s *Session) int

// Serve accepts connections on ln until ctx ends, checks each caller with
// policy and runs its session with h, each in its own goroutine. It
// returns once ln is closed and every session has ended (their contexts
// end with ctx, or when the client goes away).
func Serve(ctx context.Context, ln *net.UnixListener, policy Policy, h Handler, log *slog.Logger) error {
	lim := &sessionLimit{perUser: map[uint32]int{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			log.Warn("control socket: accept", "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(ctx, conn, policy, lim, h, log)
		}()
	}
}

// serveConn runs one session.
func serveConn(ctx context.Context, conn *net.UnixConn, policy Policy, lim *sessionLimit, h Handler, log *slog.Logger) {
	defer conn.Close()
	// The daemon stopping ends the session: a command still running loses
	// its connection (the client says so), and Serve does not wait on a
	// client that never sends its request.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cred, err := PeerCred(conn)
	if err != nil {
		log.Warn("control socket: no peer credentials", "err", err)
		return
	}
	s := &Session{Cred: cred, User: UserName(cred.UID), conn: conn, answers: make(chan Answer, 1)}
	if err := policy.Allow(cred); err != nil {
		log.Warn("control socket: caller refused", "uid", cred.UID, "user", s.User, "pid", cred.PID)
		s.writeData(FrameStderr, []byte("anprsec: "+err.Error()+"\n"))
		WriteJSON(conn, FrameExit, Exit{Code: 1})
		return
	}
	if err := lim.acquire(cred.UID); err != nil {
		log.Warn("control socket: too many sessions", "uid", cred.UID, "user", s.User, "pid", cred.PID)
		s.writeData(FrameStderr, []byte("anprsec: "+err.Error()+"\n"))
		WriteJSON(conn, FrameExit, Exit{Code: 1})
		return
	}
	defer lim.release(cred.UID)
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	typ, p, err := readFrameMax(conn, MaxRequest)
	conn.SetReadDeadline(time.Time{})
	if errors.Is(err, io.EOF) {
		return // a probe: is a daemon there?
	}
	if err != nil || typ != FrameRequest {
		log.Warn("control socket: no request", "user", s.User, "err", err)
		return
	}
	if err := json.Unmarshal(p, &s.Request); err != nil {
		log.Warn("control socket: bad request", "user", s.User, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	// The reader hands the answers over; the client going away (the end
	// of the connection, Ctrl-C) cancels the command.
	go func() {
		defer cancel()
		for {
			typ, p, err := ReadFrame(conn)
			if err != nil || typ != FrameAnswer {
				return
			}
			var a Answer
			if err := json.Unmarshal(p, &a); err != nil {
				return
			}
			select {
			case s.answers <- a:
			case <-ctx.Done():
				return
			}
		}
	}()
	code := h(ctx, s)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	WriteJSON(conn, FrameExit, Exit{Code: code})
}

// Bounds on the sessions open at once: a caller that opens connections
// and keeps them does not take the daemon's file descriptors, which its
// store, drop and jobs need.
const (
	MaxSessions        = 64 // in all
	MaxSessionsPerUser = 16 // of one uid
)

// sessionLimit counts the open sessions, in all and per uid.
type sessionLimit struct {
	mu      sync.Mutex
	total   int
	perUser map[uint32]int
}

// acquire takes a session for uid, or says why there is none.
func (l *sessionLimit) acquire(uid uint32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.perUser[uid] >= MaxSessionsPerUser:
		return fmt.Errorf("troppi comandi in corso per l'utente %s tramite il daemon (al massimo %d): riprova quando uno è finito", UserName(uid), MaxSessionsPerUser)
	case l.total >= MaxSessions:
		return fmt.Errorf("troppi comandi in corso tramite il daemon (al massimo %d): riprova più tardi", MaxSessions)
	}
	l.total++
	l.perUser[uid]++
	return nil
}

// release gives back a session of uid.
func (l *sessionLimit) release(uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perUser[uid]--; l.perUser[uid] <= 0 {
		delete(l.perUser, uid)
	}
}

// requestTimeout bounds the wait for a client's request after it connects.
const requestTimeout = time.Minute

// A client that stops reading the frames of its command, or stops
// answering its file operations (all but its standard input, which waits
// on a person), loses its session after these: the command then fails
// instead of waiting on it for ever.
var (
	writeTimeout  = 5 * time.Minute
	answerTimeout = 5 * time.Minute
)

// Session is one command through the socket, on the daemon's side.
type Session struct {
	Request Request
	Cred    Cred
	User    string // the caller's user name (UserName of Cred.UID)

	ctx     context.Context
	conn    net.Conn
	wmu     sync.Mutex // one frame at a time
	opMu    sync.Mutex // one FileOp waiting for its answer at a time
	answers chan Answer
	nextID  uint32
	broken  error // the connection failed: every later write fails
}

// writeData writes p as frames of type typ, in chunks.
func (s *Session) writeData(typ byte, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(typ, p)
}

func (s *Session) writeLocked(typ byte, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), chunk)
		if err := s.frameLocked(typ, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// frameLocked writes one frame; after a failure every frame fails.
func (s *Session) frameLocked(typ byte, p []byte) error {
	if s.broken != nil {
		return s.broken
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := WriteFrame(s.conn, typ, p); err != nil {
		s.broken = fmt.Errorf("socket di controllo: %w", err)
		s.conn.Close() // a frame half written: nothing more can be said
	}
	return s.broken
}

// Stdout is the command's standard output, sent to the caller.
func (s *Session) Stdout() io.Writer { return streamWriter{s, FrameStdout} }

// Stderr is the command's standard error, sent to the caller.
func (s *Session) Stderr() io.Writer { return streamWriter{s, FrameStderr} }

type streamWriter struct {
	s   *Session
	typ byte
}

func (w streamWriter) Write(p []byte) (int, error) {
	if err := w.s.writeData(w.typ, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// IsTerminal says whether the caller's stream is a terminal (the client
// tells it for stderr).
func (w streamWriter) IsTerminal() bool { return w.typ == FrameStderr && w.s.Request.Terminal }

// FS is the caller's file system, through the client.
func (s *Session) FS() FS { return remoteFS{s} }

// op sends a FileOp and, when it wants one, waits for its answer.
func (s *Session) op(o FileOp) (Answer, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	b, err := json.Marshal(o)
	if err != nil {
		return Answer{}, err
	}
	s.wmu.Lock()
	err = s.frameLocked(FrameFileOp, b)
	s.wmu.Unlock()
	if err != nil || !o.wantsAnswer() {
		return Answer{}, err
	}
	var timeout <-chan time.Time
	if o.Op != "stdin" {
		t := time.NewTimer(answerTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case a := <-s.answers:
		return a, nil
	case <-s.ctx.Done():
		return Answer{}, fmt.Errorf("socket di controllo: il chiamante si è disconnesso: %w", s.ctx.Err())
	case <-timeout:
		s.wmu.Lock()
		if s.broken == nil {
			s.broken = fmt.Errorf("socket di controllo: il chiamante non ha risposto in %s", answerTimeout)
		}
		err := s.broken
		s.wmu.Unlock()
		s.conn.Close() // a late answer would be taken for the next one's
		return Answer{}, err
	}
}

type remoteFS struct{ s *Session }

func (r remoteFS) Lstat(path string) (Info, error) {
	a, err := r.s.op(FileOp{Op: "lstat", Path: path})
	if err != nil {
		return Info{}, err
	}
	return a.Info, a.err()
}

func (r remoteFS) MkdirAll(path string, perm fs.FileMode) error {
	a, err := r.s.op(FileOp{Op: "mkdir", Path: path, Perm: perm})
	if err != nil {
		return err
	}
	return a.err()
}

func (r remoteFS) ReadFile(path string) ([]byte, error) {
	a, err := r.s.op(FileOp{Op: "read", Path: path})
	if err != nil {
		return nil, err
	}
	return a.Data, a.err()
}

func (r remoteFS) Create(path string, perm fs.FileMode) (File, error) {
	r.s.opMu.Lock()
	r.s.nextID++
	id := r.s.nextID
	r.s.opMu.Unlock()
	a, err := r.s.op(FileOp{Op: "create", ID: id, Path: path, Perm: perm})
	if err != nil {
		return nil, err
	}
	if err := a.err(); err != nil {
		return nil, err
	}
	return &remoteFile{s: r.s, id: id}, nil
}

func (r remoteFS) Stdin() io.Reader { return stdinReader(r) }

type stdinReader struct{ s *Session }

func (sr stdinReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	a, err := sr.s.op(FileOp{Op: "stdin", N: len(p)})
	if err != nil {
		return 0, err
	}
	if err := a.err(); err != nil {
		return 0, err
	}
	n := copy(p, a.Data)
	if n == 0 && a.EOF {
		return 0, io.EOF
	}
	return n, nil
}

type remoteFile struct {
	s    *Session
	id   uint32
	done bool
}

func (f *remoteFile) Write(p []byte) (int, error) {
	if f.done {
		return 0, errors.New("control socket: write after commit")
	}
	f.s.wmu.Lock()
	defer f.s.wmu.Unlock()
	hdr := binary.BigEndian.AppendUint32(nil, f.id)
	for rest := p; len(rest) > 0; {
		n := min(len(rest), chunk)
		if err := f.s.frameLocked(FrameWrite, append(hdr[:4:4], rest[:n]...)); err != nil {
			return len(p) - len(rest), err
		}
		rest = rest[n:]
	}
	return len(p), nil
}

func (f *remoteFile) Commit() error {
	if f.done {
		return errors.New("control: file committed twice")
	}
	f.done = true
	a, err := f.s.op(FileOp{Op: "commit", ID: f.id})
	if err != nil {
		return err
	}
	return a.err()
}

func (f *remoteFile) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.s.op(FileOp{Op: "abort", ID: f.id})
}
