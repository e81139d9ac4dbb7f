package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/esito"
	"anprsec/secret"
	"anprsec/store"
)

// env is a drop folder "in" on a local drop, a store and an Inbox on them.
type env struct {
	t     *testing.T
	root  string // drop root
	dir   string // root/in, the inbox folder
	spool string
	st    *store.Store
	in    *ingest.Inbox
}

const maxSize = 1024

func newEnv(t *testing.T) *env {
	t.Helper()
	tmp := t.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(tmp, "data"), Key: bytes.Repeat([]byte{3}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root := filepath.Join(tmp, "drop")
	d, err := drop.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: root, dir: filepath.Join(root, "in"), spool: filepath.Join(tmp, "spool"), st: st}
	e.in = &ingest.Inbox{Drop: d, Store: st, Kind: "test-ingest", Dir: "in", Exts: []string{".xlsx", ".csv"},
		MaxSize: maxSize, Settle: 0, SpoolDir: e.spool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// put writes a file into the inbox folder.
func (e *env) put(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// age sets a file's mtime d in the past.
func (e *env) age(name string, d time.Duration) {
	e.t.Helper()
	when := time.Now().Add(-d)
	if err := os.Chtimes(filepath.Join(e.dir, name), when, when); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) run(p ingest.Processor) (ingest.Stats, error) {
	e.t.Helper()
	return e.in.Run(context.Background(), p)
}

func (e *env) mustRun(p ingest.Processor) ingest.Stats {
	e.t.Helper()
	st, err := e.run(p)
	if err != nil {
		e.t.Fatalf("Run: %v", err)
	}
	return st
}

func (e *env) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(e.dir, rel))
	return err == nil
}

func (e *env) read(rel string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, rel))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// receipt reads esiti/<name>.esito.csv and returns its data lines.
func (e *env) receipt(name string) [][]string {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.dir, "esiti", name+".esito.csv"))
	if err != nil {
		e.t.Fatalf("receipt of %s: %v", name, err)
	}
	if !strings.HasPrefix(string(data), esito.Header) {
		e.t.Fatalf("receipt of %s has no header: %q", name, data)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = ';'
	r.FieldsPerRecord = 5
	recs, err := r.ReadAll()
	if err != nil {
		e.t.Fatalf("receipt of %s: %v", name, err)
	}
	return recs[1:]
}

// refusedWhole checks a receipt made of one riga-0 SCARTATO line with code.
func (e *env) refusedWhole(name, code string) {
	e.t.Helper()
	recs := e.receipt(name)
	if len(recs) != 1 || recs[0][1] != "0" || recs[0][2] != esito.Scartato || recs[0][3] != code {
		e.t.Errorf("receipt of %s = %q, want one riga 0 SCARTATO %s line", name, recs, code)
	}
}

// ls lists a subfolder of the inbox folder (names, sorted; "" = the folder).
func (e *env) ls(sub string) []string {
	e.t.Helper()
	des, err := os.ReadDir(filepath.Join(e.dir, sub))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		if !d.IsDir() {
			out = append(out, d.Name())
		}
	}
	sort.Strings(out)
	return out
}

// check verifies what every case must leave: an intact history chain and
// no local copy in the spool.
func (e *env) check() {
	e.t.Helper()
	if _, err := e.st.VerifyHistory(); err != nil {
		e.t.Errorf("history verify: %v", err)
	}
	var left []string
	filepath.WalkDir(e.spool, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		e.t.Errorf("spool holds %v after the run", left)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x", h)
}

// proc is a test Processor that counts its calls.
type proc struct {
	calls atomic.Int32
	fn    func(ctx context.Context, f *ingest.File) (ingest.Result, error)
}

func (p *proc) process(ctx context.Context, f *ingest.File) (ingest.Result, error) {
	p.calls.Add(1)
	return p.fn(ctx, f)
}

// okProc commits one chunk writing one OK line (with the file's name) and a
// history entry, like a real processor.
func okProc() *proc {
	return &proc{fn: func(_ context.Context, f *ingest.File) (ingest.Result, error) {
		if _, err := os.Stat(f.Local); err != nil {
			return ingest.Result{}, fmt.Errorf("local copy: %w", err)
		}
		err := f.Commit(0, func(tx *store.Tx, buf *bytes.Buffer) (int, int, error) {
			if err := tx.Record(f.Source("test", "Foglio", 2), "prova.ok", "file", f.SHA256, f.Name); err != nil {
				return 0, 0, err
			}
			esito.Append(buf, esito.Line{Sheet: "Foglio", Row: 2, Outcome: esito.OK, Code: "OK", Message: f.Name})
			return 1, 0, nil
		})
		return ingest.Result{}, err
	}}
}

func refuseProc() *proc {
	return &proc{fn: func(context.Context, *ingest.File) (ingest.Result, error) {
		return ingest.Result{Refused: true, Code: "FOGLIO_MANCANTE", Message: "manca il foglio"}, nil
	}}
}

var errBoom = errors.New("boom: store unavailable")

func errProc() *proc {
	return &proc{fn: func(context.Context, *ingest.File) (ingest.Result, error) { return ingest.Result{}, errBoom }}
}

func panicProc() *proc {
	return &proc{fn: func(context.Context, *ingest.File) (ingest.Result, error) { panic("processor exploded") }}
}

func TestSkipped(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{".hidden.xlsx", true},
		{".a.xlsx.tmp", true}, // drop.TempName
		{"a.xlsx.part", true},
		{"a.xlsx.PART", true},
		{"a.xlsx.Part", true},
		{"a.xlsx.tmp", true},
		{"a.xlsx.TMP", true},
		{"a.xlsx.filepart", true},
		{"a.xlsx.FilePart", true},
		{"a.xlsx", false},
		{"A.XLSX", false},
		{"part.xlsx", false},
		{"a.tmp.xlsx", false},
		{"apart", false},
	} {
		if got := ingest.Skipped(tc.name); got != tc.want {
			t.Errorf("Skipped(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSkippedNamesLeftInPlace(t *testing.T) {
	e := newEnv(t)
	names := []string{".hidden.xlsx", "a.xlsx.part", "a.xlsx.tmp", "a.xlsx.filepart", "b.xlsx.PART", "c.XLSX.FilePart"}
	for _, n := range names {
		e.put(n, "contenuto "+n)
	}
	p := okProc()
	st := e.mustRun(p.process)
	if p.calls.Load() != 0 || st != (ingest.Stats{}) {
		t.Errorf("calls = %d, stats = %+v; want nothing done", p.calls.Load(), st)
	}
	got := e.ls("")
	sort.Strings(names)
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("inbox holds %v, want %v", got, names)
	}
	for _, sub := range []string{"esiti", "elaborati", "scartati"} {
		if l := e.ls(sub); len(l) > 0 {
			t.Errorf("%s/ = %v, want empty", sub, l)
		}
	}
	e.check()
}

// growingDrop appends to a file right after opening it, like an upload
// still in progress.
type growingDrop struct {
	drop.Drop
	root  string
	grows int
}

func (g *growingDrop) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := g.Drop.Open(ctx, name)
	if err == nil && g.grows > 0 {
		g.grows--
		f, ferr := os.OpenFile(filepath.Join(g.root, filepath.FromSlash(name)), os.O_APPEND|os.O_WRONLY, 0)
		if ferr != nil {
			return nil, ferr
		}
		f.WriteString(" altro")
		f.Close()
	}
	return rc, err
}

func TestFileGrowingWhileRead(t *testing.T) {
	e := newEnv(t)
	g := &growingDrop{Drop: e.in.Drop, root: e.root, grows: 1}
	e.in.Drop = g
	e.put("a.xlsx", "inizio")
	p := okProc()
	st := e.mustRun(p.process)
	if p.calls.Load() != 0 || st.Files != 0 || !e.exists("a.xlsx") || len(e.ls("esiti")) != 0 {
		t.Fatalf("a file that grew while read was processed: calls %d, stats %+v", p.calls.Load(), st)
	}
	e.mustRun(p.process)
	if p.calls.Load() != 1 || e.read("elaborati/a.xlsx") != "inizio altro" {
		t.Errorf("file not processed once complete (calls %d)", p.calls.Load())
	}
	e.check()
}

func TestRefusedUnread(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "passwd")
	os.WriteFile(secret, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644)
	for _, tc := range []struct {
		name  string // file name in the inbox
		setup func(e *env)
		code  string
	}{
		{"grande.xlsx", func(e *env) { e.put("grande.xlsx", strings.Repeat("x", maxSize+1)) }, "FILE_TROPPO_GRANDE"},
		{"vuoto.xlsx", func(e *env) { e.put("vuoto.xlsx", "") }, "FILE_VUOTO"},
		{"nota.txt", func(e *env) { e.put("nota.txt", "ciao") }, "TIPO_FILE"},
		{"senza-estensione", func(e *env) { e.put("senza-estensione", "ciao") }, "TIPO_FILE"},
		{"link-interno.xlsx", func(e *env) {
			os.MkdirAll(filepath.Join(e.root, "altro"), 0o755)
			os.WriteFile(filepath.Join(e.root, "altro", "vero.xlsx"), []byte("vero"), 0o644)
			if err := os.Symlink(filepath.Join(e.root, "altro", "vero.xlsx"), filepath.Join(e.dir, "link-interno.xlsx")); err != nil {
				t.Fatal(err)
			}
		}, "NON_FILE"},
		{"link-relativo.xlsx", func(e *env) {
			os.WriteFile(filepath.Join(e.root, "vero2.xlsx"), []byte("vero2"), 0o644)
			if err := os.Symlink("../vero2.xlsx", filepath.Join(e.dir, "link-relativo.xlsx")); err != nil {
				t.Fatal(err)
			}
		}, "NON_FILE"},
		{"passwd.xlsx", func(e *env) {
			if err := os.Symlink(secret, filepath.Join(e.dir, "passwd.xlsx")); err != nil {
				t.Fatal(err)
			}
		}, "NON_FILE"},
		{"etc-passwd.xlsx", func(e *env) {
			if err := os.Symlink("/etc/passwd", filepath.Join(e.dir, "etc-passwd.xlsx")); err != nil {
				t.Fatal(err)
			}
		}, "NON_FILE"},
		{"rotto.xlsx", func(e *env) {
			if err := os.Symlink(filepath.Join(e.root, "non-esiste"), filepath.Join(e.dir, "rotto.xlsx")); err != nil {
				t.Fatal(err)
			}
		}, "NON_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			etcBefore, _ := os.ReadFile("/etc/passwd")
			tc.setup(e)
			p := okProc()
			st := e.mustRun(p.process)
			if p.calls.Load() != 0 {
				t.Errorf("processor called %d times", p.calls.Load())
			}
			if st.Refused != 1 || st.Accepted != 0 {
				t.Errorf("stats = %+v, want 1 refused", st)
			}
			e.refusedWhole(tc.name, tc.code)
			if e.exists(tc.name) {
				t.Errorf("%s left in the inbox", tc.name)
			}
			fi, err := os.Lstat(filepath.Join(e.dir, "scartati", tc.name))
			if err != nil {
				t.Fatalf("not moved to scartati/: %v", err)
			}
			if tc.code == "NON_FILE" {
				if fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("scartati/%s is not the symlink itself (mode %v)", tc.name, fi.Mode())
				}
				recs := e.receipt(tc.name)
				if strings.Contains(fmt.Sprint(recs), "root:x:0") {
					t.Error("the receipt shows the symlink target's content")
				}
			}
			// Targets untouched.
			if b, _ := os.ReadFile(secret); string(b) != "root:x:0:0:root:/root:/bin/bash\n" {
				t.Errorf("symlink target changed: %q", b)
			}
			if etcAfter, _ := os.ReadFile("/etc/passwd"); !bytes.Equal(etcBefore, etcAfter) {
				t.Error("/etc/passwd changed")
			}
			if b, err := os.ReadFile(filepath.Join(e.root, "altro", "vero.xlsx")); err == nil && string(b) != "vero" {
				t.Errorf("inner symlink target changed: %q", b)
			}
			e.check()
		})
	}
}

func TestDuplicateContent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		samePass bool
	}{{"same pass", true}, {"later pass", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := okProc()
			e.put("a.xlsx", "stesso contenuto")
			if tc.samePass {
				e.put("b.xlsx", "stesso contenuto")
			} else {
				e.mustRun(p.process)
				e.put("b.xlsx", "stesso contenuto")
			}
			st := e.mustRun(p.process)
			if p.calls.Load() != 1 {
				t.Errorf("processor called %d times, want once", p.calls.Load())
			}
			if st.Duplicates != 1 {
				t.Errorf("stats = %+v, want 1 duplicate", st)
			}
			recs := e.receipt("a.xlsx")
			if len(recs) != 1 || recs[0][2] != esito.OK || recs[0][4] != "a.xlsx" {
				t.Errorf("receipt of a.xlsx = %q", recs)
			}
			e.refusedWhole("b.xlsx", "DUPLICATO")
			if m := e.receipt("b.xlsx")[0][4]; !strings.Contains(m, "in/a.xlsx") {
				t.Errorf("duplicate message %q does not name the first file", m)
			}
			if !e.exists("elaborati/a.xlsx") || !e.exists("scartati/b.xlsx") || e.exists("b.xlsx") || e.exists("a.xlsx") {
				t.Errorf("elaborati = %v, scartati = %v, inbox = %v", e.ls("elaborati"), e.ls("scartati"), e.ls(""))
			}
			e.st.View(func(tx *store.Tx) error {
				r, err := tx.File(sha("stesso contenuto"))
				if err != nil || r.State != store.FilePublished || r.Path != "in/a.xlsx" || r.Moved != "in/elaborati/a.xlsx" || r.Attempts != 0 {
					t.Errorf("file record = %+v, %v", r, err)
				}
				return nil
			})
			e.check()
		})
	}
}

// TestCanonicalContentIdentifiesTheFile: with Inbox.Canonical, a file is
// identified by the SHA-256 of its canonical content: a second file whose
// canonical content is the same is DUPLICATO although its bytes differ,
// one whose canonical content differs is processed, and a nil canonical
// content leaves the raw SHA-256.
func TestCanonicalContentIdentifiesTheFile(t *testing.T) {
	e := newEnv(t)
	e.in.Canonical = func(name string, data []byte) []byte {
		if strings.HasSuffix(name, ".xlsx") {
			return nil
		}
		return bytes.ToLower(data)
	}
	p := okProc()
	e.put("a.csv", "Stesso Contenuto")
	e.put("r.xlsx", "Grezzo")
	e.mustRun(p.process)
	e.put("b.csv", "STESSO contenuto")
	e.put("c.csv", "altro contenuto")
	st := e.mustRun(p.process)
	if p.calls.Load() != 3 || st.Duplicates != 1 {
		t.Errorf("processor called %d times, stats %+v; want 3 calls and b.csv a duplicate", p.calls.Load(), st)
	}
	e.refusedWhole("b.csv", "DUPLICATO")
	if m := e.receipt("b.csv")[0][4]; !strings.Contains(m, "in/a.csv") {
		t.Errorf("duplicate message %q does not name the first file", m)
	}
	e.st.View(func(tx *store.Tx) error {
		if r, err := tx.File(sha("stesso contenuto")); err != nil || r.Path != "in/a.csv" {
			t.Errorf("record of the canonical content: %+v, %v", r, err)
		}
		if r, err := tx.File(sha("Grezzo")); err != nil || r.Path != "in/r.xlsx" {
			t.Errorf("record of the raw content: %+v, %v", r, err)
		}
		return nil
	})
}

func TestProcessorRefusal(t *testing.T) {
	e := newEnv(t)
	e.put("a.xlsx", "non un foglio")
	p := refuseProc()
	st := e.mustRun(p.process)
	if p.calls.Load() != 1 || st.Refused != 1 || st.Files != 1 {
		t.Errorf("calls %d, stats %+v", p.calls.Load(), st)
	}
	e.refusedWhole("a.xlsx", "FOGLIO_MANCANTE")
	if !e.exists("scartati/a.xlsx") || e.exists("a.xlsx") {
		t.Errorf("scartati = %v, inbox = %v", e.ls("scartati"), e.ls(""))
	}
	// Refused whole with nothing applied, the content was not processed:
	// the same content dropped again (say with its signature fixed) is
	// read again, and here refused again for the same reason.
	e.put("a2.xlsx", "non un foglio")
	st = e.mustRun(p.process)
	if p.calls.Load() != 2 || st.Duplicates != 0 || st.Refused != 1 {
		t.Errorf("second drop: calls %d, stats %+v", p.calls.Load(), st)
	}
	e.refusedWhole("a2.xlsx", "FOGLIO_MANCANTE")
	// Read again once more, it is accepted now (its chunks committed as
	// a new content's), and the receipt holds only this reading's lines.
	e.put("a3.xlsx", "non un foglio")
	if st := e.mustRun(okProc().process); st.Accepted != 1 || st.Refused != 0 {
		t.Errorf("third drop, accepted: stats %+v", st)
	}
	if recs := e.receipt("a3.xlsx"); len(recs) != 1 || recs[0][2] != esito.OK {
		t.Errorf("receipt of the third drop = %q", recs)
	}
	e.check()
}

func TestFailureThenRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    *proc
		errWant string
	}{
		{"error", errProc(), errBoom.Error()},
		{"panic", panicProc(), "panic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.put("a.xlsx", "contenuto")
			e.put("b.xlsx", "altro contenuto")
			st, err := e.run(tc.fail.process)
			if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.errWant)
			}
			if tc.fail.calls.Load() != 2 {
				t.Errorf("a failing file stopped the pass: %d calls, want 2 (both files tried)", tc.fail.calls.Load())
			}
			if st.Accepted != 0 || !e.exists("a.xlsx") || !e.exists("b.xlsx") || len(e.ls("esiti")) != 0 {
				t.Errorf("after a failure: stats %+v, inbox %v, esiti %v", st, e.ls(""), e.ls("esiti"))
			}
			e.check()
			p := okProc()
			st = e.mustRun(p.process)
			if p.calls.Load() != 2 || st.Accepted != 2 || st.RowsOK != 2 {
				t.Errorf("retry: calls %d, stats %+v", p.calls.Load(), st)
			}
			if e.receipt("a.xlsx")[0][2] != esito.OK || !e.exists("elaborati/a.xlsx") {
				t.Errorf("retry did not publish a.xlsx: %v", e.ls("elaborati"))
			}
			e.st.View(func(tx *store.Tx) error {
				r, _ := tx.File(sha("contenuto"))
				if r.Attempts != 1 { // only the failed pass counts
					t.Errorf("attempts = %d, want 1", r.Attempts)
				}
				return nil
			})
			e.check()
		})
	}
}

// A file whose processing fails with the same error at every attempt is
// refused after MaxAttempts of them, at the pass of the last: its receipt
// says ERRORE_ELABORAZIONE with the error and the count, it moves to
// scartati/, and later passes leave it alone.
func TestFileFailingWithTheSameErrorIsRefusedAfterMaxAttempts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    *proc
		max     int // Inbox.MaxAttempts (drop.max_attempts); 0 = the default
		errWant string
	}{
		{"error", errProc(), 0, errBoom.Error()},
		{"panic", panicProc(), 0, "processor exploded"},
		{"configured", errProc(), 5, errBoom.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.in.MaxAttempts = tc.max
			want := tc.max
			if want == 0 {
				want = ingest.DefaultMaxAttempts
			}
			e.put("a.xlsx", "contenuto difettoso")
			for i := 1; i < want; i++ {
				if _, err := e.run(tc.fail.process); err == nil {
					t.Fatalf("pass %d: no error", i)
				}
				if !e.exists("a.xlsx") {
					t.Fatalf("pass %d: file moved after a failure", i)
				}
			}
			st := e.mustRun(tc.fail.process)
			if n := tc.fail.calls.Load(); n != int32(want) {
				t.Errorf("processor called %d times, want %d", n, want)
			}
			if st.Refused != 1 {
				t.Errorf("stats = %+v, want 1 refused", st)
			}
			e.refusedWhole("a.xlsx", ingest.CodeGivenUp)
			if m := e.receipt("a.xlsx")[0][4]; !strings.Contains(m, fmt.Sprintf("%d volte", want)) || !strings.Contains(m, tc.errWant) {
				t.Errorf("message %q does not say how many attempts failed and with which error", m)
			}
			if !e.exists("scartati/a.xlsx") || e.exists("a.xlsx") {
				t.Errorf("scartati = %v, inbox = %v", e.ls("scartati"), e.ls(""))
			}
			// Nothing more happens on later passes.
			st = e.mustRun(tc.fail.process)
			if st != (ingest.Stats{}) || tc.fail.calls.Load() != int32(want) {
				t.Errorf("a later pass did %+v", st)
			}
			e.check()
		})
	}
}

// A failure of the environment (a full disk, a drop that does not
// answer, the network) is retried at every run and never costs the file
// an attempt: once the environment is back the file is processed.
func TestEnvironmentFailuresNeverCostTheFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"disk full", &fs.PathError{Op: "write", Path: "/var/spool/in-1.xlsx", Err: syscall.ENOSPC}},
		{"store on a full disk", fmt.Errorf("store: %w", errors.New("While writing to the value log err: write 000001.vlog: no space left on device"))},
		{"drop unavailable", fmt.Errorf("reading the signature: %w", drop.Unavailable(errors.New("sftp open a.xlsx.p7s on sftp://x@h/: connection lost")))},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !ingest.Environmental(tc.err) {
				t.Fatalf("Environmental(%v) = false", tc.err)
			}
			e := newEnv(t)
			e.put("a.xlsx", "contenuto")
			fail := &proc{fn: func(context.Context, *ingest.File) (ingest.Result, error) { return ingest.Result{}, tc.err }}
			for i := 0; i < 2*ingest.DefaultMaxAttempts; i++ {
				if _, err := e.run(fail.process); err == nil {
					t.Fatalf("pass %d: no error", i)
				}
			}
			if !e.exists("a.xlsx") || len(e.ls("esiti")) != 0 {
				t.Fatalf("after failures of the environment: inbox %v, esiti %v", e.ls(""), e.ls("esiti"))
			}
			e.st.View(func(tx *store.Tx) error {
				if r, err := tx.File(sha("contenuto")); err != nil || r.Attempts != 0 {
					t.Errorf("record %+v, %v: want no attempt counted", r, err)
				}
				return nil
			})
			if st := e.mustRun(okProc().process); st.Accepted != 1 || !e.exists("elaborati/a.xlsx") {
				t.Errorf("once the environment is back: stats %+v, elaborati %v", st, e.ls("elaborati"))
			}
			e.check()
		})
	}
	if ingest.Environmental(errBoom) || ingest.Environmental(errors.New("panic while processing: index out of range")) {
		t.Error("an error of the file's own processing is taken for the environment's")
	}
}

// Only attempts in a row with the same error count: a different error
// starts the count again.
func TestADifferentErrorStartsTheCountAgain(t *testing.T) {
	e := newEnv(t)
	e.put("a.xlsx", "contenuto")
	errA, errB := errors.New("riga 7: errore A"), errors.New("riga 9: errore B")
	seq := []error{errA, errA, errB, errB, errB}
	var i atomic.Int32
	p := &proc{fn: func(context.Context, *ingest.File) (ingest.Result, error) {
		return ingest.Result{}, seq[i.Add(1)-1]
	}}
	for pass := 1; pass < len(seq); pass++ {
		if _, err := e.run(p.process); err == nil {
			t.Fatalf("pass %d: no error", pass)
		}
		if !e.exists("a.xlsx") {
			t.Fatalf("pass %d: refused, though no error came %d times in a row", pass, ingest.DefaultMaxAttempts)
		}
	}
	e.mustRun(p.process)
	e.refusedWhole("a.xlsx", ingest.CodeGivenUp)
	if m := e.receipt("a.xlsx")[0][4]; !strings.Contains(m, errB.Error()) || strings.Contains(m, errA.Error()) {
		t.Errorf("message %q, want the error of the last attempts", m)
	}
}

// TestGiveUpKeepsCommittedRows: a file whose first chunk was committed and
// whose later chunks keep failing is given up after DefaultMaxAttempts. The rows of
// the committed chunk are in the store, so the receipt must still report
// them (otherwise the receipt says "whole file refused" while its first rows
// were applied).
func TestGiveUpKeepsCommittedRows(t *testing.T) {
	e := newEnv(t)
	e.put("a.xlsx", "contenuto")
	p := &proc{}
	p.fn = func(_ context.Context, f *ingest.File) (ingest.Result, error) {
		if err := f.Commit(0, func(tx *store.Tx, buf *bytes.Buffer) (int, int, error) {
			if err := tx.Record(f.Source("test", "Foglio", 2), "prova.ok", "file", f.SHA256, "riga 2 applicata"); err != nil {
				return 0, 0, err
			}
			esito.Append(buf, esito.Line{Sheet: "Foglio", Row: 2, Outcome: esito.OK, Code: "CREATA", Message: "riga 2 applicata"})
			return 1, 0, nil
		}); err != nil {
			return ingest.Result{}, err
		}
		return ingest.Result{}, f.Commit(1, func(*store.Tx, *bytes.Buffer) (int, int, error) { return 0, 0, errBoom })
	}
	for i := 0; i <= ingest.DefaultMaxAttempts; i++ {
		e.run(p.process)
	}
	if e.exists("a.xlsx") {
		t.Fatal("file still in the inbox after DefaultMaxAttempts+1 passes")
	}
	recs := e.receipt("a.xlsx")
	found := false
	for _, r := range recs {
		if r[0] == "Foglio" && r[1] == "2" && r[2] == esito.OK {
			found = true
		}
	}
	if !found {
		t.Errorf("BUG: the file was given up after its chunk 0 was committed (row 2 applied, history entry written), "+
			"but the receipt only says %q: the committed row is not reported", recs)
	}
	e.check()
}

func TestNoOverwriteInElaborati(t *testing.T) {
	e := newEnv(t)
	p := okProc()
	e.put("a.xlsx", "primo")
	e.mustRun(p.process)
	e.put("a.xlsx", "secondo")
	e.mustRun(p.process)
	e.put("a.xlsx", "terzo")
	e.mustRun(p.process)
	got := e.ls("elaborati")
	if len(got) != 3 {
		t.Fatalf("elaborati = %v, want 3 files", got)
	}
	if e.read("elaborati/a.xlsx") != "primo" {
		t.Errorf("elaborati/a.xlsx = %q, want the first file", e.read("elaborati/a.xlsx"))
	}
	contents := map[string]bool{}
	for _, n := range got {
		contents[e.read("elaborati/"+n)] = true
		if !strings.HasPrefix(n, "a") || !strings.HasSuffix(n, ".xlsx") {
			t.Errorf("suffixed name %q does not keep the name and extension", n)
		}
	}
	if !contents["primo"] || !contents["secondo"] || !contents["terzo"] {
		t.Errorf("elaborati contents = %v", contents)
	}
	if p.calls.Load() != 3 {
		t.Errorf("calls = %d", p.calls.Load())
	}
	// Each file's receipt is kept too (the current one under the plain name).
	if r := e.ls("esiti"); len(r) != 3 {
		t.Errorf("esiti = %v, want 3 receipts", r)
	}
	if recs := e.receipt("a.xlsx"); len(recs) != 1 || recs[0][4] != "a.xlsx" {
		t.Errorf("current receipt = %q", recs)
	}
	e.check()
}

// TestNoOverwriteInScartati: files refused unread under the same name must
// all be kept in scartati/. moveOut suffixes a refused-unread file with a
// timestamp cut to 12 characters ("20060102-150", ten-minute resolution) and
// does not check that the suffixed name is free, so a third file refused
// within ten minutes replaces the second.
func TestNoOverwriteInScartati(t *testing.T) {
	e := newEnv(t)
	fixed := time.Now().Truncate(10 * time.Minute) // all three within the same ten minutes
	e.in.Now = func() time.Time { return fixed }
	p := okProc()
	for i, content := range []string{"uno", "due", "tre"} {
		e.put("nota.txt", content)
		e.age("nota.txt", time.Duration(3-i)*time.Hour) // mtimes before the fixed clock
		fixed = fixed.Add(time.Minute)
		e.mustRun(p.process)
	}
	got := e.ls("scartati")
	contents := map[string]bool{}
	for _, n := range got {
		contents[e.read("scartati/"+n)] = true
	}
	if len(got) != 3 || !contents["uno"] || !contents["due"] || !contents["tre"] {
		t.Errorf("BUG: three files named nota.txt refused within ten minutes: scartati/ = %v holding %v; "+
			"a refused file was overwritten", got, contents)
	}
	e.check()
}

// TestResumeFromCheckpoint: chunks committed before a failure are not run
// again, and the receipt has every chunk once.
func TestResumeFromCheckpoint(t *testing.T) {
	e := newEnv(t)
	e.put("a.xlsx", "quattro chunk")
	var fnCalls [2][4]int
	chunkFn := func(pass, k int) func(tx *store.Tx, buf *bytes.Buffer) (int, int, error) {
		return func(tx *store.Tx, buf *bytes.Buffer) (int, int, error) {
			fnCalls[pass][k]++
			if err := tx.Record(store.Source{Actor: "test", File: "in/a.xlsx", Sheet: "Foglio", Row: k + 2}, "prova.chunk", "file", fmt.Sprint(k), ""); err != nil {
				return 0, 0, err
			}
			esito.Append(buf,
				esito.Line{Sheet: "Foglio", Row: 2 * (k + 1), Outcome: esito.OK, Code: "OK", Message: fmt.Sprintf("pass %d chunk %d", pass, k)},
				esito.Line{Sheet: "Foglio", Row: 2*(k+1) + 1, Outcome: esito.Scartato, Code: "KO", Message: fmt.Sprintf("pass %d chunk %d", pass, k)})
			return 1, 1, nil
		}
	}
	first := &proc{fn: func(_ context.Context, f *ingest.File) (ingest.Result, error) {
		for k := 0; k < 2; k++ {
			if err := f.Commit(k, chunkFn(0, k)); err != nil {
				return ingest.Result{}, err
			}
		}
		return ingest.Result{}, errBoom // crash after chunk 1
	}}
	if _, err := e.run(first.process); !errors.Is(err, errBoom) {
		t.Fatalf("first pass: %v", err)
	}
	if len(e.ls("esiti")) != 0 || !e.exists("a.xlsx") {
		t.Fatal("receipt written or file moved after a failed pass")
	}
	var outOfOrder error
	second := &proc{fn: func(_ context.Context, f *ingest.File) (ingest.Result, error) {
		outOfOrder = f.Commit(3, chunkFn(1, 3)) // checkpoint is 2: refused
		for k := 0; k < 4; k++ {
			if err := f.Commit(k, chunkFn(1, k)); err != nil {
				return ingest.Result{}, err
			}
		}
		return ingest.Result{}, nil
	}}
	st := e.mustRun(second.process)
	if outOfOrder == nil {
		t.Error("Commit(3) with checkpoint 2 did not fail")
	}
	if fnCalls != [2][4]int{{1, 1, 0, 0}, {0, 0, 1, 1}} {
		t.Errorf("chunk fn calls = %v, want chunks 0,1 once in pass 1 and 2,3 once in pass 2", fnCalls)
	}
	if st.RowsOK != 4 || st.RowsRefused != 4 || st.Accepted != 1 {
		t.Errorf("stats = %+v, want 4 rows OK and 4 refused", st)
	}
	recs := e.receipt("a.xlsx")
	var got []string
	for _, r := range recs {
		got = append(got, r[1]+":"+r[4])
	}
	want := []string{"2:pass 0 chunk 0", "3:pass 0 chunk 0", "4:pass 0 chunk 1", "5:pass 0 chunk 1",
		"6:pass 1 chunk 2", "7:pass 1 chunk 2", "8:pass 1 chunk 3", "9:pass 1 chunk 3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("receipt lines = %q, want %q", got, want)
	}
	hist, err := e.st.History(0, 0, func(en *store.Entry) bool { return en.Action == "prova.chunk" })
	if err != nil || len(hist) != 4 {
		t.Errorf("chunk history entries = %d, %v; want 4 (one per chunk)", len(hist), err)
	}
	e.st.View(func(tx *store.Tx) error {
		r, err := tx.File(sha("quattro chunk"))
		if err != nil || r.Chunks != 4 || r.Rows != 8 || r.Accepted != 4 || r.Refused != 4 || r.State != store.FilePublished {
			t.Errorf("file record = %+v, %v", r, err)
		}
		return nil
	})
	e.check()
}

// TestResumeAfterFailedChunk: a chunk whose fn fails commits nothing (no
// store change, no receipt lines, no history) and is run again next pass.
func TestResumeAfterFailedChunk(t *testing.T) {
	e := newEnv(t)
	e.put("a.xlsx", "contenuto")
	fail := true
	p := &proc{fn: func(_ context.Context, f *ingest.File) (ingest.Result, error) {
		return ingest.Result{}, f.Commit(0, func(tx *store.Tx, buf *bytes.Buffer) (int, int, error) {
			if err := tx.Record(f.Source("test", "Foglio", 2), "prova.ok", "file", "x", ""); err != nil {
				return 0, 0, err
			}
			esito.Append(buf, esito.Line{Sheet: "Foglio", Row: 2, Outcome: esito.OK, Code: "OK", Message: "x"})
			if fail {
				return 0, 0, errBoom
			}
			return 1, 0, nil
		})
	}}
	if _, err := e.run(p.process); !errors.Is(err, errBoom) {
		t.Fatalf("first pass: %v", err)
	}
	if h, _ := e.st.History(0, 0, func(en *store.Entry) bool { return en.Action == "prova.ok" }); len(h) != 0 {
		t.Errorf("a failed chunk left %d history entries", len(h))
	}
	fail = false
	e.mustRun(p.process)
	if recs := e.receipt("a.xlsx"); len(recs) != 1 {
		t.Errorf("receipt = %q, want one line", recs)
	}
	if h, _ := e.st.History(0, 0, func(en *store.Entry) bool { return en.Action == "prova.ok" }); len(h) != 1 {
		t.Errorf("history entries of the chunk = %d, want 1", len(h))
	}
	e.check()
}

func TestOrderAndMixedFolder(t *testing.T) {
	e := newEnv(t)
	e.put("c.csv", "c")
	e.put("a.xlsx", "a")
	e.put("b.XLSX", "b") // extension case ignored
	e.put("z.part", "in arrivo")
	os.MkdirAll(filepath.Join(e.dir, "sotto.xlsx"), 0o755) // a folder is ignored
	var order []string
	p := okProc()
	inner := p.fn
	p.fn = func(ctx context.Context, f *ingest.File) (ingest.Result, error) {
		order = append(order, f.Name)
		return inner(ctx, f)
	}
	st := e.mustRun(p.process)
	if strings.Join(order, ",") != "a.xlsx,b.XLSX,c.csv" {
		t.Errorf("order = %v", order)
	}
	if st.Files != 3 || st.Accepted != 3 || st.RowsOK != 3 {
		t.Errorf("stats = %+v", st)
	}
	if got := e.ls(""); strings.Join(got, ",") != "z.part" {
		t.Errorf("inbox left = %v", got)
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "sotto.xlsx")); err != nil || !fi.IsDir() {
		t.Error("a folder named like an input file was touched")
	}
	e.check()
}

func TestCancelledContext(t *testing.T) {
	e := newEnv(t)
	e.put("a.xlsx", "a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := okProc()
	st, err := e.in.Run(ctx, p.process)
	if err != nil || p.calls.Load() != 0 || st.Files != 0 || !e.exists("a.xlsx") {
		t.Errorf("cancelled run: %+v, %v, calls %d", st, err, p.calls.Load())
	}
	e.check()
}

// faultyDrop makes Rename fail, after or instead of renaming: a crash
// between the receipt and the move, or right after the move.
type faultyDrop struct {
	drop.Drop
	renameThenFail bool // rename, then report an error (crash after the move)
	fail           int  // how many Renames fail
}

func (d *faultyDrop) Rename(ctx context.Context, from, to string) error {
	if d.fail == 0 {
		return d.Drop.Rename(ctx, from, to)
	}
	d.fail--
	if d.renameThenFail {
		if err := d.Drop.Rename(ctx, from, to); err != nil {
			return err
		}
	}
	return errors.New("simulated crash around the move")
}

// TestCrashBeforeMove: the receipt is written, the move fails; the next pass
// publishes the file without processing it again.
func TestCrashBeforeMove(t *testing.T) {
	e := newEnv(t)
	fd := &faultyDrop{Drop: e.in.Drop, fail: 1}
	e.in.Drop = fd
	e.put("a.xlsx", "contenuto")
	p := okProc()
	if _, err := e.run(p.process); err == nil {
		t.Fatal("no error from a failed move")
	}
	if !e.exists("a.xlsx") {
		t.Fatal("file moved although the move failed")
	}
	st := e.mustRun(p.process)
	if p.calls.Load() != 1 {
		t.Errorf("processor called %d times, want once", p.calls.Load())
	}
	if st.Accepted != 1 || !e.exists("elaborati/a.xlsx") || e.exists("a.xlsx") {
		t.Errorf("stats %+v, elaborati %v, inbox %v", st, e.ls("elaborati"), e.ls(""))
	}
	if recs := e.receipt("a.xlsx"); len(recs) != 1 || recs[0][2] != esito.OK {
		t.Errorf("receipt = %q", recs)
	}
	e.st.View(func(tx *store.Tx) error {
		r, _ := tx.File(sha("contenuto"))
		if r.State != store.FilePublished || r.Moved != "in/elaborati/a.xlsx" {
			t.Errorf("file record = %+v", r)
		}
		return nil
	})
	e.check()
}

// TestCrashAfterMove: the file is moved to elaborati/ but the process dies
// before the record is marked published. The record stays "committed" for
// ever (the file is no longer listed), so the same content dropped again is
// not refused as DUPLICATO: it gets a full copy of the first receipt and is
// moved to elaborati/ as if it had been processed.
func TestCrashAfterMove(t *testing.T) {
	e := newEnv(t)
	fd := &faultyDrop{Drop: e.in.Drop, fail: 1, renameThenFail: true}
	e.in.Drop = fd
	e.put("a.xlsx", "contenuto")
	p := okProc()
	if _, err := e.run(p.process); err == nil {
		t.Fatal("no error from the simulated crash")
	}
	if !e.exists("elaborati/a.xlsx") || e.exists("a.xlsx") {
		t.Fatalf("elaborati %v, inbox %v", e.ls("elaborati"), e.ls(""))
	}
	e.mustRun(p.process) // nothing listed, but the record is completed
	e.st.View(func(tx *store.Tx) error {
		r, _ := tx.File(sha("contenuto"))
		if r.State != store.FilePublished || r.Moved != "in/elaborati/a.xlsx" {
			t.Errorf("after the next pass the record is %q (moved %q), want published", r.State, r.Moved)
		}
		return nil
	})
	e.put("b.xlsx", "contenuto")
	st := e.mustRun(p.process)
	if p.calls.Load() != 1 {
		t.Errorf("processor called %d times, want once", p.calls.Load())
	}
	recs := e.receipt("b.xlsx")
	if st.Duplicates != 1 || len(recs) != 1 || recs[0][3] != "DUPLICATO" || !e.exists("scartati/b.xlsx") {
		t.Errorf("BUG: same content dropped again after a crash right after the move: stats %+v, receipt %q, elaborati %v, scartati %v; "+
			"want a DUPLICATO refusal", st, recs, e.ls("elaborati"), e.ls("scartati"))
	}
	e.st.View(func(tx *store.Tx) error {
		r, _ := tx.File(sha("contenuto"))
		if r.State != store.FilePublished {
			t.Errorf("BUG: file record left %q after the crash: %+v", r.State, r)
		}
		return nil
	})
	e.check()
}

// TestLongestFileNameGetsAReceipt: a file whose name the file system
// accepts (255 bytes) gets a receipt like any other, although the receipt's
// own name (<name>.esito.csv, written as .<name>.esito.csv.tmp first) would
// not fit, and no run fails on it: every hostile file is refused with a
// reason and nothing else is disturbed (docs/rules.md#drops-and-receipts).
func TestLongestFileNameGetsAReceipt(t *testing.T) {
	e := newEnv(t)
	name := strings.Repeat("a", 255-len(".csv")) + ".csv"
	e.put(name, "x;y\n1;2\n")
	p := okProc()
	for i := 0; i < 2; i++ {
		if _, err := e.run(p.process); err != nil {
			t.Errorf("run %d: %v", i+1, err)
		}
	}
	if got := e.ls("esiti"); len(got) == 0 {
		t.Errorf("no receipt at all for a file with a 255-byte name; inbox still holds %d file(s)", len(e.ls("")))
	}
}

// TestCompanionMatchedWithoutRegardToCase: a companion is recognised
// without regard to case, and found and moved the same way: a signature
// dropped as "ELENCO.CSV.ASC" (upper case, as Windows tools write it) next
// to "ELENCO.CSV" leaves the input folder with its file; nothing stays
// behind without a receipt.
func TestCompanionMatchedWithoutRegardToCase(t *testing.T) {
	e := newEnv(t)
	e.in.Companion = ".asc"
	e.put("ELENCO.CSV", "x;y\n1;2\n")
	e.put("ELENCO.CSV.ASC", "-----BEGIN PGP SIGNATURE-----\n")
	e.mustRun(okProc().process)
	e.mustRun(okProc().process)
	if left := e.ls(""); len(left) != 0 {
		t.Errorf("left in the input folder after two runs: %q (elaborati: %q, scartati: %q)", left, e.ls("elaborati"), e.ls("scartati"))
	}
}

// Files moved out are marked published a batch at a time (Marks): until
// the batch is written their records say committed with where they went;
// the same content dropped again meanwhile is still a duplicate, and a
// stop before the batch is written leaves them to the next run, which
// marks them.
func TestMarksPublishFilesInBatches(t *testing.T) {
	e := newEnv(t)
	e.in.Marks = new(ingest.Marks)
	p := okProc()
	e.put("a.xlsx", "uno")
	e.put("b.xlsx", "due")
	if st := e.mustRun(p.process); st.Accepted != 2 || !e.exists("elaborati/a.xlsx") || !e.exists("elaborati/b.xlsx") {
		t.Fatalf("stats %+v, elaborati %v", st, e.ls("elaborati"))
	}
	state := func(content string) (store.FileState, string) {
		var r *store.InputFile
		e.st.View(func(tx *store.Tx) (err error) { r, err = tx.File(sha(content)); return err })
		return r.State, r.Moved
	}
	if st, moved := state("uno"); st != store.FileCommitted || moved != "in/elaborati/a.xlsx" {
		t.Errorf("before the batch is written: %s, moved to %q", st, moved)
	}
	e.put("c.xlsx", "uno")
	if st := e.mustRun(p.process); st.Duplicates != 1 || p.calls.Load() != 2 {
		t.Errorf("same content again before the batch is written: stats %+v, processed %d times", st, p.calls.Load())
	}
	e.refusedWhole("c.xlsx", "DUPLICATO")
	if st, _ := state("uno"); st != store.FilePublished {
		t.Errorf("the duplicate's original: %s, want published", st)
	}
	if err := e.in.Marks.Flush(e.st); err != nil {
		t.Fatal(err)
	}
	if st, moved := state("due"); st != store.FilePublished || moved != "in/elaborati/b.xlsx" {
		t.Errorf("after the batch: %s, moved to %q", st, moved)
	}

	// A stop before the batch is written: the next run marks the file.
	e.put("d.xlsx", "tre")
	e.mustRun(p.process)
	e.in.Marks = nil
	e.mustRun(p.process)
	if st, moved := state("tre"); st != store.FilePublished || moved != "in/elaborati/d.xlsx" {
		t.Errorf("the run after a stop: %s, moved to %q", st, moved)
	}
	e.check()
}
