package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"anprsec/drop"
	"anprsec/drop/sftpdrop"
	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/ingest"
	"anprsec/ingest/esito"
	"anprsec/internal/testnet"
	"anprsec/secret"
	"anprsec/store"
)

// The SFTP fault campaign, through the inbox: a connection cut in the
// middle of a download and of a receipt upload, a stalled server, a
// server whose host key changed. Each test is bounded by a timeout of a
// second or a few.

const faultTimeout = time.Second

// sftpInbox is an inbox "in" over SFTP (drop.Lazy around sftpdrop.Dial,
// as the daemon builds it) on an in-process server.
type sftpInbox struct {
	t      *testing.T
	srv    *sftptest.Server
	client *sftptest.Client
	cfg    sftpdrop.Config
	disk   string // the drop root on the server's disk
	st     *store.Store
	spool  string
}

func newSFTPInbox(t *testing.T, opts ...sftptest.Option) *sftpInbox {
	t.Helper()
	cl := sftptest.NewClient(t)
	srv := sftptest.Start(t, cl.PublicKey(), opts...)
	disk := filepath.Join(srv.Dir, "base")
	if err := os.MkdirAll(filepath.Join(disk, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{7}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &sftpInbox{t: t, srv: srv, client: cl, disk: disk, st: st, spool: t.TempDir(),
		cfg: sftpdrop.Config{Address: srv.Addr, User: srv.User, KeyFile: cl.KeyFile,
			KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "kh"), srv.Addr, srv.HostKey),
			BasePath:   "/base", Timeout: faultTimeout, Keepalive: -1}}
}

// inbox returns an Inbox on a new drop.Lazy (a new connection on first use).
func (s *sftpInbox) inbox() *ingest.Inbox {
	cfg := s.cfg
	d := &drop.Lazy{Name: "sftp", Dial: func(ctx context.Context) (drop.Drop, error) { return sftpdrop.Dial(ctx, cfg) }}
	s.t.Cleanup(func() { d.Close() })
	return &ingest.Inbox{Drop: d, Store: s.st, Kind: "test-sftp", Dir: "in", Exts: []string{".csv"},
		MaxSize: 4 << 20, SpoolDir: s.spool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (s *sftpInbox) put(name string, data []byte) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.disk, "in", name), data, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sftpInbox) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(s.disk, "in", filepath.FromSlash(rel)))
	return err == nil
}

func (s *sftpInbox) receipt(name string) [][]string {
	s.t.Helper()
	return (&env{t: s.t, dir: filepath.Join(s.disk, "in")}).receipt(name)
}

// run runs the inbox within a bound of a few timeouts.
func (s *sftpInbox) run(in *ingest.Inbox, p ingest.Processor) (ingest.Stats, time.Duration, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*faultTimeout)
	defer cancel()
	start := time.Now()
	st, err := in.Run(ctx, p)
	return st, time.Since(start), err
}

// fileState is the store's record of a content, or "" when none.
func (s *sftpInbox) fileState(content []byte) store.FileState {
	var state store.FileState
	s.st.View(func(tx *store.Tx) error {
		r, err := tx.File(sha(string(content)))
		if err == nil {
			state = r.State
		}
		return nil
	})
	return state
}

// checkingProc checks that the local copy is exactly the dropped content,
// records one history entry per file and writes lines receipt lines.
type checkingProc struct {
	t       *testing.T
	want    map[string][]byte // name -> content
	lines   int
	calls   map[string]int
	callsMu sync.Mutex
}

func (p *checkingProc) process(_ context.Context, f *ingest.File) (ingest.Result, error) {
	p.callsMu.Lock()
	p.calls[f.Name]++
	p.callsMu.Unlock()
	got, err := os.ReadFile(f.Local)
	if err != nil {
		return ingest.Result{}, err
	}
	if !bytes.Equal(got, p.want[f.Name]) {
		p.t.Errorf("%s: local copy of %d bytes differs from the %d bytes dropped", f.Name, len(got), len(p.want[f.Name]))
	}
	err = f.Commit(0, func(tx *store.Tx, buf *bytes.Buffer) (int, int, error) {
		if err := tx.Record(f.Source("test", "Foglio", 2), "prova.ok", "file", f.SHA256, f.Name); err != nil {
			return 0, 0, err
		}
		for i := 0; i < p.lines; i++ {
			esito.Append(buf, esito.Line{Sheet: "Foglio", Row: i + 2, Outcome: esito.OK, Code: "OK", Message: fmt.Sprintf("%s riga %d", f.Name, i+2)})
		}
		return p.lines, 0, nil
	})
	return ingest.Result{}, err
}

func (s *sftpInbox) historyCount(action string) int {
	s.t.Helper()
	h, err := s.st.History(0, 0, func(e *store.Entry) bool { return e.Action == action })
	if err != nil {
		s.t.Fatal(err)
	}
	return len(h)
}

func bigText(n int, seed string) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s;%08d;RSSMRA68A01H501Y;riga di prova\n", seed, i)
	}
	return b.Bytes()[:n]
}

// TestSFTPCutMidDownload: the connection drops while a file is being
// downloaded. That file is not claimed (no record, no receipt, still in
// the folder, no local copy left); the inbox reconnects and goes on with
// the next file in the same run; the next run reads the cut file whole.
// Each file is processed once.
func TestSFTPCutMidDownload(t *testing.T) {
	s := newSFTPInbox(t)
	a, b := bigText(600_000, "a"), []byte("b;1\n")
	s.put("a.csv", a)
	s.put("b.csv", b)
	p := &checkingProc{t: t, want: map[string][]byte{"a.csv": a, "b.csv": b}, lines: 1, calls: map[string]int{}}
	in := s.inbox()

	s.srv.CutAfterSent(250_000) // within a.csv's bytes
	st, el, err := s.run(in, p.process)
	if err == nil || !strings.Contains(err.Error(), "scaricamento di in/a.csv") {
		t.Fatalf("run 1: %+v, %v; want the download of a.csv failed", st, err)
	}
	t.Logf("run 1 (%v): %v", el.Round(time.Millisecond), err)
	if s.srv.Cuts() != 1 {
		t.Fatalf("%d cuts", s.srv.Cuts())
	}
	if st.Files != 1 || st.Accepted != 1 || p.calls["a.csv"] != 0 || p.calls["b.csv"] != 1 {
		t.Errorf("run 1: %+v, calls %v; want b.csv (after the cut, on a new connection) only", st, p.calls)
	}
	if s.fileState(a) != "" || !s.exists("a.csv") || s.exists("esiti/a.csv.esito.csv") {
		t.Errorf("the half-read a.csv was claimed: state %q, in folder %v", s.fileState(a), s.exists("a.csv"))
	}
	if l, _ := filepath.Glob(filepath.Join(s.spool, "*", "*")); len(l) != 0 {
		t.Errorf("spool holds %v", l)
	}

	st, _, err = s.run(in, p.process)
	if err != nil || st.Files != 1 || st.Accepted != 1 {
		t.Fatalf("run 2: %+v, %v", st, err)
	}
	if p.calls["a.csv"] != 1 || p.calls["b.csv"] != 1 {
		t.Errorf("calls %v, want one each", p.calls)
	}
	for _, name := range []string{"a.csv", "b.csv"} {
		if r := s.receipt(name); len(r) != 1 || r[0][2] != "OK" {
			t.Errorf("receipt of %s = %q", name, r)
		}
		if !s.exists("elaborati/" + name) {
			t.Errorf("%s not in elaborati/", name)
		}
	}
	if n := s.historyCount("prova.ok"); n != 2 {
		t.Errorf("%d effects in the history, want 2", n)
	}
	if _, err := s.st.VerifyHistory(); err != nil {
		t.Error(err)
	}
}

// TestSFTPCutMidUpload: the connection drops while the receipt is being
// uploaded. The file's effect is committed once; the next run does not
// process it again but writes its receipt whole, moves it, and leaves no
// temporary file.
func TestSFTPCutMidUpload(t *testing.T) {
	s := newSFTPInbox(t)
	c := []byte("c;1\n")
	s.put("c.csv", c)
	p := &checkingProc{t: t, want: map[string][]byte{"c.csv": c}, lines: 5000, calls: map[string]int{}}
	in := s.inbox()

	s.srv.CutAfterReceived(100_000) // the receipt is about 230 kB
	st, el, err := s.run(in, p.process)
	if err == nil || !strings.Contains(err.Error(), "scrittura dell'esito") {
		t.Fatalf("run 1: %+v, %v; want the receipt upload failed", st, err)
	}
	t.Logf("run 1 (%v): %v", el.Round(time.Millisecond), err)
	if s.srv.Cuts() != 1 || p.calls["c.csv"] != 1 {
		t.Fatalf("%d cuts, calls %v", s.srv.Cuts(), p.calls)
	}
	if s.fileState(c) != store.FileCommitted || !s.exists("c.csv") || s.exists("esiti/c.csv.esito.csv") {
		t.Errorf("after the cut: state %q, in folder %v, receipt %v", s.fileState(c), s.exists("c.csv"), s.exists("esiti/c.csv.esito.csv"))
	}

	st, _, err = s.run(in, p.process)
	if err != nil || st.Files != 1 || st.Accepted != 1 || st.RowsOK != 5000 {
		t.Fatalf("run 2: %+v, %v", st, err)
	}
	if p.calls["c.csv"] != 1 {
		t.Errorf("processed %d times", p.calls["c.csv"])
	}
	r := s.receipt("c.csv")
	if len(r) != 5000 || r[4999][1] != "5001" {
		t.Errorf("receipt has %d lines", len(r))
	}
	if s.fileState(c) != store.FilePublished || !s.exists("elaborati/c.csv") || s.exists("c.csv") {
		t.Errorf("after run 2: state %q", s.fileState(c))
	}
	des, _ := os.ReadDir(filepath.Join(s.disk, "in", "esiti"))
	if len(des) != 1 {
		t.Errorf("esiti/ holds %d files (a temporary left?)", len(des))
	}
	if n := s.historyCount("prova.ok"); n != 1 {
		t.Errorf("%d effects in the history, want 1", n)
	}
	// Dropped again: a duplicate, not a second effect.
	s.put("c-bis.csv", c)
	st, _, err = s.run(in, p.process)
	if err != nil || st.Duplicates != 1 || p.calls["c-bis.csv"] != 0 {
		t.Errorf("same content again: %+v, %v, calls %v", st, err, p.calls)
	}
}

// stallReader serves reads until stalled, then blocks until released.
type stallReader struct {
	io.ReaderAt
	stall   *atomic.Bool
	release <-chan struct{}
}

func (r stallReader) ReadAt(b []byte, off int64) (int, error) {
	if off > 0 && r.stall.Load() {
		<-r.release
		return 0, errors.New("released")
	}
	return r.ReaderAt.ReadAt(b, off)
}

func (r stallReader) Close() error {
	if c, ok := r.ReaderAt.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// TestSFTPStalls: a server that accepts TCP and never answers, and one
// whose download stalls after the first bytes: the run fails within the
// configured timeout (not hanging), nothing is claimed, and once the
// server answers again the next run completes.
func TestSFTPStalls(t *testing.T) {
	t.Run("server never answers", func(t *testing.T) {
		t.Parallel()
		s := newSFTPInbox(t)
		addr := testnet.Blackhole(t)
		s.cfg.Address = addr
		s.put("a.csv", []byte("a;1\n"))
		p := &checkingProc{t: t, want: map[string][]byte{}, lines: 1, calls: map[string]int{}}
		st, el, err := s.run(s.inbox(), p.process)
		if err == nil || !strings.Contains(err.Error(), "non ha risposto entro 1s") {
			t.Errorf("Run: %+v, %v; want a clear timeout", st, err)
		}
		if el > 2*faultTimeout+faultTimeout/2 {
			t.Errorf("Run failed after %v, timeout %v", el, faultTimeout)
		}
		if len(p.calls) != 0 || !s.exists("a.csv") {
			t.Errorf("something was done: calls %v", p.calls)
		}
	})

	t.Run("download stalls", func(t *testing.T) {
		t.Parallel()
		var stall atomic.Bool
		release := make(chan struct{})
		s := newSFTPInbox(t, sftptest.WithReadHook(func(r io.ReaderAt) io.ReaderAt {
			return stallReader{ReaderAt: r, stall: &stall, release: release}
		}))
		t.Cleanup(func() { close(release) })
		a := bigText(400_000, "a")
		s.put("a.csv", a)
		p := &checkingProc{t: t, want: map[string][]byte{"a.csv": a}, lines: 1, calls: map[string]int{}}
		in := s.inbox()
		stall.Store(true)
		st, el, err := s.run(in, p.process)
		if err == nil || !strings.Contains(err.Error(), "server bloccato") {
			t.Errorf("Run: %+v, %v; want a stall reported", st, err)
		}
		if el > 2*faultTimeout+faultTimeout/2 {
			t.Errorf("Run failed after %v, timeout %v", el, faultTimeout)
		}
		t.Logf("run 1 (%v): %v", el.Round(time.Millisecond), err)
		if len(p.calls) != 0 || s.fileState(a) != "" || !s.exists("a.csv") {
			t.Errorf("a stalled download was claimed: calls %v, state %q", p.calls, s.fileState(a))
		}
		stall.Store(false)
		st, _, err = s.run(in, p.process)
		if err != nil || st.Accepted != 1 || p.calls["a.csv"] != 1 || !s.exists("elaborati/a.csv") {
			t.Errorf("run 2: %+v, %v, calls %v", st, err, p.calls)
		}
	})
}

// switchProxy forwards TCP connections to a target that can change.
type switchProxy struct {
	addr   string
	target atomic.Value // string
}

func startSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{addr: ln.Addr().String()}
	p.target.Store(target)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target.Load().(string))
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return p
}

// TestSFTPHostKeyChanged: the drop's address now leads to a server with
// another host key (a replaced server, or a man in the middle). The
// connection is refused with a clear error naming known_hosts, and nothing
// is read from that server or written to it.
func TestSFTPHostKeyChanged(t *testing.T) {
	s := newSFTPInbox(t)
	proxy := startSwitchProxy(t, s.srv.Addr)
	s.cfg.Address = proxy.addr
	s.cfg.KnownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "kh"), proxy.addr, s.srv.HostKey)
	a := []byte("a;1\n")
	s.put("a.csv", a)
	p := &checkingProc{t: t, want: map[string][]byte{"a.csv": a}, lines: 1, calls: map[string]int{}}
	if st, _, err := s.run(s.inbox(), p.process); err != nil || st.Accepted != 1 {
		t.Fatalf("run 1 on the known server: %+v, %v", st, err)
	}

	// Another server, which would accept the same client key, behind the
	// same address.
	imposter := sftptest.Start(t, s.client.PublicKey())
	os.MkdirAll(filepath.Join(imposter.Dir, "base", "in"), 0o755)
	os.WriteFile(filepath.Join(imposter.Dir, "base", "in", "b.csv"), []byte("b;1\n"), 0o644)
	proxy.target.Store(imposter.Addr)

	st, el, err := s.run(s.inbox(), p.process)
	if !errors.Is(err, sftpdrop.ErrHostKeyMismatch) || !strings.Contains(err.Error(), "non corrisponde a known_hosts") {
		t.Fatalf("run 2 against another host key: %+v, %v; want ErrHostKeyMismatch", st, err)
	}
	t.Logf("run 2 (%v): %v", el.Round(time.Millisecond), err)
	if st != (ingest.Stats{}) || p.calls["b.csv"] != 0 {
		t.Errorf("something was done: %+v, calls %v", st, p.calls)
	}
	des, _ := os.ReadDir(filepath.Join(imposter.Dir, "base", "in"))
	if len(des) != 1 || des[0].Name() != "b.csv" {
		t.Errorf("the other server's folder now holds %v", des)
	}
}
