package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"anprsec/store"
)

// puliziaFixture censuses comune 058091 and puts in the drop, dated by
// their modification time: old files (past the retention) in elaborati/,
// scartati/ and esiti/ of the census and of the comune's richieste/ and an
// old bundle; recent ones next to them; an old file in an input folder
// itself (not processed yet) and an old non-zip in certificati/. It returns
// the old files that must go and those that must stay.
func puliziaFixture(t *testing.T, c *certEnv, now time.Time) (old, keep []string) {
	t.Helper()
	c.census()
	put := func(rel string, age time.Duration) {
		full := filepath.Join(c.root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("contenuto di "+rel), 0o644); err != nil {
			t.Fatal(err)
		}
		at := now.Add(-age)
		if err := os.Chtimes(full, at, at); err != nil {
			t.Fatal(err)
		}
	}
	year := 365 * 24 * time.Hour
	for _, rel := range []string{
		"censimento/elaborati/vecchio.xlsx", "censimento/esiti/vecchio.xlsx.esito.csv",
		"comuni/058091/richieste/scartati/r1.csv", "comuni/058091/richieste/elaborati/r2.csv.p7m",
		"comuni/058091/richieste/esiti/r2.csv.esito.csv", "prefetture/058/consegne/elaborati/m.csv",
	} {
		put(rel, year+48*time.Hour)
		old = append(old, rel)
	}
	put("comuni/058091/certificati/058091-certificati-20250101-100000.zip", 100*24*time.Hour)
	old = append(old, "comuni/058091/certificati/058091-certificati-20250101-100000.zip")
	for _, rel := range []string{"censimento/elaborati/recente.xlsx", "comuni/058091/richieste/esiti/r3.csv.esito.csv"} {
		put(rel, year-48*time.Hour)
		keep = append(keep, rel)
	}
	for _, rel := range []string{"comuni/058091/certificati/058091-certificati-20260101-100000.zip"} {
		put(rel, 10*24*time.Hour)
		keep = append(keep, rel)
	}
	for _, rel := range []string{"comuni/058091/richieste/in-arrivo.csv", "comuni/058091/certificati/leggimi.txt", "censimento/esiti/.tmp-vecchio"} {
		put(rel, 2*year)
		keep = append(keep, rel)
	}
	sort.Strings(old)
	return old, keep
}

func (c *certEnv) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(c.root, filepath.FromSlash(rel)))
	return err == nil
}

// deletedFiles returns the files recorded deleted, sorted, and checks each
// entry names the file's SHA-256.
func (c *certEnv) deletedFiles() []string {
	c.t.Helper()
	var out []string
	for _, e := range c.history("file.eliminato") {
		if e.Actor != PuliziaActor || !strings.Contains(e.Detail, "sha256 ") || strings.Contains(e.Detail, "contenuto di") {
			c.t.Errorf("entry %+v", e)
		}
		out = append(out, e.Key)
	}
	sort.Strings(out)
	return out
}

// TestPuliziaDeletesOnlyFilesPastTheirRetention: the old files of
// elaborati/, scartati/ and esiti/ and the old bundle are deleted and
// recorded (name and SHA-256), at most pulizia.max_files per run, the run
// saying how many are left; recent files, files waiting in an input
// folder, a non-bundle in certificati/ and temporary names stay. The same
// on the local drop and over SFTP.
func TestPuliziaDeletesOnlyFilesPastTheirRetention(t *testing.T) {
	for _, over := range []string{"local", "sftp"} {
		t.Run(over, func(t *testing.T) {
			now := time.Now()
			c := newCertEnv(t)
			old, keep := puliziaFixture(t, c, now)
			if over == "sftp" {
				c.env.Drop = sftpDrop(t, c.root)
			}
			c.env.Config.Pulizia.MaxFiles = 4
			counts, err := c.run(puliziaJob)
			if err != nil {
				t.Fatal(err)
			}
			if counts["eliminati"] != 4 || counts["rimanenti"] != len(old)-4 {
				t.Errorf("first run: %v, want 4 deleted and %d left", counts, len(old)-4)
			}
			counts, err = c.run(puliziaJob)
			if err != nil {
				t.Fatal(err)
			}
			if counts["eliminati"] != len(old)-4 || counts["rimanenti"] != 0 {
				t.Errorf("second run: %v", counts)
			}
			for _, rel := range old {
				if c.exists(rel) {
					t.Errorf("%s not deleted", rel)
				}
			}
			for _, rel := range keep {
				if !c.exists(rel) {
					t.Errorf("%s deleted", rel)
				}
			}
			if got := c.deletedFiles(); strings.Join(got, " ") != strings.Join(old, " ") {
				t.Errorf("recorded %v, want %v", got, old)
			}
			if counts, _ := c.run(puliziaJob); counts["eliminati"] != 0 {
				t.Errorf("third run deleted %v", counts)
			}
		})
	}
}

// TestPuliziaCrashMidRunIsFinishedByTheNextRun: a run stopped right after
// committing a file as pending (still in the drop), and one stopped right
// after removing it (not yet recorded), leave a state the next run
// finishes: every old file deleted and recorded exactly once, nothing
// else touched.
func TestPuliziaCrashMidRunIsFinishedByTheNextRun(t *testing.T) {
	for _, step := range []string{"pending", "removed"} {
		t.Run(step, func(t *testing.T) {
			now := time.Now()
			c := newCertEnv(t)
			old, keep := puliziaFixture(t, c, now)
			crash := errors.New("crash")
			n := 0
			puliziaCrash = func(s, name string) error {
				if s == step {
					if n++; n == 2 {
						return crash
					}
				}
				return nil
			}
			_, err := c.run(puliziaJob)
			puliziaCrash = nil
			if !errors.Is(err, crash) {
				t.Fatalf("crashed run: %v", err)
			}
			var f puliziaFile
			if err := c.env.Store.View(func(tx *store.Tx) error { return tx.Meta(puliziaPendingMeta, &f) }); err != nil {
				t.Fatalf("no pending mark after the crash: %v", err)
			}
			if c.exists(f.Name) != (step == "pending") || len(c.deletedFiles()) != 1 {
				t.Errorf("after a crash at %s: %s exists %v, %d recorded", step, f.Name, c.exists(f.Name), len(c.deletedFiles()))
			}
			if _, err := c.run(puliziaJob); err != nil {
				t.Fatal(err)
			}
			for _, rel := range old {
				if c.exists(rel) {
					t.Errorf("%s not deleted", rel)
				}
			}
			for _, rel := range keep {
				if !c.exists(rel) {
					t.Errorf("%s deleted", rel)
				}
			}
			if got := c.deletedFiles(); strings.Join(got, " ") != strings.Join(old, " ") {
				t.Errorf("recorded %v, want each of %v once", got, old)
			}
			if err := c.env.Store.View(func(tx *store.Tx) error { return tx.Meta(puliziaPendingMeta, &f) }); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("pending mark left: %v", err)
			}
		})
	}
}

// TestPuliziaDoesNotFollowASymlinkedFolder: a party that turns a folder of
// its own (a comune's richieste/elaborati/) into a symlink to another
// party's folder inside the drop (the prefettura's consegne/, where files
// wait to be processed) does not make pulizia delete what waits there;
// neither does a comune's certificati/ turned into a link. The same on
// the local drop and over SFTP.
func TestPuliziaDoesNotFollowASymlinkedFolder(t *testing.T) {
	for _, over := range []string{"local", "sftp"} {
		t.Run(over, func(t *testing.T) {
			now := time.Now()
			c := newCertEnv(t)
			puliziaFixture(t, c, now)
			if over == "sftp" {
				c.env.Drop = sftpDrop(t, c.root)
			}
			waiting := []string{"prefetture/058/consegne/in-attesa.csv", "prefetture/058/consegne/vecchio.zip"}
			for _, rel := range waiting {
				full := filepath.Join(c.root, filepath.FromSlash(rel))
				if err := os.WriteFile(full, []byte("in attesa"), 0o644); err != nil {
					t.Fatal(err)
				}
				at := now.Add(-2 * 365 * 24 * time.Hour)
				os.Chtimes(full, at, at)
			}
			for link, target := range map[string]string{
				"comuni/058091/richieste/elaborati": "../../../prefetture/058/consegne",
				"comuni/058091/certificati":         "../../prefetture/058/consegne",
			} {
				full := filepath.Join(c.root, filepath.FromSlash(link))
				if err := os.RemoveAll(full); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, full); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.run(puliziaJob); err != nil {
				t.Fatal(err)
			}
			for _, rel := range waiting {
				if !c.exists(rel) {
					t.Errorf("%s deleted through a symlinked folder", rel)
				}
			}
			for _, name := range c.deletedFiles() {
				if strings.HasPrefix(name, "comuni/058091/richieste/elaborati/") || strings.HasPrefix(name, "comuni/058091/certificati/") {
					t.Errorf("recorded %s, deleted through a symlinked folder", name)
				}
			}
		})
	}
}
