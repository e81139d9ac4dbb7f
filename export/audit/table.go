package audit

import (
	"encoding/csv"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"
)

// Neutralize makes a CSV field safe to open in a spreadsheet: a value
// starting with = + - @ tab or carriage return would be read as a formula,
// so it gets a leading apostrophe (OWASP's CSV injection advice).
func Neutralize(s string) string {
	if Dangerous(s) {
		return "'" + s
	}
	return s
}

// Dangerous reports whether a spreadsheet program could take s for a
// formula.
func Dangerous(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// BOM starts every CSV, so that Excel reads it as UTF-8.
const BOM = "\ufeff"

// kind is how a column's values are written.
type kind int

const (
	kText     kind = iota // string: inline text, text format
	kDate                 // time.Time: dd/mm/yyyy
	kDateTime             // time.Time: dd/mm/yyyy hh:mm:ss
	kInt                  // int
)

type column struct {
	Name  string
	Width float64
	Kind  kind
}

// styles of a workbook.
type styles struct {
	text, head, title, date, dateTime, num int
}

func newStyles(f *excelize.File) (*styles, error) {
	var s styles
	var err error
	textFmt := 49 // "@": the cell stays text even when edited
	mk := func(st *excelize.Style) int {
		if err != nil {
			return 0
		}
		var id int
		id, err = f.NewStyle(st)
		return id
	}
	s.text = mk(&excelize.Style{NumFmt: textFmt})
	s.head = mk(&excelize.Style{NumFmt: textFmt, Font: &excelize.Font{Bold: true},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDE5F0"}}})
	s.title = mk(&excelize.Style{NumFmt: textFmt, Font: &excelize.Font{Bold: true, Size: 13}})
	dd := "dd/mm/yyyy"
	s.date = mk(&excelize.Style{CustomNumFmt: &dd})
	dt := "dd/mm/yyyy hh:mm:ss"
	s.dateTime = mk(&excelize.Style{CustomNumFmt: &dt})
	s.num = mk(&excelize.Style{NumFmt: 1})
	return &s, err
}

// table writes one list to an xlsx sheet (streamed) and/or a CSV, the same
// cells in the same order: an optional header block of label/value lines,
// a blank line, the header row, the data rows.
type table struct {
	cols  []column
	loc   *time.Location
	st    *styles
	sw    *excelize.StreamWriter // nil: no sheet
	cw    *csv.Writer            // nil: no CSV
	row   int                    // last sheet row written
	first int                    // header row number
	last  int                    // last data row
	xrow  []any
	crow  []string
	pipe  *pipe // set: sheet rows are written by the pipe's goroutine
}

// pipe writes sheet rows in a goroutine of its own, so that reading and
// decoding the store overlaps excelize's encoding of the rows. Tables on
// one pipe keep their order; nothing else may touch the workbook until
// wait has returned.
type pipe struct {
	ch     chan []rowJob
	batch  []rowJob
	done   chan error
	err    error
	closed bool
}

type rowJob struct {
	t       *table
	row     int
	xs      []any
	barrier chan struct{}
}

const pipeBatch = 512

func newPipe() *pipe {
	p := &pipe{ch: make(chan []rowJob, 8), done: make(chan error, 1)}
	go func() {
		var err error
		for batch := range p.ch {
			for _, j := range batch {
				if j.barrier != nil {
					close(j.barrier)
					continue
				}
				if err == nil {
					cell, _ := excelize.CoordinatesToCellName(1, j.row)
					err = j.t.sw.SetRow(cell, j.xs)
				}
			}
			if err != nil {
				select {
				case p.done <- err:
				default:
				}
			}
		}
		close(p.done)
	}()
	return p
}

func (p *pipe) failed() error {
	if p.err != nil {
		return p.err
	}
	select {
	case err, ok := <-p.done:
		if ok && err != nil {
			p.err = err
		}
	default:
	}
	return p.err
}

func (p *pipe) add(j rowJob) error {
	p.batch = append(p.batch, j)
	if len(p.batch) >= pipeBatch {
		p.ch <- p.batch
		p.batch = make([]rowJob, 0, pipeBatch)
		return p.failed()
	}
	return nil
}

// sync waits until every row sent so far is written.
func (p *pipe) sync() error {
	b := make(chan struct{})
	p.batch = append(p.batch, rowJob{barrier: b})
	p.ch <- p.batch
	p.batch = make([]rowJob, 0, pipeBatch)
	<-b
	return p.failed()
}

// close ends the goroutine.
func (p *pipe) close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	if len(p.batch) > 0 {
		p.ch <- p.batch
		p.batch = nil
	}
	close(p.ch)
	for err := range p.done {
		if err != nil && p.err == nil {
			p.err = err
		}
	}
	return p.err
}

func newTable(cols []column, loc *time.Location) *table {
	return &table{cols: cols, loc: loc, xrow: make([]any, len(cols)), crow: make([]string, len(cols))}
}

// sheet streams the table to a new sheet of f, with column widths and the
// panes frozen under the header row (headerRow, 1-based).
func (t *table) sheet(f *excelize.File, st *styles, name string, headerRow int) error {
	sw, err := f.NewStreamWriter(name)
	if err != nil {
		return err
	}
	for i, c := range t.cols {
		if err := sw.SetColWidth(i+1, i+1, c.Width); err != nil {
			return err
		}
	}
	top, _ := excelize.CoordinatesToCellName(1, headerRow+1)
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: headerRow, TopLeftCell: top, ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	t.sw, t.st = sw, st
	return nil
}

// csvTo makes the table write CSV to w, BOM first, ";" separated.
func (t *table) csvTo(w io.Writer) error {
	if _, err := io.WriteString(w, BOM); err != nil {
		return err
	}
	t.cw = csv.NewWriter(w)
	t.cw.Comma = ';'
	t.cw.UseCRLF = true
	return nil
}

func (t *table) put(xs []any, cs []string) error {
	t.row++
	if t.pipe != nil {
		if err := t.pipe.add(rowJob{t: t, row: t.row, xs: slices.Clone(xs)}); err != nil {
			return err
		}
	} else if t.sw != nil {
		cell, _ := excelize.CoordinatesToCellName(1, t.row)
		if err := t.sw.SetRow(cell, xs); err != nil {
			return err
		}
	}
	if t.cw != nil {
		return t.cw.Write(cs)
	}
	return nil
}

// line writes a header-block line: a bold label and its values.
func (t *table) line(label string, values ...any) error {
	xs := make([]any, 0, 1+len(values))
	cs := make([]string, 0, 1+len(values))
	if t.st != nil {
		xs = append(xs, excelize.Cell{StyleID: t.st.title, Value: label})
	}
	cs = append(cs, Neutralize(label))
	for _, v := range values {
		switch v := v.(type) {
		case time.Time:
			if t.st != nil {
				xs = append(xs, excelize.Cell{StyleID: t.st.date, Value: v.In(t.loc)})
			}
			cs = append(cs, v.In(t.loc).Format("02/01/2006"))
		default:
			s := v.(string)
			if t.st != nil {
				xs = append(xs, excelize.Cell{StyleID: t.st.text, Value: s})
			}
			cs = append(cs, Neutralize(s))
		}
	}
	return t.put(xs, cs)
}

// blank writes an empty line.
func (t *table) blank() error { return t.put(nil, []string{""}) }

// header writes the header row.
func (t *table) header() error {
	xs := t.xrow[:0]
	cs := t.crow[:0]
	for _, c := range t.cols {
		if t.st != nil {
			xs = append(xs, excelize.Cell{StyleID: t.st.head, Value: c.Name})
		}
		cs = append(cs, Neutralize(c.Name))
	}
	err := t.put(xs, cs)
	t.first = t.row
	return err
}

// data writes one data row: strings for text columns, time.Time for dates
// (zero: empty), int for numbers.
func (t *table) data(vals ...any) error {
	xs := t.xrow[:0]
	cs := t.crow[:0]
	for i, c := range t.cols {
		var v any
		if i < len(vals) {
			v = vals[i]
		}
		var x any
		var s string
		switch c.Kind {
		case kText:
			str, _ := v.(string)
			s = Neutralize(str)
			if str != "" && t.st != nil {
				x = excelize.Cell{StyleID: t.st.text, Value: str}
			}
		case kDate, kDateTime:
			tm, _ := v.(time.Time)
			if !tm.IsZero() {
				tm = tm.In(t.loc)
				style := t.st
				if c.Kind == kDate {
					s = tm.Format("02/01/2006")
					if style != nil {
						x = excelize.Cell{StyleID: style.date, Value: tm}
					}
				} else {
					s = tm.Format("02/01/2006 15:04:05")
					if style != nil {
						x = excelize.Cell{StyleID: style.dateTime, Value: tm}
					}
				}
			}
		case kInt:
			n, _ := v.(int)
			s = strconv.Itoa(n)
			if t.st != nil {
				x = n
			}
		}
		xs = append(xs, x)
		cs = append(cs, s)
	}
	if err := t.put(xs, cs); err != nil {
		return err
	}
	t.last = t.row
	return nil
}

// finish adds the filter (an Excel table over the header and data rows,
// when there is at least one data row) and flushes.
func (t *table) finish(tableName string) error {
	if t.pipe != nil {
		if err := t.pipe.sync(); err != nil {
			return err
		}
	}
	if t.sw != nil {
		if t.last > t.first && t.first > 0 {
			from, _ := excelize.CoordinatesToCellName(1, t.first)
			to, _ := excelize.CoordinatesToCellName(len(t.cols), t.last)
			off := false
			if err := t.sw.AddTable(&excelize.Table{Range: from + ":" + to, Name: tableName,
				StyleName: "TableStyleLight9", ShowRowStripes: &off}); err != nil {
				return err
			}
		}
		if err := t.sw.Flush(); err != nil {
			return err
		}
	}
	if t.cw != nil {
		t.cw.Flush()
		return t.cw.Error()
	}
	return nil
}
