package ingest_test

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clock is a settable clock for Inbox.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// withClock gives the inbox a clock starting at the real time, and a
// Settle of a minute.
func (e *env) withClock() *clock {
	c := &clock{t: time.Now()}
	e.in.Now = c.now
	e.in.Settle = time.Minute
	return c
}

// xlsxBytes is a small zip, whole: what the inbox's own check of a .xlsx
// wants (the processors of these tests read nothing of it).
func xlsxBytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	w, err := z.Create("xl/workbook.xml")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("<workbook/>"), 50))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTwoLooksSecondsApartDoNotSettleAFile(t *testing.T) {
	e := newEnv(t)
	c := e.withClock()
	e.put("a.csv", "uno")
	p := okProc()
	for range 5 {
		e.mustRun(p.process)
		c.advance(5 * time.Second)
	}
	if p.calls.Load() != 0 || !e.exists("a.csv") {
		t.Fatalf("a file unchanged for 25s of a 1m drop.settle was read (calls %d)", p.calls.Load())
	}
	c.advance(40 * time.Second) // 65s since the first sighting
	st := e.mustRun(p.process)
	if p.calls.Load() != 1 || st.Accepted != 1 || !e.exists("elaborati/a.csv") {
		t.Errorf("a file unchanged for drop.settle was not read: calls %d, stats %+v", p.calls.Load(), st)
	}
	e.check()
}

func TestFileOlderThanSettleIsReadAtOnce(t *testing.T) {
	e := newEnv(t)
	e.withClock()
	e.put("a.csv", "uno")
	e.age("a.csv", 2*time.Minute)
	p := okProc()
	e.mustRun(p.process)
	if p.calls.Load() != 1 || !e.exists("elaborati/a.csv") {
		t.Errorf("a file whose mtime is older than drop.settle was not read (calls %d)", p.calls.Load())
	}
	e.check()
}

func TestSettleZeroReadsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.put("a.csv", "uno")
	p := okProc()
	e.mustRun(p.process)
	if p.calls.Load() != 1 {
		t.Errorf("drop.settle 0 did not read a new file at once (calls %d)", p.calls.Load())
	}
	e.check()
}

// A server whose clock is ahead gives mtimes in the future: anprsec's own
// clock still settles the file.
func TestFutureMTimeSettlesByAnprsecsOwnClock(t *testing.T) {
	e := newEnv(t)
	c := e.withClock()
	e.put("a.csv", "uno")
	e.age("a.csv", -time.Hour)
	p := okProc()
	e.mustRun(p.process)
	c.advance(30 * time.Second)
	e.mustRun(p.process)
	if p.calls.Load() != 0 {
		t.Fatalf("a file seen for 30s of a 1m drop.settle was read (calls %d)", p.calls.Load())
	}
	c.advance(31 * time.Second)
	e.mustRun(p.process)
	if p.calls.Load() != 1 || !e.exists("elaborati/a.csv") {
		t.Errorf("a file seen unchanged for drop.settle was not read (calls %d)", p.calls.Load())
	}
	e.check()
}

// The first sighting is in the store: a later run (a new Inbox, as a new
// `jobs run` process makes) counts from it.
func TestSightingsOfSeparateRunsCountTogether(t *testing.T) {
	e := newEnv(t)
	c := e.withClock()
	e.put("a.csv", "uno")
	e.age("a.csv", -time.Hour)
	p := okProc()
	e.mustRun(p.process)
	c.advance(61 * time.Second)
	second := *e.in
	if _, err := second.Run(t.Context(), p.process); err != nil {
		t.Fatal(err)
	}
	if p.calls.Load() != 1 || !e.exists("elaborati/a.csv") {
		t.Errorf("a run 61s after another's first sighting did not read the file (calls %d)", p.calls.Load())
	}
	e.check()
}

func TestAChangeRestartsTheSettling(t *testing.T) {
	e := newEnv(t)
	c := e.withClock()
	e.put("a.csv", "uno")
	e.age("a.csv", -time.Hour)
	p := okProc()
	e.mustRun(p.process)
	c.advance(50 * time.Second)
	e.put("a.csv", "uno due") // it grew
	e.age("a.csv", -time.Hour+time.Second)
	e.mustRun(p.process)
	c.advance(50 * time.Second) // 100s since the first sighting, 50s since the change
	e.mustRun(p.process)
	if p.calls.Load() != 0 {
		t.Fatalf("a file that changed 50s ago was read (calls %d)", p.calls.Load())
	}
	c.advance(11 * time.Second)
	e.mustRun(p.process)
	if p.calls.Load() != 1 || e.read("elaborati/a.csv") != "uno due" {
		t.Errorf("the file was not read whole once unchanged for drop.settle (calls %d)", p.calls.Load())
	}
	e.check()
}

// A .xlsx cut short (no zip central directory) whose mtime is already old,
// as a server with a late clock shows it, is left in place until anprsec
// has seen it unchanged for drop.settle; then it is processed (and a real
// processor refuses it as unreadable).
func TestUnreadableFileLeftInPlaceUntilSettled(t *testing.T) {
	e := newEnv(t)
	c := e.withClock()
	whole := xlsxBytes(t)
	e.put("a.xlsx", string(whole[:len(whole)/2]))
	e.age("a.xlsx", time.Hour)
	p := refuseProc()
	st := e.mustRun(p.process)
	if p.calls.Load() != 0 || !e.exists("a.xlsx") || len(e.ls("esiti")) != 0 || st.Files != 0 || st.Refused != 0 {
		t.Fatalf("a cut .xlsx seen for the first time was handled: calls %d, stats %+v, esiti %v", p.calls.Load(), st, e.ls("esiti"))
	}
	c.advance(61 * time.Second)
	e.mustRun(p.process)
	if p.calls.Load() != 1 || !e.exists("scartati/a.xlsx") {
		t.Fatalf("a cut .xlsx unchanged for drop.settle was not processed (calls %d)", p.calls.Load())
	}
	e.refusedWhole("a.xlsx", "FOGLIO_MANCANTE")
	e.check()
}

// The upload completes while it waits: the whole file is read.
func TestUnreadableFileReadWholeOnceComplete(t *testing.T) {
	e := newEnv(t)
	e.withClock()
	whole := xlsxBytes(t)
	e.put("a.xlsx", string(whole[:len(whole)/2]))
	e.age("a.xlsx", time.Hour)
	p := okProc()
	e.mustRun(p.process)
	e.put("a.xlsx", string(whole))
	e.age("a.xlsx", time.Hour-10*time.Second)
	e.mustRun(p.process)
	if p.calls.Load() != 1 {
		t.Fatalf("the completed .xlsx was not read (calls %d)", p.calls.Load())
	}
	if got, err := os.ReadFile(filepath.Join(e.dir, "elaborati", "a.xlsx")); err != nil || !bytes.Equal(got, whole) {
		t.Errorf("elaborati/a.xlsx: %v, whole %v", err, bytes.Equal(got, whole))
	}
	e.check()
}

func TestUnreadableFileWithSettleZeroIsProcessedAtOnce(t *testing.T) {
	e := newEnv(t)
	e.put("a.xlsx", "PK non è uno zip")
	p := refuseProc()
	e.mustRun(p.process)
	if p.calls.Load() != 1 || !e.exists("scartati/a.xlsx") {
		t.Errorf("with drop.settle 0 a cut .xlsx was not processed at once (calls %d)", p.calls.Load())
	}
	e.check()
}
