package audit

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/internal/cellsafe"
)

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
// a blank line, the header row, the data rows. A row is built cell by cell
// (begin, text/date/number, end) into reused buffers: no slice or boxed
// excelize.Cell per row.
type table struct {
	cols  []column
	loc   *time.Location
	st    *styles
	sw    *excelize.StreamWriter // nil: no sheet
	cw    *csv.Writer            // nil: no CSV
	row   int                    // last sheet row written
	first int                    // header row number
	last  int                    // last data row
	crow  []string               // CSV fields of the row being built
	start int                    // first value of the row being built in buf().vals
	ncell int                    // cells of the row being built
	local rowBuf                 // the row buffer without a pipe
	pipe  *pipe                  // set: sheet rows are written by the pipe's goroutine
}

// rowBuf holds the sheet values of rows not yet written: the cells live in
// one slice and the rows point into it (a *excelize.Cell in an interface
// costs no allocation, a Cell does).
type rowBuf struct {
	cells []excelize.Cell
	vals  []any
}

func (b *rowBuf) reset() {
	clear(b.cells)
	clear(b.vals)
	b.cells, b.vals = b.cells[:0], b.vals[:0]
}

// pipe writes sheet rows in a goroutine of its own, so that reading and
// decoding the store overlaps excelize's encoding of the rows. Tables on
// one pipe keep their order; nothing else may touch the workbook until
// wait has returned. Batches go back to the builder through free once
// written, with their buffers.
type pipe struct {
	ch     chan *batch
	free   chan *batch
	cur    *batch
	done   chan error
	err    error
	closed bool
}

type batch struct {
	jobs []rowJob
	buf  rowBuf
}

type rowJob struct {
	t       *table
	row     int
	xs      []any
	barrier chan struct{}
}

const pipeBatch = 512

func newPipe() *pipe {
	p := &pipe{ch: make(chan *batch, 4), free: make(chan *batch, 6), done: make(chan error, 1)}
	p.cur = p.newBatch()
	go func() {
		var err error
		for b := range p.ch {
			var last *table
			for _, j := range b.jobs {
				if j.barrier != nil {
					close(j.barrier)
					continue
				}
				if err == nil {
					cell, _ := excelize.CoordinatesToCellName(1, j.row)
					err = j.t.sw.SetRow(cell, j.xs)
				}
				if err == nil && last != nil && last != j.t {
					err = spill(last.sw)
				}
				last = j.t
			}
			if err == nil && last != nil {
				err = spill(last.sw)
			}
			if err != nil {
				select {
				case p.done <- err:
				default:
				}
			}
			clear(b.jobs)
			b.jobs = b.jobs[:0]
			b.buf.reset()
			select {
			case p.free <- b:
			default:
			}
		}
		close(p.done)
	}()
	return p
}

func (p *pipe) newBatch() *batch {
	select {
	case b := <-p.free:
		return b
	default:
		return &batch{jobs: make([]rowJob, 0, pipeBatch),
			buf: rowBuf{cells: make([]excelize.Cell, 0, pipeBatch*14), vals: make([]any, 0, pipeBatch*14)}}
	}
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

func (p *pipe) send() {
	p.ch <- p.cur
	p.cur = p.newBatch()
}

func (p *pipe) add(j rowJob) error {
	p.cur.jobs = append(p.cur.jobs, j)
	if len(p.cur.jobs) >= pipeBatch {
		p.send()
		return p.failed()
	}
	return nil
}

// sync waits until every row sent so far is written.
func (p *pipe) sync() error {
	b := make(chan struct{})
	p.cur.jobs = append(p.cur.jobs, rowJob{barrier: b})
	p.send()
	<-b
	return p.failed()
}

// close ends the goroutine.
func (p *pipe) close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	if len(p.cur.jobs) > 0 {
		p.ch <- p.cur
	}
	p.cur = nil
	close(p.ch)
	for err := range p.done {
		if err != nil && p.err == nil {
			p.err = err
		}
	}
	return p.err
}

func newTable(cols []column, loc *time.Location) *table {
	return &table{cols: cols, loc: loc, crow: make([]string, 0, len(cols))}
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

func (t *table) buf() *rowBuf {
	if t.pipe != nil {
		return &t.pipe.cur.buf
	}
	return &t.local
}

// begin starts a row.
func (t *table) begin() {
	t.start = len(t.buf().vals)
	t.ncell = 0
	t.crow = t.crow[:0]
}

// styled adds a sheet cell with a style (nil v: an empty cell).
func (t *table) styled(style int, v any) {
	b := t.buf()
	if v == nil {
		b.vals = append(b.vals, nil)
		return
	}
	b.cells = append(b.cells, excelize.Cell{StyleID: style, Value: v})
	b.vals = append(b.vals, &b.cells[len(b.cells)-1])
}

// text adds a text cell: an inline string with the text format in the
// sheet (never a formula), neutralized in the CSV.
func (t *table) text(s string) {
	t.ncell++
	if t.sw != nil {
		if s == "" {
			t.styled(0, nil)
		} else {
			t.styled(t.st.text, s)
		}
	}
	if t.cw != nil {
		t.crow = append(t.crow, cellsafe.Neutralize(s))
	}
}

// time adds a date (dd/mm/yyyy) or, in a kDateTime column, a date and time
// cell; the zero time is an empty cell.
func (t *table) time(tm time.Time) {
	withTime := t.ncell < len(t.cols) && t.cols[t.ncell].Kind == kDateTime
	t.ncell++
	if tm.IsZero() {
		if t.sw != nil {
			t.styled(0, nil)
		}
		if t.cw != nil {
			t.crow = append(t.crow, "")
		}
		return
	}
	tm = tm.In(t.loc)
	if t.sw != nil {
		if withTime {
			t.styled(t.st.dateTime, tm)
		} else {
			t.styled(t.st.date, tm)
		}
	}
	if t.cw != nil {
		if withTime {
			t.crow = append(t.crow, tm.Format("02/01/2006 15:04:05"))
		} else {
			t.crow = append(t.crow, tm.Format("02/01/2006"))
		}
	}
}

// number adds an integer cell (general format).
func (t *table) number(n int) {
	t.ncell++
	if t.sw != nil {
		b := t.buf()
		b.vals = append(b.vals, n)
	}
	if t.cw != nil {
		t.crow = append(t.crow, strconv.Itoa(n))
	}
}

// end writes the row begun by begin.
func (t *table) end() error {
	t.row++
	if t.sw != nil {
		b := t.buf()
		xs := b.vals[t.start:len(b.vals):len(b.vals)]
		if t.pipe != nil {
			if err := t.pipe.add(rowJob{t: t, row: t.row, xs: xs}); err != nil {
				return err
			}
		} else {
			cell, _ := excelize.CoordinatesToCellName(1, t.row)
			err := t.sw.SetRow(cell, xs)
			b.reset()
			if err != nil {
				return err
			}
		}
	}
	if t.cw != nil {
		return t.cw.Write(t.crow)
	}
	return nil
}

// line writes a header-block line: a bold label and its values (string or
// time.Time, a date).
func (t *table) line(label string, values ...any) error {
	t.begin()
	if t.sw != nil {
		t.styled(t.st.title, label)
	}
	if t.cw != nil {
		t.crow = append(t.crow, cellsafe.Neutralize(label))
	}
	for _, v := range values {
		switch v := v.(type) {
		case time.Time:
			if t.sw != nil {
				t.styled(t.st.date, v.In(t.loc))
			}
			if t.cw != nil {
				t.crow = append(t.crow, v.In(t.loc).Format("02/01/2006"))
			}
		default:
			s := v.(string)
			if t.sw != nil {
				t.styled(t.st.text, s)
			}
			if t.cw != nil {
				t.crow = append(t.crow, cellsafe.Neutralize(s))
			}
		}
	}
	return t.end()
}

// blank writes an empty line.
func (t *table) blank() error {
	t.begin()
	if t.cw != nil {
		t.crow = append(t.crow, "")
	}
	return t.end()
}

// header writes the header row.
func (t *table) header() error {
	t.begin()
	for _, c := range t.cols {
		if t.sw != nil {
			t.styled(t.st.head, c.Name)
		}
		if t.cw != nil {
			t.crow = append(t.crow, cellsafe.Neutralize(c.Name))
		}
	}
	err := t.end()
	t.first = t.row
	return err
}

// data writes one data row: strings for text columns, time.Time for dates
// (zero: empty), int for numbers.
func (t *table) data(vals ...any) error {
	t.begin()
	for i, c := range t.cols {
		var v any
		if i < len(vals) {
			v = vals[i]
		}
		switch c.Kind {
		case kText:
			s, _ := v.(string)
			t.text(s)
		case kDate, kDateTime:
			tm, _ := v.(time.Time)
			t.time(tm)
		case kInt:
			n, _ := v.(int)
			t.number(n)
		}
	}
	return t.endData()
}

// endData writes a data row begun by begin.
func (t *table) endData() error {
	if err := t.end(); err != nil {
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
