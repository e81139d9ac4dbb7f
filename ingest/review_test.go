package ingest_test

import (
	"strings"
	"testing"
)

// A file name the file system accepts (255 bytes) but whose receipt name
// (<name>.esito.csv, written as .<name>.esito.csv.tmp first) does not fit:
// the file is neither processed nor refused, every run fails on it, and the
// dropping party never gets a receipt. Issue 7: "every hostile file above
// is refused with a reason and nothing else is disturbed".
func TestReviewLongNameGetsAReceipt(t *testing.T) {
	e := newEnv(t)
	name := strings.Repeat("a", 255-len(".csv")) + ".csv"
	e.put(name, "x;y\n1;2\n")
	p := okProc()
	for i := 0; i < 2; i++ {
		if _, err := e.run(p.process); err != nil {
			t.Errorf("run %d: %v", i+1, err)
		}
	}
	if got := e.ls("esiti"); len(got) == 0 {
		t.Errorf("no receipt at all for a file with a 255-byte name; inbox still holds %d file(s)", len(e.ls("")))
	}
}

// A companion is recognized case-insensitively (isCompanion uses
// EqualFold), but looked for and moved by the exact name <file>.asc
// (names[e.Name+Companion], moveCompanion, consegne's Open(f.Path+".asc")).
// A signature dropped as "ELENCO.CSV.ASC" (upper case, as Windows tools
// write it) is therefore neither moved with its file nor refused: it stays
// in the input folder forever, without a receipt, and the manifest is
// processed as if unsigned.
func TestReviewUpperCaseCompanionLeftBehind(t *testing.T) {
	e := newEnv(t)
	e.in.Companion = ".asc"
	e.put("ELENCO.CSV", "x;y\n1;2\n")
	e.put("ELENCO.CSV.ASC", "-----BEGIN PGP SIGNATURE-----\n")
	e.mustRun(okProc().process)
	e.mustRun(okProc().process)
	if left := e.ls(""); len(left) != 0 {
		t.Errorf("left in the input folder after two runs: %q (elaborati: %q, scartati: %q)", left, e.ls("elaborati"), e.ls("scartati"))
	}
}
