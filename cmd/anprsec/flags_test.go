package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// runInlineScript runs one inline operator story with the same setup and
// commands as TestScripts (testdata/script/*.txt).
func runInlineScript(t *testing.T, name, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, scriptParams(dir))
}

// TestComuneFlagReadsFiveDigitsAsISTATCode: every --comune flag reads an
// ISTAT code as the census reads it (docs/rules.md#census): the code is
// always six digits of text, and five digits, as a spreadsheet cell holding
// the number 58091 shows them, are the code 058091. export audit,
// postazioni list, postazioni bundle and utenze list all find Roma by
// --comune 58091.
func TestComuneFlagReadsFiveDigitsAsISTATCode(t *testing.T) {
	runInlineScript(t, "comune-istat", `
anprsec init
replace anprsec.yaml '  settle: 1m' '  settle: 0s'
cp casi.xlsx var/drop/censimento/casi.xlsx
anprsec jobs run ingest-censimento certificati

# export audit reads 58091 as 058091.
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
