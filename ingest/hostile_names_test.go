package ingest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/drop"
	"anprsec/drop/sftpdrop"
	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/ingest"
	"anprsec/secret"
	"anprsec/store"
)

// spyDrop records every Open and adds entries to the listing of one
// folder, as a hostile or broken SFTP server could list them (names that
// no file system holds, like "a/../../b.csv").
type spyDrop struct {
	drop.Drop
	dir   string
	extra []drop.Entry

	mu     sync.Mutex
	opened []string
}

func (s *spyDrop) List(ctx context.Context, dir string) ([]drop.Entry, error) {
	es, err := s.Drop.List(ctx, dir)
	if err == nil && dir == s.dir {
		es = append(es, s.extra...)
	}
	return es, err
}

func (s *spyDrop) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	s.mu.Lock()
	s.opened = append(s.opened, name)
	s.mu.Unlock()
	return s.Drop.Open(ctx, name)
}

// hostileWorld is an inbox "in" on a drop (local or SFTP) whose files live
// on disk under root.
type hostileWorld struct {
	t    *testing.T
	root string // the drop root on disk
	spy  *spyDrop
	st   *store.Store
	in   *ingest.Inbox
}

func (w *hostileWorld) disk(rel string) string { return filepath.Join(w.root, filepath.FromSlash(rel)) }

func (w *hostileWorld) put(name string, data []byte) {
	w.t.Helper()
	if err := os.MkdirAll(w.disk("in"), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.disk("in"), name), data, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *hostileWorld) receipt(name string) [][]string {
	w.t.Helper()
	e := &env{t: w.t, dir: w.disk("in")}
	return e.receipt(name)
}

func newHostileWorld(t *testing.T, sftp bool) *hostileWorld {
	t.Helper()
	var d drop.Drop
	var root string
	if sftp {
		cl := sftptest.NewClient(t)
		srv := sftptest.Start(t, cl.PublicKey())
		root = filepath.Join(srv.Dir, "base")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := sftpdrop.Config{Address: srv.Addr, User: srv.User, KeyFile: cl.KeyFile,
			KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "kh"), srv.Addr, srv.HostKey),
			BasePath:   "/base", Timeout: 5 * time.Second}
		d = &drop.Lazy{Name: "sftp", Dial: func(ctx context.Context) (drop.Drop, error) { return sftpdrop.Dial(ctx, cfg) }}
	} else {
		root = t.TempDir()
		l, err := drop.NewLocal(root)
		if err != nil {
			t.Fatal(err)
		}
		d = l
	}
	t.Cleanup(func() { d.Close() })
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{9}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	spy := &spyDrop{Drop: d, dir: "in"}
	return &hostileWorld{t: t, root: root, spy: spy, st: st,
		in: &ingest.Inbox{Drop: spy, Store: st, Kind: "test-ostile", Dir: "in", Exts: []string{".csv", ".xlsx"},
			MaxSize: maxSize, SpoolDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
}

// TestHostileNames drops, in one folder and one run, files that must be
// refused without being read (symlinks to files outside and inside the
// drop, to a folder, a dangling one; an empty file; a file over the size
// cap; names with control characters or a backslash; names with slashes
// that only a hostile server can list), then a good file: each hostile
// file gets a riga-0 receipt with its code, only the good file is ever
// opened and processed, nothing outside the drop is touched; a second run
// repeats nothing. Over the local drop and over SFTP (the in-process
// jailed server).
func TestHostileNames(t *testing.T) {
	for _, over := range []string{"local", "sftp"} {
		t.Run(over, func(t *testing.T) {
			w := newHostileWorld(t, over == "sftp")
			outside := t.TempDir()
			secret := filepath.Join(outside, "segreto.csv")
			secretData := []byte("Codice ISTAT;Seriale\n058091;SEGRETO\n")
			os.WriteFile(secret, secretData, 0o644)
			os.MkdirAll(w.disk("altro"), 0o755)
			os.WriteFile(w.disk("altro/vicino.csv"), []byte("di un altro comune"), 0o644)
			os.WriteFile(w.disk("evil.csv"), []byte("alla radice del drop"), 0o644)

			w.put("vuoto.csv", nil)
			w.put("grande.xlsx", bytes.Repeat([]byte("x"), maxSize+1))
			w.put("a\nb.csv", []byte("a capo nel nome"))
			w.put("c\td.csv", []byte("tabulazione nel nome"))
			w.put("\x1b[31mrosso.csv", []byte("sequenza ANSI nel nome"))
			w.put("x\\..\\evil.csv", []byte("barra rovesciata nel nome"))
			w.put("..csv", []byte("nome nascosto")) // starts with a dot: never read, never answered
			links := map[string]string{
				"link-fuori.csv":   secret,
				"link-etc.csv":     "/etc/passwd",
				"link-vicino.csv":  "../altro/vicino.csv",
				"link-dir.csv":     outside,
				"link-rotto.xlsx":  filepath.Join(outside, "non-esiste"),
				"link-se-stesso.x": "link-se-stesso.x",
			}
			for name, target := range links {
				if err := os.Symlink(target, filepath.Join(w.disk("in"), name)); err != nil {
					t.Fatal(err)
				}
			}
			now := time.Now()
			for _, name := range []string{"a/../../evil.csv", "/etc/passwd", "../evil.csv", "..", "sub/x.csv"} {
				w.spy.extra = append(w.spy.extra, drop.Entry{Name: name, Size: 20, ModTime: now.Add(-time.Hour), Regular: true})
			}
			w.put("zz-buono.csv", []byte("contenuto buono"))

			p := okProc()
			st, err := w.in.Run(context.Background(), p.process)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := map[string]string{ // receipt name -> code
				"vuoto.csv":        "FILE_VUOTO",
				"grande.xlsx":      "FILE_TROPPO_GRANDE",
				"a_b.csv":          "NOME_NON_VALIDO",
				"c_d.csv":          "NOME_NON_VALIDO",
				"_[31mrosso.csv":   "NOME_NON_VALIDO",
				"x_.._evil.csv":    "NOME_NON_VALIDO",
				"a_.._.._evil.csv": "NOME_NON_VALIDO",
				"_etc_passwd":      "NOME_NON_VALIDO",
				"sub_x.csv":        "NOME_NON_VALIDO",
				"link-fuori.csv":   "NON_FILE",
				"link-etc.csv":     "NON_FILE",
				"link-vicino.csv":  "NON_FILE",
				"link-dir.csv":     "NON_FILE",
				"link-rotto.xlsx":  "NON_FILE",
				"link-se-stesso.x": "NON_FILE",
			}
			if st.Accepted != 1 || st.Refused != len(want) || st.Files != 1 {
				t.Errorf("stats %+v, want 1 file read and accepted, %d refused", st, len(want))
			}
			if p.calls.Load() != 1 {
				t.Errorf("processor called %d times, want once (the good file)", p.calls.Load())
			}
			for name, code := range want {
				recs := w.receipt(name)
				if len(recs) != 1 || recs[0][1] != "0" || recs[0][2] != "SCARTATO" || recs[0][3] != code {
					t.Errorf("receipt of %q = %q, want one riga 0 SCARTATO %s line", name, recs, code)
				}
			}
			if recs := w.receipt("zz-buono.csv"); len(recs) != 1 || recs[0][2] != "OK" {
				t.Errorf("good file's receipt = %q", recs)
			}
			if msg := w.receipt("a_b.csv")[0][4]; !strings.Contains(msg, `"a\nb.csv"`) || !strings.Contains(msg, "caratteri di controllo") {
				t.Errorf("message names neither the file nor the reason: %q", msg)
			}
			if got := strings.Join(w.spy.opened, ","); got != "in/zz-buono.csv" {
				t.Errorf("opened %q, want only in/zz-buono.csv", got)
			}

			// Where everything is now.
			for _, name := range []string{"a\nb.csv", "c\td.csv", "\x1b[31mrosso.csv", "x\\..\\evil.csv", "..csv"} {
				if _, err := os.Lstat(filepath.Join(w.disk("in"), name)); err != nil {
					t.Errorf("%q was moved: %v", name, err)
				}
			}
			for name := range links {
				fi, err := os.Lstat(filepath.Join(w.disk("in/scartati"), name))
				if err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("scartati/%s is not the symlink itself: %v, %v", name, fi, err)
				}
			}
			for _, name := range []string{"vuoto.csv", "grande.xlsx"} {
				if _, err := os.Stat(filepath.Join(w.disk("in/scartati"), name)); err != nil {
					t.Errorf("%s not in scartati/: %v", name, err)
				}
			}
			if _, err := os.Stat(filepath.Join(w.disk("in/elaborati"), "zz-buono.csv")); err != nil {
				t.Errorf("good file not in elaborati/: %v", err)
			}
			if b, _ := os.ReadFile(secret); !bytes.Equal(b, secretData) {
				t.Errorf("file outside the drop changed: %q", b)
			}
			for rel, content := range map[string]string{"altro/vicino.csv": "di un altro comune", "evil.csv": "alla radice del drop"} {
				if b, err := os.ReadFile(w.disk(rel)); err != nil || string(b) != content {
					t.Errorf("%s: %q, %v", rel, b, err)
				}
			}
			if des, _ := os.ReadDir(outside); len(des) != 1 {
				t.Errorf("folder outside the drop holds %d entries", len(des))
			}
			if _, err := w.st.VerifyHistory(); err != nil {
				t.Error(err)
			}

			// A second run: the files left in place (unsafe names) are not
			// answered again, and nothing is read.
			esiti, _ := os.ReadDir(w.disk("in/esiti"))
			st, err = w.in.Run(context.Background(), p.process)
			if err != nil || st != (ingest.Stats{}) || p.calls.Load() != 1 {
				t.Errorf("second run: %+v, %v, %d calls; want nothing done", st, err, p.calls.Load())
			}
			if again, _ := os.ReadDir(w.disk("in/esiti")); len(again) != len(esiti) {
				t.Errorf("esiti/ went from %d to %d files", len(esiti), len(again))
			}
			// A file left in place that changes is answered again.
			w.put("a\nb.csv", []byte("a capo nel nome, nuovo contenuto"))
			os.Chtimes(filepath.Join(w.disk("in"), "a\nb.csv"), now.Add(time.Minute), now.Add(time.Minute))
			st, err = w.in.Run(context.Background(), p.process)
			if err != nil || st.Refused != 1 || p.calls.Load() != 1 {
				t.Errorf("third run: %+v, %v", st, err)
			}
			var names []string
			des, _ := os.ReadDir(w.disk("in/esiti"))
			for _, d := range des {
				if strings.HasPrefix(d.Name(), "a_b.csv") {
					names = append(names, d.Name())
				}
			}
			sort.Strings(names)
			if len(names) != 2 {
				t.Errorf("receipts of a_b.csv: %q, want the new one and the earlier one set aside", names)
			}
		})
	}
}

// TestInboxFolderSymlinkedOutside: a party that replaces its input folder
// with a symlink to a folder outside the drop gets nothing read or moved
// from there; the run fails with the reason in the log and its error.
func TestInboxFolderSymlinkedOutside(t *testing.T) {
	for _, over := range []string{"local", "sftp"} {
		t.Run(over, func(t *testing.T) {
			w := newHostileWorld(t, over == "sftp")
			outside := t.TempDir()
			os.WriteFile(filepath.Join(outside, "passwd.csv"), []byte("root:x:0:0\n"), 0o644)
			if err := os.Symlink(outside, w.disk("in")); err != nil {
				t.Fatal(err)
			}
			p := okProc()
			st, err := w.in.Run(context.Background(), p.process)
			if err == nil || !strings.Contains(err.Error(), "escapes") {
				t.Errorf("Run: %+v, %v; want an error about the folder", st, err)
			}
			if p.calls.Load() != 0 || st.Files != 0 || len(w.spy.opened) != 0 {
				t.Errorf("read through the symlink: %+v, opened %q", st, w.spy.opened)
			}
			des, _ := os.ReadDir(outside)
			if len(des) != 1 || des[0].Name() != "passwd.csv" {
				t.Errorf("the folder outside now holds %v", des)
			}
		})
	}
}
