package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// runReview3Script runs one inline operator story with the same setup and
// commands as TestScripts (testdata/script/*.txt).
func runReview3Script(t *testing.T, name, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, scriptParams(dir))
}

// TestReview3ComuneFlagNumericISTAT: every --comune ISTAT flag reads an
// ISTAT code the same way. `anprsec export audit --comune 58091` takes it
// as 058091 (cmd/anprsec/export.go: "58091 is 058091"), but `postazioni
// list`, `postazioni bundle`, `utenze list` and `utenze blocca|sblocca|
// cancella` look the five digits up as they are, and tell the operator
// "comune sconosciuto: 58091" or, worse, that a person who works there "non
// ha un'utenza nel comune 58091".
//
// SPEC.md, glossary: "comune | municipality, identified by its 6-digit
// ISTAT code, e.g. `058091` (Roma). ... Always text: a spreadsheet cell
// holding the number 58091 means `058091`."; README (CLI):
// "anprsec postazioni list --comune ISTAT [--stato S]",
// "anprsec postazioni bundle --comune ISTAT [--stato ATTIVO] --out DIR",
// "anprsec utenze list --comune ISTAT".
func TestReview3ComuneFlagNumericISTAT(t *testing.T) {
	runReview3Script(t, "comune-istat", `
anprsec init
replace anprsec.yaml '  settle: 1m' '  settle: 0s'
cp casi.xlsx var/drop/censimento/casi.xlsx
anprsec jobs run ingest-censimento certificati

# export audit already reads 58091 as 058091.
anprsec export audit --comune 58091 --out rep
stdout '^058091: '

# The same comune, typed the same way, for the other commands.
anprsec postazioni list --comune 58091
stdout '^058091-PC-0001 '
anprsec utenze list --comune 58091
stdout '^MRTMRA83T56A269B '
mkdir zip
anprsec postazioni bundle --comune 58091 --out zip
stdout '058091-certificati-\d{8}-\d{6}\.zip: 4 certificati'
`)
}
