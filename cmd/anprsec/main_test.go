package main

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rogpeppe/go-internal/testscript"

	"anprsec/internal/control"
	"anprsec/lifecycle"
)

// TestMain makes the test binary double as the anprsec command: the scripts
// in testdata/script run "anprsec ..." as a real process (main calls
// os.Exit(1) on error, exactly as the installed binary does).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"anprsec": main})
}

// fixtures are copied into the work dir of every script ($WORK), so a
// script can "cp casi.xlsx var/drop/censimento/".
var fixtures = map[string]string{
	"casi.xlsx":   "../../ingest/census/testdata/casi.xlsx",   // written by LibreOffice; verdicts in census_test.go
	"luoghi.xlsx": "../../ingest/census/testdata/luoghi.xlsx", // Misiliscemi (081025); verdicts in luoghi_test.go
}

// TestScripts runs the operator stories of testdata/script/*.txt: each is a
// sequence an operator could type, with the checks of what they would see.
func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams("testdata/script"))
}

// scriptParams are the setup and commands of the operator stories in dir
// (*.txt).
func scriptParams(dir string) testscript.Params {
	return testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			// A 2048-bit development CA: init runs in most scripts, and a
			// 4096-bit key takes seconds to generate.
			env.Setenv("ANPRSEC_DEV_CA_BITS", "2048")
			// The author of back-office changes, as the CLI names it.
			env.Setenv("OSUSER", strings.TrimPrefix(operatorActor(), lifecycle.BackOfficeActor+":"))
			// The author of changes made through the control socket: the
			// OS user of the connection.
			me, err := user.Current()
			if err != nil {
				return err
			}
			env.Setenv("PEERUSER", me.Username)
			if err := twoComuni(env); err != nil {
				return err
			}
			for name, src := range fixtures {
				data, err := os.ReadFile(src)
				if err != nil {
					return fmt.Errorf("fixture %s: %w", name, err)
				}
				if err := os.WriteFile(filepath.Join(env.WorkDir, name), data, 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"esito":        cmdEsito,
			"esitolines":   cmdEsitoLines,
			"perm":         cmdPerm,
			"size":         cmdSize,
			"nocleartext":  cmdNoCleartext,
			"replace":      cmdReplace,
			"waitfor":      cmdWaitFor,
			"waitsocket":   cmdWaitSocket,
			"zipcmp":       cmdZipCmp,
			"pgpdecrypt":   cmdPGPDecrypt,
			"globcp":       cmdGlobCp,
			"pgpsign":      cmdPGPSign,
			"lineends":     cmdLineEnds,
			"anprarchivio": cmdAnprArchive,
		},
	}
}

// readEsito parses a receipt (docs/rules.md#drops-and-receipts): UTF-8,
// ';'-separated, header foglio;riga;esito;codice;messaggio. It fails the
// script on a bad header or a line that is not five fields.
func readEsito(ts *testscript.TestScript, file string) [][]string {
	data, err := os.ReadFile(ts.MkAbs(file))
	ts.Check(err)
	if !utf8.Valid(data) {
		ts.Fatalf("%s: receipt is not valid UTF-8", file)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = ';'
	r.FieldsPerRecord = 5
	recs, err := r.ReadAll()
	if err != nil {
		ts.Fatalf("%s: not a receipt: %v\n%s", file, err, data)
	}
	if len(recs) == 0 || strings.Join(recs[0], ";") != "foglio;riga;esito;codice;messaggio" {
		ts.Fatalf("%s: receipt header is not foglio;riga;esito;codice;messaggio:\n%s", file, data)
	}
	for _, rec := range recs[1:] {
		if _, err := strconv.Atoi(rec[1]); err != nil {
			ts.Fatalf("%s: riga %q is not a number", file, rec[1])
		}
		if rec[2] != "OK" && rec[2] != "SCARTATO" {
			ts.Fatalf("%s: esito %q is neither OK nor SCARTATO", file, rec[2])
		}
	}
	return recs[1:]
}

// esito FILE SHEET:ROW OUTCOME CODE [TEXT]
//
// asserts that the receipt FILE has exactly one line for SHEET:ROW (":0" for
// the riga-0 line of a refused file), with esito OUTCOME, codice CODE and,
// if given, a messaggio containing TEXT. "! esito FILE SHEET:ROW" asserts
// there is no line for that row.
func cmdEsito(ts *testscript.TestScript, neg bool, args []string) {
	if (neg && len(args) != 2) || (!neg && len(args) != 4 && len(args) != 5) {
		ts.Fatalf("usage: esito FILE SHEET:ROW OUTCOME CODE [TEXT] | ! esito FILE SHEET:ROW")
	}
	var found [][]string
	for _, rec := range readEsito(ts, args[0]) {
		if rec[0]+":"+rec[1] == args[1] {
			found = append(found, rec)
		}
	}
	if neg {
		if len(found) > 0 {
			ts.Fatalf("%s: unexpected line for %s: %q", args[0], args[1], found)
		}
		return
	}
	if len(found) != 1 {
		ts.Fatalf("%s: %d lines for %s, want 1: %q", args[0], len(found), args[1], found)
	}
	rec := found[0]
	if rec[2] != args[2] || rec[3] != args[3] {
		ts.Fatalf("%s: %s is %s %s (%s), want %s %s", args[0], args[1], rec[2], rec[3], rec[4], args[2], args[3])
	}
	if len(args) == 5 && !strings.Contains(rec[4], args[4]) {
		ts.Fatalf("%s: %s message %q does not contain %q", args[0], args[1], rec[4], args[4])
	}
}

// esitolines FILE N [OUTCOME]
//
// asserts that the receipt FILE has N data lines (after the header), or N
// lines with esito OUTCOME.
func cmdEsitoLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || (len(args) != 2 && len(args) != 3) {
		ts.Fatalf("usage: esitolines FILE N [OUTCOME]")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	n := 0
	for _, rec := range readEsito(ts, args[0]) {
		if len(args) == 2 || rec[2] == args[2] {
			n++
		}
	}
	if n != want {
		ts.Fatalf("%s: %d lines %s, want %d", args[0], n, strings.Join(args[2:], ""), want)
	}
}

// perm FILE MODE
//
// asserts the permission bits of FILE (octal, e.g. 0600); "! perm" asserts
// they differ. To change them, use the built-in chmod.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fi.Mode().Perm()
	if (got == fs.FileMode(want)) == neg {
		ts.Fatalf("%s: mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// size FILE BYTES
//
// asserts the size of FILE.
func cmdSize(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: size FILE BYTES")
	}
	want, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if fi.Size() != want {
		ts.Fatalf("%s: %d bytes, want %d", args[0], fi.Size(), want)
	}
}

// nocleartext PATH STRING...
//
// asserts that no STRING occurs in the bytes of PATH, a file or (recursively)
// every file of a folder: a backup or the data dir must not show personal
// data to whoever copies the file.
func cmdNoCleartext(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: nocleartext PATH STRING...")
	}
	root := ts.MkAbs(args[0])
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, s := range args[1:] {
			if bytes.Contains(data, []byte(s)) {
				ts.Fatalf("%s: %q is in clear", p, s)
			}
		}
		return nil
	})
	ts.Check(err)
	if files == 0 {
		ts.Fatalf("nocleartext %s: no file to look at", args[0])
	}
}

// replace FILE OLD NEW
//
// replaces the only occurrence of OLD in FILE with NEW (an operator editing
// one value of the commented default config). It fails when OLD does not
// occur exactly once. "\n" in OLD and NEW stands for a newline.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	p := ts.MkAbs(args[0])
	data, err := os.ReadFile(p)
	ts.Check(err)
	old := strings.ReplaceAll(args[1], `\n`, "\n")
	nu := strings.ReplaceAll(args[2], `\n`, "\n")
	if n := strings.Count(string(data), old); n != 1 {
		ts.Fatalf("%s: %q occurs %d times, want 1", args[0], old, n)
	}
	fi, err := os.Stat(p)
	ts.Check(err)
	ts.Check(os.WriteFile(p, []byte(strings.Replace(string(data), old, nu, 1)), fi.Mode().Perm()))
}

// waitfor PATH
//
// waits (up to 10 s) until PATH exists, e.g. the lock a background daemon
// takes on the data dir. "! waitfor PATH" waits until it is gone.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfor PATH")
	}
	p := ts.MkAbs(args[0])
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(p); (err == nil) != neg {
			return
		}
	}
	ts.Fatalf("waitfor %s: still %s after 10s", args[0], map[bool]string{true: "there", false: "missing"}[neg])
}

// waitsocket PATH
//
// waits (up to 10 s) until a daemon answers on the control socket at PATH;
// "! waitsocket PATH" asserts that none answers now.
func cmdWaitSocket(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitsocket PATH")
	}
	p := ts.MkAbs(args[0])
	if neg {
		if c, err := control.Dial(p); err == nil {
			c.Close()
			ts.Fatalf("a daemon answers on %s", args[0])
		}
		return
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := control.Dial(p); err == nil {
			c.Close()
			return
		}
	}
	ts.Fatalf("waitsocket %s: no daemon answers after 10s", args[0])
}

// zipcmp A B
//
// asserts that two zip files (an .xlsx is one) hold the same entries with
// the same contents, in whatever order: excelize does not write its entries
// in a fixed order, so two equal workbooks may differ byte by byte.
func cmdZipCmp(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: zipcmp A B")
	}
	read := func(name string) map[string][]byte {
		zr, err := zip.OpenReader(ts.MkAbs(name))
		ts.Check(err)
		defer zr.Close()
		out := map[string][]byte{}
		for _, f := range zr.File {
			rc, err := f.Open()
			ts.Check(err)
			var b bytes.Buffer
			_, err = b.ReadFrom(rc)
			rc.Close()
			ts.Check(err)
			out[f.Name] = b.Bytes()
		}
		return out
	}
	a, b := read(args[0]), read(args[1])
	var diff []string
	for name, da := range a {
		if db, ok := b[name]; !ok || !bytes.Equal(da, db) {
			diff = append(diff, name)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			diff = append(diff, name)
		}
	}
	slices.Sort(diff)
	if (len(diff) == 0) == neg {
		if neg {
			ts.Fatalf("%s and %s hold the same entries", args[0], args[1])
		}
		ts.Fatalf("%s and %s differ in %v", args[0], args[1], diff)
	}
}
