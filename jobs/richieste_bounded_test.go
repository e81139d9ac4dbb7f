package jobs

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/drop"
	"anprsec/ingest/richieste"
	"anprsec/secret"
	"anprsec/store"
)

// countingDrop records the folders listed through it.
type countingDrop struct {
	drop.Drop
	mu     sync.Mutex
	listed []string
}

func (c *countingDrop) List(ctx context.Context, dir string) ([]drop.Entry, error) {
	c.mu.Lock()
	c.listed = append(c.listed, dir)
	c.mu.Unlock()
	return c.Drop.List(ctx, dir)
}

// take returns the ISTAT codes whose richieste/ folder was listed since
// the last take.
func (c *countingDrop) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.listed {
		if strings.HasSuffix(d, "/richieste") {
			out = append(out, path.Base(path.Dir(d)))
		}
	}
	c.listed = nil
	slices.Sort(out)
	return out
}

// scanEnv is a drop of n comune folders, each with richieste/esiti/, whose
// folders were last changed three days before the store's clock (*now),
// scanned perRun at a time with a hot window of a day.
type scanEnv struct {
	env  *Env
	root string
	drop *countingDrop
	now  *time.Time
}

func newScanEnv(t *testing.T, n, perRun int) *scanEnv {
	t.Helper()
	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s := &scanEnv{root: filepath.Join(dir, "drop"), now: &now}
	old := now.Add(-72 * time.Hour)
	for i := range n {
		c := filepath.Join(s.root, "comuni", fmt.Sprintf("%06d", i+1))
		if err := os.MkdirAll(filepath.Join(c, "richieste", "esiti"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{filepath.Join(c, "richieste", "esiti"), filepath.Join(c, "richieste"), c} {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := store.Open(store.Options{InMemory: true, Key: make([]byte, secret.KeySize), Now: func() time.Time { return *s.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	local, err := drop.NewLocal(s.root)
	if err != nil {
		t.Fatal(err)
	}
	s.drop = &countingDrop{Drop: local}
	cfg := config.Default(dir)
	cfg.Richieste.ScanPerRun = perRun
	cfg.Richieste.HotWindow = 24 * time.Hour
	s.env = &Env{Config: cfg, Store: st, Drop: s.drop}
	return s
}

// run is one scheduled scan a minute after the last; it returns the
// comuni to visit and those whose richieste/ folder it listed.
func (s *scanEnv) run(t *testing.T) (visit, listed []string) {
	t.Helper()
	*s.now = s.now.Add(time.Minute)
	visit, n, errs := scanRichieste(context.Background(), s.env, false)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	listed = s.drop.take()
	if n != len(listed) {
		t.Fatalf("scan reports %d listings, the drop saw %d", n, len(listed))
	}
	return visit, listed
}

func (s *scanEnv) drop1(t *testing.T, istat string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.root, "comuni", istat, "richieste", "r.csv"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestQuietScanListsAtMostTheBoundAndReachesEveryComune: among 50 quiet
// comuni, 7 per run, no run lists more than 7 richieste/ folders (plus
// comuni/ itself) and ceil(50/7) = 8 runs list every one.
func TestQuietScanListsAtMostTheBoundAndReachesEveryComune(t *testing.T) {
	s := newScanEnv(t, 50, 7)
	reached := map[string]bool{}
	for range 8 {
		visit, listed := s.run(t)
		if len(visit) != 0 {
			t.Fatalf("nothing dropped, yet visiting %v", visit)
		}
		if len(listed) > 7 {
			t.Fatalf("a run listed %d folders, bound 7: %v", len(listed), listed)
		}
		for _, l := range listed {
			reached[l] = true
		}
	}
	if len(reached) != 50 {
		t.Errorf("8 runs reached %d comuni of 50", len(reached))
	}
}

// TestRequestInQuietComuneIsReadWithinTheBound: a file dropped in the
// quiet comune the turn has just passed is found within ceil(50/7) runs,
// and its comune is then listed at every run for richieste.hot_window
// after the last file seen there, even once the folder is empty again;
// then it is quiet again.
func TestRequestInQuietComuneIsReadWithinTheBound(t *testing.T) {
	s := newScanEnv(t, 50, 7)
	_, listed := s.run(t)
	passed := listed[len(listed)-1] // the last one the turn listed
	s.drop1(t, passed)
	found := 0
	for i := 1; i <= 8 && found == 0; i++ {
		if visit, _ := s.run(t); slices.Contains(visit, passed) {
			found = i
		}
	}
	if found == 0 {
		t.Fatalf("a request in comune %s not found within 8 runs", passed)
	}
	if err := os.Remove(filepath.Join(s.root, "comuni", passed, "richieste", "r.csv")); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		visit, listed := s.run(t)
		if !slices.Contains(listed, passed) {
			t.Fatalf("comune %s with a file seen a few minutes ago not listed", passed)
		}
		if len(visit) != 0 || len(listed) > 8 {
			t.Fatalf("visiting %v, listed %d folders", visit, len(listed))
		}
	}
	*s.now = s.now.Add(24 * time.Hour)
	quiet := 0
	for range 8 {
		if _, listed := s.run(t); !slices.Contains(listed, passed) {
			quiet++
		}
	}
	if quiet == 0 {
		t.Errorf("comune %s still listed at every run a day after its last file", passed)
	}
}

// TestChangedComuneFolderIsListedEveryRun: a comune whose folder changed
// within richieste.hot_window (a folder created in it, as `drop prepara`
// creates richieste/) is listed at every run, on top of the quiet ones.
func TestChangedComuneFolderIsListedEveryRun(t *testing.T) {
	s := newScanEnv(t, 50, 7)
	recent := s.now.Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(s.root, "comuni", "000042"), recent, recent); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		_, listed := s.run(t)
		if !slices.Contains(listed, "000042") {
			t.Fatalf("comune 000042, its folder changed an hour ago, not listed: %v", listed)
		}
		if len(listed) > 8 {
			t.Fatalf("listed %d folders, bound 7 + 1 changed", len(listed))
		}
	}
}

// TestCommittedUnpublishedComuneIsVisitedEveryRun: a comune with a file
// committed but not yet published is visited at every run, whatever the
// turn.
func TestCommittedUnpublishedComuneIsVisitedEveryRun(t *testing.T) {
	s := newScanEnv(t, 50, 7)
	if err := s.env.Store.Update(func(tx *store.Tx) error {
		return tx.PutFile(&store.InputFile{SHA256: "ab", Path: "comuni/000030/richieste/y.csv", Kind: richieste.Kind,
			State: store.FileCommitted, Moved: "comuni/000030/richieste/elaborati/y.csv"})
	}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		visit, listed := s.run(t)
		if !slices.Equal(visit, []string{"000030"}) || !slices.Contains(listed, "000030") {
			t.Fatalf("visit %v, listed %v", visit, listed)
		}
	}
}

// TestManualScanListsEveryComune: a run asked by hand lists every comune's
// folder and finds a request wherever it is, without moving the turn.
func TestManualScanListsEveryComune(t *testing.T) {
	s := newScanEnv(t, 50, 7)
	s.drop1(t, "000033")
	visit, n, errs := scanRichieste(context.Background(), s.env, true)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if n != 50 || len(s.drop.take()) != 50 || !slices.Equal(visit, []string{"000033"}) {
		t.Fatalf("listed %d, visit %v", n, visit)
	}
}

// TestBusyComuniDoNotDelayTheQuietOnes: comuni that keep dropping files are
// listed on top of the quiet ones' share, so 20 busy comuni among 50 do
// not delay the turn: every quiet one is still listed within
// ceil(50/7) = 8 runs, and no run lists more than 20 + 7.
func TestBusyComuniDoNotDelayTheQuietOnes(t *testing.T) {
	s := newScanEnv(t, 50, 7)
	busy := map[string]bool{}
	for i := 1; i <= 40; i += 2 {
		istat := fmt.Sprintf("%06d", i)
		busy[istat] = true
		s.drop1(t, istat)
	}
	reached := map[string]bool{}
	for range 8 {
		_, listed := s.run(t)
		if len(listed) > 27 {
			t.Fatalf("a run listed %d folders, bound 20 busy + 7", len(listed))
		}
		for _, l := range listed {
			reached[l] = true
		}
	}
	for i := 1; i <= 50; i++ {
		if istat := fmt.Sprintf("%06d", i); !reached[istat] {
			t.Errorf("comune %s (busy: %v) not listed in 8 runs", istat, busy[istat])
		}
	}
}
