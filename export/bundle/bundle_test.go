package bundle

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var entries = []Entry{
	{Code: "058091-PC-0001", P12: bytes.Repeat([]byte("p12-one "), 200), Password: "653B739E"},
	{Code: "058091-CO-9999", P12: []byte("p12-server"), Password: "0A1B2C3D"},
}

func TestBuild(t *testing.T) {
	data, err := Build(context.Background(), entries, time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(data, entries); err != nil {
		t.Fatal(err)
	}
	if got := string(PasswordText(entries)); got != "058091-PC-0001;653B739E\n058091-CO-9999;0A1B2C3D\n" {
		t.Errorf("password.txt = %q", got)
	}
	if got := Path("058091", "20261125-180000"); got != "comuni/058091/certificati/058091-certificati-20261125-180000.zip" {
		t.Errorf("Path = %s", got)
	}
	// A damaged, truncated or different ZIP does not verify.
	for name, bad := range map[string]struct {
		data    []byte
		entries []Entry
	}{
		"truncated":     {data[:len(data)-10], entries},
		"flipped":       {flip(data, 60), entries},
		"other content": {data, []Entry{entries[0], {Code: entries[1].Code, P12: []byte("other"), Password: entries[1].Password}}},
		"missing entry": {data, entries[:1]},
	} {
		if err := Verify(bad.data, bad.entries); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0xff
	return c
}

func TestBuildRefuses(t *testing.T) {
	for name, es := range map[string][]Entry{
		"empty":     nil,
		"duplicate": {entries[0], entries[0]},
		"slash":     {{Code: "../x", P12: []byte("x"), Password: "A"}},
		"semicolon": {{Code: "058091-PC-0001", P12: []byte("x"), Password: "A;B"}},
	} {
		if _, err := Build(context.Background(), es, time.Now()); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}

// failWriter fails after n bytes: the error must surface even when it hits
// the final close, which archives.Zip.Archive swallows.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteReportsSwallowedCloseError(t *testing.T) {
	data, err := Build(context.Background(), entries, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	names, content, _ := files(entries)
	// The last failure point lies in the central directory, written by the
	// final close whose error archives.Zip.Archive drops.
	for _, n := range []int{0, 100, len(data) - 30} {
		err := write(context.Background(), &failWriter{n: n}, names, content, time.Now())
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("fail after %d bytes: err = %v", n, err)
		}
	}
}
