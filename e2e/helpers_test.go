// Package e2e runs the anprsec binary as an operator would, in temporary
// working directories. It holds only tests.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/secret"
	"anprsec/store"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

// moduleRoot walks up from the test's directory to the folder of go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// binary builds cmd/anprsec once per test process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "anprsec-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "anprsec")
		cmd := exec.Command("go", "build", "-o", binPath, "anprsec/cmd/anprsec")
		cmd.Dir = moduleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// workdir is an anprsec working directory (anprsec.yaml, var/).
type workdir struct {
	t   testing.TB
	bin string
	dir string
}

func (w *workdir) command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(w.bin, args...)
	cmd.Dir = w.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ANPRSEC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// run runs anprsec to completion and returns stdout and stderr; it fails
// the test on a non-zero exit.
func (w *workdir) run(args ...string) (string, string) {
	w.t.Helper()
	stdout, stderr, err := w.try(nil, args...)
	if err != nil {
		w.t.Fatalf("anprsec %s in %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), w.dir, err, stdout, tail(stderr, 3000))
	}
	return stdout, stderr
}

func (w *workdir) try(env []string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	cmd := w.command(env, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// newWorkdir makes a working directory: init, settle 0s, the workbook
// dropped as censimento/big.xlsx.
func newWorkdir(t testing.TB, bin, dir string, workbook []byte) *workdir {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &workdir{t: t, bin: bin, dir: dir}
	if _, _, err := w.try([]string{"ANPRSEC_DEV_CA_BITS=2048"}, "init"); err != nil { // a faster development CA
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "anprsec.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte("settle: 1m")) {
		t.Fatalf("anprsec.yaml has no \"settle: 1m\" to replace:\n%s", cfg)
	}
	cfg = bytes.Replace(cfg, []byte("settle: 1m"), []byte("settle: 0s"), 1)
	if err := os.WriteFile(cfgPath, cfg, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.path("var/drop/censimento/big.xlsx"), workbook, 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *workdir) path(rel string) string { return filepath.Join(w.dir, filepath.FromSlash(rel)) }

// ls lists the names in a folder of the working directory (nil if absent).
func (w *workdir) ls(rel string) []string {
	w.t.Helper()
	des, err := os.ReadDir(w.path(rel))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	sort.Strings(out)
	return out
}

// openStore opens the store of a working directory in-process (the binary
// must not be running). With copyFirst, a copy of the data dir is opened so
// the original stays exactly as the killed process left it.
func (w *workdir) openStore(copyFirst bool) *store.Store {
	w.t.Helper()
	key, err := secret.ReadKey(w.path("var/keys/store.key"))
	if err != nil {
		w.t.Fatal(err)
	}
	dir := w.path("var/data")
	if copyFirst {
		cp := filepath.Join(w.t.TempDir(), "data")
		if err := copyDir(dir, cp); err != nil {
			w.t.Fatal(err)
		}
		dir = cp
	}
	st, err := store.Open(store.Options{Dir: dir, Key: key})
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

func copyDir(from, to string) error {
	return filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// workbookRows returns the keys "sheet:row" of the data rows of both sheets
// (the first non-blank row of a sheet is its header; blank rows are skipped)
// and the codici fiscali of the Utenti sheet.
func workbookRows(t *testing.T, path string) (map[string]bool, []string) {
	t.Helper()
	f, err := excelize.OpenFile(path, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]bool{}
	var cfs []string
	for _, sheet := range []string{"Utenti", "Postazioni"} {
		rows, err := f.Rows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		cfCol := -1
		header := false
		for n := 1; rows.Next(); n++ {
			cells, err := rows.Columns()
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(strings.Join(cells, "")) == "" {
				continue
			}
			if !header {
				header = true
				for i, c := range cells {
					if strings.EqualFold(strings.TrimSpace(c), "Codice Fiscale") {
						cfCol = i
					}
				}
				continue
			}
			keys[sheet+":"+itoa(n)] = true
			if sheet == "Utenti" && cfCol >= 0 && cfCol < len(cells) {
				cfs = append(cfs, strings.ToUpper(strings.ReplaceAll(cells[cfCol], " ", "")))
			}
		}
		rows.Close()
	}
	return keys, cfs
}

func itoa(n int) string { return strconv.Itoa(n) }

// receiptLines parses a receipt (without its header).
func receiptLines(t *testing.T, data []byte) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = ';'
	r.FieldsPerRecord = 5
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("receipt does not parse: %v", err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ";") != "foglio;riga;esito;codice;messaggio" {
		t.Fatalf("receipt header = %q", recs[:min(1, len(recs))])
	}
	return recs[1:]
}

var cardSerial = regexp.MustCompile(`SC\d+`)

// snapshot is what a finished working directory holds, for comparison with
// the reference run.
type snapshot struct {
	receipt  []byte
	counts   map[string]int
	history  []string // entries without time and seq
	entries  uint64
	multiCF  []string // CFs with more than one card
	spool    []string // files left in the spool
	runs     []string // outcomes of the runs of ingest-censimento
	fileRec  store.InputFile
	tmpFiles []string // temporary files left in the drop
}

func (w *workdir) snapshot(sha string, cfs []string) snapshot {
	w.t.Helper()
	var s snapshot
	var err error
	s.receipt, err = os.ReadFile(w.path("var/drop/censimento/esiti/big.xlsx.esito.csv"))
	if err != nil {
		w.t.Fatalf("receipt: %v", err)
	}
	s.spool = w.ls("var/spool")
	filepath.Walk(w.path("var/drop"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(fi.Name(), ".tmp") {
			s.tmpFiles = append(s.tmpFiles, p)
		}
		return nil
	})
	st := w.openStore(false)
	defer st.Close()
	res, err := st.VerifyHistory()
	if err != nil {
		w.t.Errorf("in-process history verify: %v", err)
	}
	s.entries = res.Entries
	es, err := st.History(0, 0, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range es {
		s.history = append(s.history, strings.Join([]string{e.Actor, e.Action, e.Kind, e.Key, e.File, e.Sheet, itoa(e.Row), e.Detail}, "|"))
	}
	s.counts = map[string]int{}
	err = st.View(func(tx *store.Tx) error {
		for _, p := range []string{"c/", "p/", "u/", "s/", "w/", "i/s-cf/", "i/u-cf/"} {
			n, err := tx.Count(p)
			if err != nil {
				return err
			}
			s.counts[p] = n
		}
		seen := map[string]bool{}
		for _, cf := range cfs {
			if seen[cf] {
				continue
			}
			seen[cf] = true
			cards, err := tx.CardsOfPerson(cf)
			if err != nil {
				return err
			}
			if len(cards) > 1 {
				s.multiCF = append(s.multiCF, cf+"="+strings.Join(cards, ","))
			}
		}
		runs, err := tx.Runs("ingest-censimento", 0)
		if err != nil {
			return err
		}
		for _, r := range runs {
			s.runs = append(s.runs, r.Outcome)
		}
		f, err := tx.File(sha)
		if err != nil {
			return err
		}
		s.fileRec = *f
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// trace is the timing of an uninterrupted ingest of the workbook.
type trace struct {
	wall      time.Duration // process start to exit
	toJob     time.Duration // process start to "job started"
	read      time.Duration // read + validate (ANPRSEC_TRACE)
	commit    time.Duration // chunk commits (ANPRSEC_TRACE)
	haveTrace bool
}

var traceLine = regexp.MustCompile(`census: read\+validate (\S+), commit (\S+)`)

// measure runs the ingest once, uninterrupted, and times its phases.
func (w *workdir) measure() trace {
	w.t.Helper()
	var tr trace
	start := time.Now()
	_, stderr, err := w.try([]string{"ANPRSEC_TRACE=1"}, "jobs", "run", "ingest-censimento")
	tr.wall = time.Since(start)
	if err != nil {
		w.t.Fatalf("reference ingest: %v\n%s", err, tail(stderr, 3000))
	}
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := traceLine.FindStringSubmatch(line); m != nil {
			r, err1 := time.ParseDuration(m[1])
			c, err2 := time.ParseDuration(m[2])
			if err1 == nil && err2 == nil {
				tr.read, tr.commit, tr.haveTrace = r, c, true
			}
			continue
		}
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "job started" {
			tr.toJob = rec.Time.Sub(start)
		}
	}
	if tr.toJob <= 0 || tr.toJob > tr.wall {
		tr.toJob = tr.wall / 10
	}
	if !tr.haveTrace {
		tr.read, tr.commit = tr.wall*6/10, tr.wall*2/10
	}
	return tr
}

// killAfter starts "jobs run ingest-censimento", SIGKILLs it after d and
// reports whether the kill hit the running process.
func (w *workdir) killAfter(d time.Duration) (killed bool, stderr string) {
	return w.killCmdAfter(d, "jobs", "run", "ingest-censimento")
}

// killCmdAfter starts anprsec with args, SIGKILLs it after d and reports
// whether the kill hit the running process.
func (w *workdir) killCmdAfter(d time.Duration, args ...string) (killed bool, stderr string) {
	killed, _, stderr = w.killCmdWithin(d, args...)
	return killed, stderr
}

// killCmdWithin is killCmdAfter that also reports how long the process
// ran: when it ended on its own before d, its whole run time, which the
// campaigns use to aim the next kill inside a run on a machine whose speed
// changes under them (go test runs other packages alongside).
func (w *workdir) killCmdWithin(d time.Duration, args ...string) (killed bool, ran time.Duration, stderr string) {
	w.t.Helper()
	var errb bytes.Buffer
	cmd := w.command(nil, args...)
	cmd.Stderr = &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	ran = time.Since(start)
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, ran, errb.String()
}
