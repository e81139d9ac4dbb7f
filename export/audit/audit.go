// Package audit writes the security audit exports (docs/rules.md#audit):
// for each comune the list of its registered users with their
// authorization level and the list of its workstations, for the ALS to
// check; for the security reviews one national workbook (summary with
// charts, anomalies, history of the period, the national user list) and
// monthly CSV figures per comune.
//
// Everything is read from the store inside one read-only transaction per
// file and written as it is read: sheets through excelize's StreamWriter,
// CSV through encoding/csv, so the whole of Italy never sits in memory:
// the national export keeps only per-comune figures, the state and expiry
// of each card and a compact index of persons (name, card, last change:
// some 6 MB for Italy, read in one scan), and drops from its resident set
// the store's memory-mapped pages that its scans have touched
// (store.ReleaseMapped).
// What leaves is safe to open: a text cell starting with = + - @ tab or
// carriage return is prefixed with an apostrophe in CSV and is always an
// inline string with the text number format in xlsx, never a formula.
// Every file is built locally (large ones in a temporary file) and handed
// to a Target, whose Write must be atomic (temporary name, then rename);
// *drop.Local and the SFTP drop are Targets.
package audit

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"time"
	_ "time/tzdata" // Europe/Rome on systems without a zoneinfo database

	"github.com/klauspost/compress/flate"
	"github.com/xuri/excelize/v2"

	"anprsec/istat"
	"anprsec/lifecycle"
	"anprsec/store"
)

// Target receives finished files. Write must store r under name (a
// slash-separated relative path) atomically: under a temporary name, then
// renamed, creating parent folders. drop.Drop satisfies it; for a
// plain folder use drop.NewLocal(dir).
type Target interface {
	Write(ctx context.Context, name string, r io.Reader) error
}

// Exporter writes the audit exports of one store to one Target.
type Exporter struct {
	Store  *store.Store
	Target Target

	// Flat puts every file at the root of the Target (the CLI's --out DIR)
	// instead of the drop layout: comuni/<ISTAT>/report/ for a comune's
	// lists, sicurezza/report/ for the national reports.
	Flat bool
	// TempDir holds the national workbook while it is built, and
	// excelize's stream buffers; "" is os.TempDir().
	TempDir string
	// Location is the time zone of dates and file names; nil is
	// Europe/Rome.
	Location *time.Location
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Table is the table of comuni in force (nil: the embedded one): a
	// censused comune that is no longer in it is an anomaly.
	Table *istat.Table
	// ExpiryWindow: certificates and cards expiring within it are
	// anomalies; 0 is 30 days.
	ExpiryWindow time.Duration
	// ManyComuni: a person with utenze in at least this many comuni is an
	// anomaly; 0 is 3.
	ManyComuni int
	// Late: the cards late in production by this rule are anomalies (a
	// zero rule: none).
	Late lifecycle.LateRule
}

// Period is the half-open time interval [From, To) of the history sheet,
// the refused requests and the monthly figures.
type Period struct {
	From, To time.Time
}

// DefaultPeriod is the period of a scheduled run: from the first day of the
// previous month (in loc) to now, so that the monthly CSVs cover the last
// complete month and the current one so far.
func DefaultPeriod(now time.Time, loc *time.Location) Period {
	if loc == nil {
		loc = rome()
	}
	n := now.In(loc)
	from := time.Date(n.Year(), n.Month()-1, 1, 0, 0, 0, 0, loc)
	return Period{From: from, To: now}
}

func rome() *time.Location {
	loc, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		return time.UTC
	}
	return loc
}

func (e *Exporter) loc() *time.Location {
	if e.Location == nil {
		e.Location = rome()
	}
	return e.Location
}

func (e *Exporter) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Exporter) window() time.Duration {
	if e.ExpiryWindow > 0 {
		return e.ExpiryWindow
	}
	return 30 * 24 * time.Hour
}

func (e *Exporter) many() int {
	if e.ManyComuni > 0 {
		return e.ManyComuni
	}
	return 3
}

func (e *Exporter) tempDir() string {
	if e.TempDir != "" {
		return e.TempDir
	}
	return os.TempDir()
}

// ComuneDir is the drop folder of a comune's reports.
func ComuneDir(istat string) string { return "comuni/" + istat + "/report" }

// NationalDir is the drop folder of the national reports.
const NationalDir = "sicurezza/report"

// UsersName is the base name of a comune's user list (.xlsx or .csv) made
// on day (YYYYMMDD).
func UsersName(istat, day, ext string) string { return "utenti-" + istat + "-" + day + ext }

// WorkstationsName is the base name of a comune's workstation CSV.
func WorkstationsName(istat, day string) string { return "postazioni-" + istat + "-" + day + ".csv" }

// NationalName is the base name of the national workbook.
func NationalName(day string) string { return "sicurezza-" + day + ".xlsx" }

// MonthlyName is the base name of the monthly CSV of month (YYYY-MM).
func MonthlyName(month string) string { return "mensile-" + month + ".csv" }

func (e *Exporter) place(dir, base string) string {
	if e.Flat {
		return base
	}
	return path.Join(dir, base)
}

func (e *Exporter) day(t time.Time) string { return t.In(e.loc()).Format("20060102") }

// putFile hands a local file to the Target.
func (e *Exporter) putFile(ctx context.Context, name, local string) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := e.Target.Write(ctx, name, f); err != nil {
		return fmt.Errorf("audit: scrittura di %s: %w", name, err)
	}
	return nil
}

// zipLevel is the deflate level of the workbooks, with klauspost's
// implementation of deflate (the standard format: any ZIP reader opens
// it). Its level 5 compresses the national workbook's 200 MB of sheet XML
// about three times faster than archive/zip's default (compress/flate
// level 6: 1.5 s of a 3.2 s export) for a file some 6% larger (level 3:
// five times faster, 18% larger).
const zipLevel = 5

var flaters sync.Pool

// pooledFlate goes back to flaters when closed.
type pooledFlate struct{ *flate.Writer }

func (w pooledFlate) Close() error {
	err := w.Writer.Close()
	flaters.Put(w.Writer)
	return err
}

// saveTo writes the workbook to out. excelize's WriteTo and SaveAs build
// the whole ZIP in a memory buffer first; handing it a zip.Writer on the
// file instead streams the compressed parts straight to disk (the buffer
// it is given stays empty).
func saveTo(f *excelize.File, out *os.File) error {
	zw := zip.NewWriter(out)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		if fw, ok := flaters.Get().(*flate.Writer); ok {
			fw.Reset(w)
			return pooledFlate{fw}, nil
		}
		fw, err := flate.NewWriter(w, zipLevel)
		return pooledFlate{fw}, err
	})
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zw })
	_, err := f.WriteTo(io.Discard)
	return err
}
