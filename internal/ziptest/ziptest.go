// Package ziptest rewrites zip archives (workbooks) for tests: replace
// some parts of a valid workbook with fuzzed or hostile ones, read a part.
// Only test files import it.
package ziptest

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"
)

// Rezip copies the archive base, replacing the named parts' content.
func Rezip(tb testing.TB, base []byte, parts map[string][]byte) []byte {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, zf := range zr.File {
		w, err := zw.Create(zf.Name)
		if err != nil {
			tb.Fatal(err)
		}
		if p, ok := parts[zf.Name]; ok {
			w.Write(p)
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			tb.Fatal(err)
		}
		io.Copy(w, rc)
		rc.Close()
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// Part returns the content of the part name of the archive data.
func Part(tb testing.TB, data []byte, name string) []byte {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		tb.Fatal(err)
	}
	for _, zf := range zr.File {
		if zf.Name != name {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			tb.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	tb.Fatalf("no %s in the archive", name)
	return nil
}
