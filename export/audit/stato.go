package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/store"
)

// StatusFiles are the drop paths of one STATO report.
type StatusFiles struct {
	XLSX       string
	UsersCSV   string // "" when the report has no utenze
	StationCSV string // "" when the report has no postazioni
	Utenze     int
	Postazioni int
}

// StatusName is the base name of a STATO report of comune istat stamped
// stamp (YYYYMMDD-HHMMSS), with suffix "" for the workbook (.xlsx) or
// "-utenti" / "-postazioni" for its CSVs.
func StatusName(istat, stamp, suffix, ext string) string {
	return "stato-" + istat + "-" + stamp + suffix + ext
}

// Status writes the STATO report of comune istat asked at stamp, with
// what view shows: stato-<ISTAT>-<stamp>.xlsx (sheet Utenti with the
// utenze and their cards, sheet Postazioni), and the same rows as
// stato-<ISTAT>-<stamp>-utenti.csv and -postazioni.csv, in the comune's
// report folder. The lists are those of the audit (same columns, same
// neutralising of cells), read from the store as it is when the report is
// written; writing it again gives the same names.
func (e *Exporter) Status(ctx context.Context, istat, stamp string, view lifecycle.StatusView) (StatusFiles, error) {
	var out StatusFiles
	if !view.Utenze && !view.Postazioni {
		return out, errors.New("audit: un rapporto di stato senza niente da mostrare")
	}
	dir := ComuneDir(istat)
	out.XLSX = e.place(dir, StatusName(istat, stamp, "", ".xlsx"))
	if view.Utenze {
		out.UsersCSV = e.place(dir, StatusName(istat, stamp, "-utenti", ".csv"))
	}
	if view.Postazioni {
		out.StationCSV = e.place(dir, StatusName(istat, stamp, "-postazioni", ".csv"))
	}
	f := excelize.NewFile(excelize.Options{TmpDir: e.tempDir()})
	defer f.Close()
	var ucsv, wcsv bytes.Buffer
	err := e.Store.View(func(tx *store.Tx) error {
		c, err := tx.Comune(istat)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("audit: %s: %w", istat, ErrUnknownComune)
		}
		if err != nil {
			return err
		}
		out.Utenze, out.Postazioni, err = e.statusBook(tx, f, c, view, &ucsv, &wcsv)
		return err
	})
	if err != nil {
		return out, err
	}
	if err := e.publishWorkbook(ctx, f, ".stato-*.xlsx", out.XLSX); err != nil {
		return out, err
	}
	for name, data := range map[string]*bytes.Buffer{out.UsersCSV: &ucsv, out.StationCSV: &wcsv} {
		if name == "" {
			continue
		}
		if err := e.Target.Write(ctx, name, data); err != nil {
			return out, fmt.Errorf("audit: scrittura di %s: %w", name, err)
		}
	}
	return out, nil
}

// statusBook fills f with the sheets of view for comune c.
func (e *Exporter) statusBook(tx *store.Tx, f *excelize.File, c *domain.Comune, view lifecycle.StatusView, ucsv, wcsv *bytes.Buffer) (nu, nw int, err error) {
	st, err := newStyles(f)
	if err != nil {
		return 0, 0, err
	}
	first := UsersSheet
	if !view.Utenze {
		first = WorkstationsSheet
	}
	if err := f.SetSheetName("Sheet1", first); err != nil {
		return 0, 0, err
	}
	if view.Utenze && view.Postazioni {
		if _, err := f.NewSheet(WorkstationsSheet); err != nil {
			return 0, 0, err
		}
	}
	f.SetDocProps(&excelize.DocProperties{Title: "Stato - " + c.Name, Creator: "anprsec"})
	now := e.now()
	if view.Utenze {
		if nu, err = e.usersSheet(tx, f, st, c, now, ucsv); err != nil {
			return 0, 0, err
		}
	}
	if view.Postazioni {
		if nw, err = e.workstationsSheet(tx, f, st, c, now, wcsv); err != nil {
			return 0, 0, err
		}
	}
	return nu, nw, nil
}
