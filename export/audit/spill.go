package audit

import (
	"bytes"
	"os"
	"reflect"
	"unsafe"

	"github.com/xuri/excelize/v2"
)

// spillAt: once a streamed sheet holds this many bytes of rows in memory,
// spill moves them to the sheet's temporary file. excelize keeps up to 16
// MB of a streamed sheet in a memory buffer before it writes them to a
// temporary file, and keeps the buffer's capacity (16-32 MB) until the
// workbook is closed: the national workbook's large sheets held 45 MB of
// heap so.
const spillAt = 1 << 20

// sheetBuffer is where excelize keeps a streamed sheet's rows: the memory
// buffer, the temporary file (nil until the first spill) and its folder.
// excelize has no option for it, so it is reached by reflection; ok is
// false when this version of excelize keeps it elsewhere (then spill does
// nothing).
func sheetBuffer(sw *excelize.StreamWriter) (buf *bytes.Buffer, tmp **os.File, dir string, ok bool) {
	raw := reflect.ValueOf(sw).Elem().FieldByName("rawData")
	if !raw.IsValid() || raw.Kind() != reflect.Struct {
		return nil, nil, "", false
	}
	b, t, d := raw.FieldByName("buf"), raw.FieldByName("tmp"), raw.FieldByName("tmpDir")
	if !b.IsValid() || b.Type() != reflect.TypeFor[bytes.Buffer]() ||
		!t.IsValid() || t.Type() != reflect.TypeFor[*os.File]() ||
		!d.IsValid() || d.Kind() != reflect.String {
		return nil, nil, "", false
	}
	return (*bytes.Buffer)(unsafe.Pointer(b.UnsafeAddr())), (**os.File)(unsafe.Pointer(t.UnsafeAddr())), d.String(), true
}

// spill appends the rows of sw held in memory to its temporary file
// (created like excelize creates it, and removed by it when the workbook
// is closed) once they exceed spillAt, and gives the buffer back: a
// sheet then holds about spillAt bytes of heap, whatever its size. Only
// the goroutine writing sw's rows may call it.
func spill(sw *excelize.StreamWriter) error {
	buf, tmp, dir, ok := sheetBuffer(sw)
	if !ok || buf.Len() < spillAt {
		return nil
	}
	if *tmp == nil {
		f, err := os.CreateTemp(dir, "excelize-")
		if err != nil {
			return nil // excelize keeps the rows in memory, as it would
		}
		*tmp = f
	}
	if _, err := buf.WriteTo(*tmp); err != nil {
		return err
	}
	if buf.Cap() > 4*spillAt {
		*buf = bytes.Buffer{} // grown before the first spill
	}
	return nil
}
