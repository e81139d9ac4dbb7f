package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// tricky strings: what encoding/json escapes (HTML characters, control
// characters, invalid UTF-8, line separators) and what it does not.
var jsonStrings = []string{
	"", "censimento", "utenza.crea", "058091/P:ABCDEFGHIJKLMNOP", "censimento/italia.xlsx",
	`a "quoted" \ back`, "<script>&</script>", "tab\tnew\nline\rcr\bbs\fff\x00nul\x1fus\x7fdel",
	"città Forlì-Cesena", "bad \xff\xfe utf8", "line\u2028sep\u2029para", "emoji 🇮🇹", "profili ASC,ALS",
}

// The history's entries are encoded byte for byte as json.Marshal encodes
// them: their hashes do not depend on the encoder.
func TestEntryJSONIsEncodingJSONs(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 12, 7, 13, 45, 1, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 6, 1, 0, 0, 0, 1000, time.FixedZone("CEST", 2*3600)),
		{},
	}
	n := 0
	for i, s := range jsonStrings {
		for j, tm := range times {
			e := Entry{Seq: uint64(i*1000 + j), Time: tm, Actor: s, Action: jsonStrings[(i+1)%len(jsonStrings)],
				Kind: jsonStrings[(i+2)%len(jsonStrings)], Key: jsonStrings[(i+3)%len(jsonStrings)],
				File: jsonStrings[(i+4)%len(jsonStrings)], Sheet: jsonStrings[(i+5)%len(jsonStrings)],
				Row: []int{0, 2, -1, 1 << 20}[j], Detail: jsonStrings[(i+6)%len(jsonStrings)]}
			want, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendEntryJSON(nil, &e); !bytes.Equal(got, want) {
				t.Errorf("entry %+v:\n got %s\nwant %s", e, got, want)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no entry compared")
	}
}

// The pseudonyms' mappings are encoded as json.Marshal encodes them.
func TestPseudonymJSONIsEncodingJSONs(t *testing.T) {
	for _, p := range []pseudonym{
		{Token: "P:ABCDEFGHIJKLMNOP", Salt: bytes.Repeat([]byte{0xfa}, 16)},
		{Value: "rssmra68a01h501y@example.it", Salt: []byte{1, 2, 3}},
		{Value: "<&>", Salt: []byte{}},
		{Token: "t", Value: "v"},
	} {
		want, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		if got := pseudonymJSON(&p); !bytes.Equal(got, want) {
			t.Errorf("pseudonym %+v:\n got %s\nwant %s", p, got, want)
		}
	}
}

func FuzzEntryJSON(f *testing.F) {
	for _, s := range jsonStrings {
		f.Add(s, int64(1765115101), 7)
	}
	f.Fuzz(func(t *testing.T, s string, sec int64, row int) {
		e := Entry{Seq: uint64(row), Time: time.Unix(sec%253402300799, int64(row)).UTC(), Actor: s, Action: s, Kind: s, Key: s, File: s, Sheet: s, Row: row, Detail: s}
		want, err := json.Marshal(e)
		if err != nil {
			t.Skip()
		}
		if got := appendEntryJSON(nil, &e); !bytes.Equal(got, want) {
			t.Errorf("got %s\nwant %s", got, want)
		}
	})
}

// A drawn pseudonym is the HMAC-SHA256 of crypto/hmac.
func TestDrawnTokenIsHMAC(t *testing.T) {
	for i, v := range append(jsonStrings, "RSSMRA68A01H501Y", "mario.rossi@comune.example.it") {
		salt := bytes.Repeat([]byte{byte(i*37 + 1)}, i%20)
		if got, want := drawnToken(salt, v), pseudoToken(salt, v); got != want {
			t.Errorf("salt %x, %q: %s, want %s", salt, v, got, want)
		}
	}
	long := bytes.Repeat([]byte{9}, 100)
	if got, want := drawnToken(long, "x"), pseudoToken(long, "x"); got != want {
		t.Errorf("long salt: %s, want %s", got, want)
	}
}
