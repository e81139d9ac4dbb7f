package table_test

import (
	"fmt"
	"strings"
	"testing"

	"anprsec/ingest/table"
)

// BenchmarkCSV100k reads a 100,000-row manifest (about 7 MB, Italian Excel
// style: ';', CRLF).
func BenchmarkCSV100k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(hdr + ";Note\r\n")
	for i := range 100_000 {
		fmt.Fprintf(&sb, "%06d;SC%07d;RSSMRA68A01H501Y;14/03/2025;CCCFBA85D03L219P;consegna n. %d\r\n", 1000+i%7900, i, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		tb, err := table.Open("f.csv", data, manifest)
		if err != nil {
			b.Fatal(err)
		}
		if len(tb.Rows) != 100_000 || tb.Rows[99_999].Line != 100_001 {
			b.Fatalf("%d rows", len(tb.Rows))
		}
	}
}
