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
