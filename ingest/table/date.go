package table

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// Date parses a date cell: dd/mm/yyyy, d/m/yyyy, yyyy-mm-dd, dd-mm-yyyy,
// dd.mm.yyyy, an RFC 3339 date-time (its date), or a spreadsheet serial
// number (1900 date system; a fraction, the time of day, is dropped) as an
// xlsx date cell arrives raw. The result is midnight UTC of that day. The
// error is Italian, for a receipt ("data non valida (atteso gg/mm/aaaa)").
func Date(cell string) (time.Time, error) { return parseDate(cell, false) }

// Date parses a date cell of this table: as the package's Date, with the
// serial numbers of a workbook that counts from 1904 read as such.
func (t *Table) Date(cell string) (time.Time, error) { return parseDate(cell, t.Date1904) }

func parseDate(s string, date1904 bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("data mancante")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if !(f >= 1 && f < 2958466) { // 9999-12-31; also NaN
			return time.Time{}, fmt.Errorf("numero fuori dall'intervallo delle date")
		}
		d, err := excelize.ExcelDateToTime(f, date1904)
		if err != nil {
			return time.Time{}, fmt.Errorf("data non valida")
		}
		return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC), nil
	}
	for _, layout := range []string{"2/1/2006", "2006-01-02", "2-1-2006", "2.1.2006"} {
		if d, err := time.Parse(layout, s); err == nil {
			return d, nil
		}
	}
	if d, err := time.Parse(time.RFC3339, s); err == nil { // some writers store a date-time
		return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("data non valida (atteso gg/mm/aaaa)")
}
