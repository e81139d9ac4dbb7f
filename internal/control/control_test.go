package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// shortDir is a temporary folder with a path short enough for a Unix
// socket (t.TempDir can exceed sun_path's 108 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// serve runs Serve on a fresh socket with h; it returns the socket's path
// and a stop function that waits for Serve to return.
func serve(t *testing.T, policy Policy, h Handler) (string, func()) {
	t.Helper()
	p := filepath.Join(shortDir(t), "run", "s.sock")
	ln, err := Listen(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, ln, policy, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return p, stop
}

// me is a policy that lets the test process in (it is the daemon's user).
func me() Policy {
	return Policy{DaemonUID: uint32(os.Geteuid()), GID: uint32(os.Getegid()), Group: "test"}
}

func TestFramesRoundTrip(t *testing.T) {
	var b bytes.Buffer
	for _, f := range []struct {
		typ byte
		p   []byte
	}{{FrameStdout, []byte("ciao\n")}, {FrameStderr, nil}, {FrameWrite, bytes.Repeat([]byte{7}, 3*chunk)}} {
		if err := WriteFrame(&b, f.typ, f.p); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int{5, 0, 3 * chunk} {
		_, p, err := ReadFrame(&b)
		if err != nil || len(p) != want {
			t.Fatalf("frame of %d bytes, want %d (%v)", len(p), want, err)
		}
	}
	if _, _, err := ReadFrame(&b); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

func TestFrameOverTheBoundIsRefused(t *testing.T) {
	hdr := []byte{FrameStdout, 0xff, 0xff, 0xff, 0xff}
	if _, _, err := ReadFrame(bytes.NewReader(hdr)); err == nil {
		t.Fatal("a 4 GiB frame was accepted")
	}
}

func TestTruncatedFrameIsAnError(t *testing.T) {
	var b bytes.Buffer
	WriteFrame(&b, FrameStdout, []byte("abcdef"))
	if _, _, err := ReadFrame(bytes.NewReader(b.Bytes()[:7])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%v, want ErrUnexpectedEOF", err)
	}
}

// The folder lets the group through (0750), the socket lets it connect
// (0660), both of the group given.
func TestSocketAndFolderModesAndGroup(t *testing.T) {
	gid := os.Getegid()
	if os.Geteuid() == 0 {
		gid = 4242 // root may give any group: check it is the one set
	}
	p := filepath.Join(shortDir(t), "run", "s.sock")
	ln, err := Listen(p, gid)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct {
		path string
		mode fs.FileMode
	}{{filepath.Dir(p), DirMode}, {p, SocketMode}} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %o, want %o", c.path, fi.Mode().Perm(), c.mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid {
			t.Errorf("%s: group %d, want %d", c.path, st.Gid, gid)
		}
	}
}

// A socket left by a daemon killed with -9 (nobody answers on it) is
// replaced at the next start.
func TestStaleSocketIsReplaced(t *testing.T) {
	p := filepath.Join(shortDir(t), "run", "s.sock")
	old, err := Listen(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false) // as kill -9 leaves it
	old.Close()
	if fi, err := os.Lstat(p); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("the stale socket is not there: %v", err)
	}
	if _, err := Dial(p); err == nil {
		t.Fatal("a stale socket answers")
	}
	ln, err := Listen(p, -1)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer ln.Close()
	c, err := Dial(p)
	if err != nil {
		t.Fatalf("the new socket does not answer: %v", err)
	}
	c.Close()
}

// A socket a live daemon answers on is never taken.
func TestLiveSocketIsNotTaken(t *testing.T) {
	p := filepath.Join(shortDir(t), "run", "s.sock")
	live, err := Listen(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := Listen(p, -1); !errors.Is(err, ErrLive) {
		t.Fatalf("second listener: %v, want ErrLive", err)
	}
	c, err := Dial(p)
	if err != nil {
		t.Fatalf("the live daemon lost its socket: %v", err)
	}
	c.Close()
}

// Another file where the socket goes is not removed.
func TestFileInPlaceOfTheSocketIsKept(t *testing.T) {
	p := filepath.Join(shortDir(t), "run", "s.sock")
	os.MkdirAll(filepath.Dir(p), 0o750)
	if err := os.WriteFile(p, []byte("dati"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(p, -1); err == nil || !strings.Contains(err.Error(), "non è un socket") {
		t.Fatalf("Listen over a file: %v", err)
	}
	if data, _ := os.ReadFile(p); string(data) != "dati" {
		t.Fatal("the file was replaced")
	}
}

// A shared folder (sticky bit, like /tmp) is refused: its mode and group
// are not the daemon's to change.
func TestSharedFolderIsRefused(t *testing.T) {
	d := filepath.Join(shortDir(t), "shared")
	os.Mkdir(d, 0o777)
	os.Chmod(d, 0o777|fs.ModeSticky)
	if _, err := Listen(filepath.Join(d, "s.sock"), -1); err == nil || !strings.Contains(err.Error(), "sticky") {
		t.Fatalf("Listen in a sticky folder: %v", err)
	}
	if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o777 {
		t.Fatalf("the shared folder's mode was changed to %o", fi.Mode().Perm())
	}
}

// Who may use the socket: root, the daemon's user, a member of the group
// (primary or supplementary); anyone else is refused, by name.
func TestPolicyRefusesAUserOutsideTheGroup(t *testing.T) {
	p := Policy{DaemonUID: 900, GID: 950, Group: "anprsec-op", GroupsOf: func(uid uint32) ([]uint32, error) {
		if uid == 1001 {
			return []uint32{100, 950}, nil
		}
		if uid == 1003 {
			return nil, errors.New("no such user")
		}
		return []uint32{100}, nil
	}}
	for _, c := range []struct {
		cred Cred
		ok   bool
	}{
		{Cred{UID: 0, GID: 0}, true},       // root
		{Cred{UID: 900, GID: 900}, true},   // the daemon's user
		{Cred{UID: 1000, GID: 950}, true},  // primary group
		{Cred{UID: 1001, GID: 100}, true},  // supplementary group
		{Cred{UID: 1002, GID: 100}, false}, // outside the group
		{Cred{UID: 1003, GID: 100}, false}, // unknown to the system
	} {
		err := p.Allow(c.cred)
		if (err == nil) != c.ok {
			t.Errorf("uid %d gid %d: %v, want allowed=%v", c.cred.UID, c.cred.GID, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "anprsec-op") {
			t.Errorf("the refusal does not name the group: %v", err)
		}
	}
}

// A session: the command's output and exit code reach the client, and the
// caller's identity comes from the kernel.
func TestSessionStreamsOutputAndExitCode(t *testing.T) {
	p, _ := serve(t, me(), func(_ context.Context, s *Session) int {
		fmt.Fprintf(s.Stdout(), "args %s from uid %d\n", strings.Join(s.Request.Args, " "), s.Cred.UID)
		fmt.Fprintln(s.Stderr(), "avviso")
		return 3
	})
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code, err := Run(context.Background(), conn, Request{Args: []string{"jobs", "list"}}, &out, &errb, &Local{})
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 || out.String() != fmt.Sprintf("args jobs list from uid %d\n", os.Geteuid()) || errb.String() != "avviso\n" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// The caller's files: the daemon writes, reads and checks them through
// the client, which does it in its own folder; a file appears only when
// committed, errors keep their kind.
func TestSessionFilesAreTheCallers(t *testing.T) {
	dir := shortDir(t)
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("contenuto"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	note := func(f string, args ...any) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf(f, args...))
		mu.Unlock()
	}
	p, _ := serve(t, me(), func(_ context.Context, s *Session) int {
		fsys := s.FS()
		_, err := fsys.Lstat(filepath.Join(dir, "out", "b.bin"))
		note("lstat missing: notexist=%v", errors.Is(err, fs.ErrNotExist))
		if err := fsys.MkdirAll(filepath.Join(dir, "out"), 0o700); err != nil {
			note("mkdir: %v", err)
		}
		data, err := fsys.ReadFile(filepath.Join(dir, "in.txt"))
		note("read: %q %v", data, err)
		f, err := fsys.Create(filepath.Join(dir, "out", "b.bin"), 0o600)
		if err != nil {
			note("create: %v", err)
			return 1
		}
		f.Write(bytes.Repeat([]byte("x"), chunk+10))
		_, err = fsys.Lstat(filepath.Join(dir, "out", "b.bin"))
		note("before commit: notexist=%v", errors.Is(err, fs.ErrNotExist))
		note("commit: %v", f.Commit())
		g, _ := fsys.Create(filepath.Join(dir, "out", "aborted"), 0o600)
		g.Write([]byte("y"))
		g.Abort()
		line, _ := io.ReadAll(fsys.Stdin())
		note("stdin: %q", line)
		return 0
	})
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW, _ := os.Pipe()
	stdinW.WriteString("s\n")
	stdinW.Close()
	defer stdinR.Close()
	oldStdin := os.Stdin
	os.Stdin = stdinR
	defer func() { os.Stdin = oldStdin }()
	code, err := Run(context.Background(), conn, Request{}, io.Discard, io.Discard, &Local{})
	if err != nil || code != 0 {
		t.Fatalf("code %d, %v: %q", code, err, seen)
	}
	want := []string{
		"lstat missing: notexist=true",
		`read: "contenuto" <nil>`,
		"before commit: notexist=true",
		"commit: <nil>",
		`stdin: "s\n"`,
	}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Fatalf("got\n%q\nwant\n%q", seen, want)
	}
	fi, err := os.Stat(filepath.Join(dir, "out", "b.bin"))
	if err != nil || fi.Size() != chunk+10 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file: %v %v", fi, err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "out"))
	if len(left) != 1 {
		t.Fatalf("the folder holds %d entries, want only b.bin (no temporary, no aborted file)", len(left))
	}
}

// A client that goes away cancels its command in the daemon.
func TestClientGoneCancelsTheCommand(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	p, _ := serve(t, me(), func(ctx context.Context, s *Session) int {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return 1
	})
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, conn, Request{}, io.Discard, io.Discard, &Local{})
		done <- err
	}()
	<-started
	cancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("the command's context: %v", err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

// A daemon that stops while a command runs ends it; the client says the
// session was lost.
func TestDaemonStoppingEndsTheSession(t *testing.T) {
	started := make(chan struct{})
	var stop func()
	var p string
	p, stop = serve(t, me(), func(ctx context.Context, s *Session) int {
		close(started)
		<-ctx.Done()
		s.conn.Close() // killed before it could say its exit code
		return 1
	})
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), conn, Request{}, io.Discard, io.Discard, &Local{})
		done <- err
	}()
	<-started
	stop()
	if err := <-done; !errors.Is(err, ErrLost) {
		t.Fatalf("Run: %v, want ErrLost", err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the socket outlived the daemon: %v", err)
	}
}

// asUser runs f with the effective user, group and groups of uid/gid (the
// kernel's credentials of a connection are those of its connect), then
// goes back to root. Only root can do this.
func asUser(t *testing.T, uid, gid int, f func()) {
	t.Helper()
	groups, err := syscall.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(syscall.Setgroups([]int{gid}))
	must(syscall.Setegid(gid))
	must(syscall.Seteuid(uid))
	defer func() {
		must(syscall.Seteuid(0))
		must(syscall.Setegid(0))
		must(syscall.Setgroups(groups))
	}()
	f()
}

// A user who is not root, not the daemon's user and not in the group is
// refused twice: by the modes of the socket's folder and socket, and,
// were they opened, by the daemon from the connection's credentials.
func TestUserOutsideTheGroupCannotRunACommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("connecting as another user needs root")
	}
	const nobody, nogroup = 65534, 65534
	ran := false
	p, _ := serve(t, Policy{DaemonUID: 0, GID: 0, Group: "root", GroupsOf: func(uint32) ([]uint32, error) { return []uint32{nogroup}, nil }},
		func(context.Context, *Session) int { ran = true; return 0 })
	os.Chmod(filepath.Dir(filepath.Dir(p)), 0o755) // the test's own folder
	var dialErr error
	asUser(t, nobody, nogroup, func() { _, dialErr = Dial(p) })
	if !errors.Is(dialErr, syscall.EACCES) {
		t.Fatalf("connecting through the folder's and socket's modes: %v, want EACCES", dialErr)
	}
	os.Chmod(filepath.Dir(p), 0o755)
	os.Chmod(p, 0o666)
	var conn net.Conn
	asUser(t, nobody, nogroup, func() { conn, dialErr = Dial(p) })
	if dialErr != nil {
		t.Fatal(dialErr)
	}
	var errb bytes.Buffer
	code, err := Run(context.Background(), conn, Request{Args: []string{"postazioni", "blocca", "X"}}, io.Discard, &errb, &Local{})
	if err != nil || code != 1 || !strings.Contains(errb.String(), "non fa parte del gruppo root") {
		t.Fatalf("code %d, %v, stderr %q", code, err, errb.String())
	}
	if ran {
		t.Fatal("the command of a refused caller ran")
	}
}

// A client that connects and says nothing does not keep the daemon from
// stopping.
func TestSilentClientDoesNotHoldTheDaemon(t *testing.T) {
	ran := false
	p, stop := serve(t, me(), func(context.Context, *Session) int { ran = true; return 0 })
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop() // returns once the session is over
	if ran {
		t.Fatal("a command ran without a request")
	}
}
