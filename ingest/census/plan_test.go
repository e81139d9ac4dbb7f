package census

import (
	"slices"
	"testing"
)

// Chunks hold at most the configured rows; a Postazioni row declaring more
// workstations than one transaction requests gets chunks of its own (up to
// each multiple of workstationsPerChunk, then its own line); a refused row
// never does.
func TestChunksGiveLargePostazioniRowsTheirOwn(t *testing.T) {
	user := item{user: packedUser{s: "u"}}
	ws := func(n int) item { return item{ws: &wsRow{ISTAT: "058091", Count: n}} }
	refused := ws(9998)
	refused.err = &rowError{Code: "X"}
	items := []item{user, user, user, ws(2500), user, ws(1000), refused, user}
	got := planChunks(items, 2)
	want := []chunk{
		{lo: 0, hi: 2},
		{lo: 2, hi: 3},
		{lo: 3, hi: 4, upTo: 1000}, {lo: 3, hi: 4, upTo: 2000}, {lo: 3, hi: 4},
		{lo: 4, hi: 6},
		{lo: 6, hi: 8},
	}
	if !slices.Equal(got, want) {
		t.Errorf("chunks\n got  %v\n want %v", got, want)
	}
	if again := planChunks(items, 2); !slices.Equal(again, got) {
		t.Errorf("a second plan of the same items differs: %v", again)
	}
	if got := planChunks(nil, 2); len(got) != 0 {
		t.Errorf("chunks of no items: %v", got)
	}
}
