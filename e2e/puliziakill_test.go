package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"anprsec/store"
)

// TestKillDuringPulizia: `anprsec jobs run pulizia` deleting 3,000 old files
// is killed with SIGKILL at moments spread over its run; the runs after
// finish the work. Every old file is gone and recorded exactly once
// (file.eliminato), the recent files stay, and the history chain verifies
// (docs/rules.md#retention).
func TestKillDuringPulizia(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it repeatedly")
	}
	bin := binary(t)
	w := newWorkdir(t, bin, filepath.Join(t.TempDir(), "w"), []byte("in attesa"))
	dir := w.path("var/drop/censimento/elaborati")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := map[string]bool{}
	put := func(name string, age time.Duration) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("contenuto "+name), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3000 {
		name := fmt.Sprintf("vecchio-%04d.csv", i)
		put(name, 2*365*24*time.Hour+time.Duration(i)*time.Minute)
		old["censimento/elaborati/"+name] = true
	}
	for i := range 10 {
		put(fmt.Sprintf("recente-%02d.csv", i), 24*time.Hour)
	}

	// Each kill comes a little later into a run; a kill that lands while
	// files are being deleted (some gone, some left) is a mid-run kill.
	kills, midRun, d := 0, 0, 100*time.Millisecond
	for attempt := 0; attempt < 150; attempt++ {
		before := len(w.ls("var/drop/censimento/elaborati"))
		killed, ran, stderr := w.killCmdWithin(d, "jobs", "run", "pulizia")
		after := len(w.ls("var/drop/censimento/elaborati"))
		if killed && after < before && after > 10 {
			midRun++
		}
		if !killed {
			if strings.Contains(stderr, "panic") {
				t.Fatalf("run panicked:\n%s", tail(stderr, 2000))
			}
			t.Logf("run %d ended on its own after %v", attempt, ran.Round(time.Millisecond))
			break
		}
		kills++
		d += 10 * time.Millisecond
	}
	t.Logf("%d kills, %d while deleting", kills, midRun)
	if midRun == 0 {
		t.Error("no kill landed while files were being deleted")
	}
	// A run deletes at most pulizia.max_files (1,000): runs to the end.
	oldLeft := func() int { return len(w.ls("var/drop/censimento/elaborati")) - 10 }
	for i := 0; oldLeft() > 0; i++ {
		if i == 5 {
			t.Fatalf("%d old files left after 5 runs to the end", oldLeft())
		}
		w.run("jobs", "run", "pulizia")
	}

	var left []string
	for _, n := range w.ls("var/drop/censimento/elaborati") {
		if !strings.HasPrefix(n, "recente-") {
			left = append(left, n)
		}
	}
	if len(left) > 0 || len(w.ls("var/drop/censimento/elaborati")) != 10 {
		t.Errorf("after the runs the folder holds %v", w.ls("var/drop/censimento/elaborati"))
	}
	st := w.openStore(false)
	es, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "file.eliminato" })
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range es {
		seen[e.Key]++
	}
	var wrong []string
	for k, n := range seen {
		if n != 1 || !old[k] {
			wrong = append(wrong, fmt.Sprintf("%s×%d", k, n))
		}
	}
	sort.Strings(wrong)
	if len(es) != len(old) || len(wrong) > 0 {
		t.Errorf("%d file.eliminato entries for %d old files; wrong: %v", len(es), len(old), wrong)
	}
	w.run("history", "verify")
}
