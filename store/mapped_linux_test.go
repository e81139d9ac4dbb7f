package store

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// mappedRSS is the resident size (kB) of this process's mappings of the
// files in dir (/proc/self/smaps).
func mappedRSS(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's header line
			in = len(fields) >= 6 && filepath.Dir(strings.Join(fields[5:], " ")) == dir
			continue
		}
		if in && fields[0] == "Rss:" && len(fields) >= 2 {
			n, _ := strconv.Atoi(fields[1])
			total += n
		}
	}
	return total
}

func historyDetails(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := s.View(func(tx *Tx) error {
		return tx.EachHistory(0, func(e *Entry) (bool, error) {
			out = append(out, e.Detail)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ReleaseMapped only drops pages from the resident set: what was read
// reads the same afterwards, and what was written after it survives a
// close and a reopen.
func TestReleaseMapped(t *testing.T) {
	dir, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir)
	write := func(from int) {
		err := s.Update(func(tx *Tx) error {
			for i := from; i < from+2000; i++ { // one history block of ~500 kB: in the value log
				if err := tx.Record(Source{Actor: "test"}, "prova", "comune", "058091",
					fmt.Sprintf("voce %d %s", i, strings.Repeat("x", 200))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	want := historyDetails(t, s)
	if len(want) != 2000 {
		t.Fatalf("%d entries", len(want))
	}
	before := mappedRSS(t, dir)
	s.ReleaseMapped()
	after := mappedRSS(t, dir)
	t.Logf("resident pages of the store's mappings: %d kB, after ReleaseMapped %d kB", before, after)
	if before > 0 && after >= before {
		t.Errorf("ReleaseMapped left %d kB of %d kB resident", after, before)
	}
	if got := historyDetails(t, s); !slices.Equal(got, want) {
		t.Fatalf("history differs after ReleaseMapped")
	}
	write(2000)
	s.ReleaseMapped()
	want = historyDetails(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if got := historyDetails(t, s); len(got) != 4000 || !slices.Equal(got, want) {
		t.Fatalf("after reopening: %d entries, want the 4000 written", len(got))
	}
}

// fileMappings are the start addresses of this process's mappings of the
// tables, memtable logs and value log files in dir, with their suffix
// (/proc/self/maps).
func fileMappings(t *testing.T, dir string) map[uintptr]string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip(err)
	}
	out := map[uintptr]string{}
	for l := range strings.SplitSeq(string(b), "\n") {
		fields := strings.Fields(l)
		if len(fields) < 6 || filepath.Dir(strings.Join(fields[5:], " ")) != dir {
			continue
		}
		lo, _, _ := strings.Cut(fields[0], "-")
		start, err := strconv.ParseUint(lo, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if ext := filepath.Ext(fields[5]); ext == ".sst" || ext == ".mem" || ext == ".vlog" {
			out[uintptr(start)] = ext
		}
	}
	return out
}

// The release reaches every file Badger maps for the store (tables,
// memtable logs, value log) and nothing else: an upgrade of Badger that
// moves them fails here instead of silently keeping them resident.
func TestBadgerMappingsAreFound(t *testing.T) {
	dir, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir)
	for round := range 3 {
		if round == 1 { // closing flushes the memtable: tables on disk
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir)
		}
		err := s.Update(func(tx *Tx) error {
			for i := range 1500 {
				if err := tx.Record(Source{Actor: "test"}, "prova", "comune", "058091",
					fmt.Sprintf("voce %d-%d %s", round, i, strings.Repeat("x", 1500))); err != nil { // over the value threshold
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	defer s.Close()
	if s.maps == nil {
		t.Fatal("Badger's mappings were not found")
	}
	want := fileMappings(t, dir)
	got := map[uintptr]bool{}
	s.maps.each(func(data []byte) { got[uintptr(unsafe.Pointer(unsafe.SliceData(data)))] = true })
	kinds := map[string]int{}
	for start, ext := range want {
		kinds[ext]++
		if !got[start] {
			t.Errorf("the %s mapped at %#x was not reached", ext, start)
		}
	}
	for start := range got {
		if _, ok := want[start]; !ok {
			t.Errorf("%#x was reached but is no mapping of the store's files", start)
		}
	}
	for _, ext := range []string{".sst", ".mem", ".vlog"} {
		if kinds[ext] == 0 {
			t.Errorf("no %s mapped (mappings: %v): the test does not cover it", ext, kinds)
		}
	}
}

// An open store keeps the pages of its files that a bulk write leaves
// resident within its budget (the keeper), without a caller releasing
// them.
func TestOpenStoreKeepsItsMappedPagesBounded(t *testing.T) {
	dir, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir)
	defer s.Close()
	if s.keeper == nil {
		t.Skip("no keeper on this system")
	}
	written := 0
	for round := range 40 { // some 120 MB through the value log and the memtable logs
		err := s.Update(func(tx *Tx) error {
			for i := range 1000 {
				if err := tx.Record(Source{Actor: "test"}, "prova", "comune", "058091",
					fmt.Sprintf("voce %d-%d %s", round, i, strings.Repeat("x", 3000))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		written += 1000 * 3000
	}
	// The keeper looks every keeperEvery: on a loaded machine give it time.
	limit := keeperMappedBudget/1024 + 16<<10 // kB: the budget and what one look may find on top
	var rss int
	for range 200 {
		if rss = mappedRSS(t, dir); rss <= limit {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d MB written; resident pages of the store's files: %d kB (limit %d kB)", written>>20, rss, limit)
	if rss > limit {
		t.Errorf("%d kB of the store's files resident, over %d kB", rss, limit)
	}
}
