package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
)

// englishWords are common English words that are no Italian word: one of
// them in an operator's text is English prose. The names of anprsec's
// commands (run, list, show, help, keys) are the operator's contract and
// not prose: they never count, and an English sentence has other words.
var englishWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`the and of to with for is are was be been by from this that these those
		an its when which what where who how not only each every all any into onto than then there
		their they you your can could must should will would has have had does did doing
		if else after before without within between about over under until while also
		run runs write writes written show shows list lists print prints read reads make makes made
		set sets use uses used get gets give gives take takes keep keeps send sends check checks
		new one two first last next same other such more most some none here
		file's store's files folder folders key certificate certificates cards
		request requests delivery deliveries workstation workstations user users job's
		default defaults error errors failed failure warning found missing unknown
		schedule signed sealed
		block unblock revoke revoked delete deleted replace replaced register registered
		generate generates issue issued open opens create creates
		help usage flags command commands available global more information`) {
		englishWords[w] = true
	}
}

// technicalWords are words of the trade that operators read as they are,
// even where they look English.
var technicalWords = map[string]bool{
	"sftp": true, "crl": true, "ocsp": true, "pkcs": true, "zip": true, "csv": true, "xlsx": true,
	"istat": true, "yaml": true, "hsm": true, "pin": true, "puk": true, "pgp": true, "smtp": true,
	"cades": true, "anpr": true, "pem": true, "der": true, "utc": true, "json": true,
	// cobra's completion scripts name the shells' own commands.
	"out": true, "string": true, "invoke": true, "expression": true, "source": true, "echo": true,
	"autoload": true, "compinit": true, "config": true, "completion": true, "completions": true,
}

// englishIn returns the English words of text, the help of a command;
// commands are the names of anprsec's commands. Flags, paths, file names,
// placeholders and quoted commands are skipped.
func englishIn(text string, commands map[string]bool) []string {
	var found []string
	for _, tok := range strings.Fields(text) {
		if strings.HasPrefix(tok, "-") || strings.ContainsAny(tok, "/._=$<>{}[]`@|") {
			continue
		}
		for _, w := range strings.FieldsFunc(tok, func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' }) {
			lw := strings.Trim(strings.ToLower(w), "'")
			if englishWords[lw] && !technicalWords[lw] && !commands[lw] {
				found = append(found, w)
			}
		}
	}
	return found
}

// helpOf renders the --help of the command at path under a fresh root.
func helpOf(newRootFn func() *cobra.Command, path []string) (string, error) {
	root := newRootFn()
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(slices.Clone(path), "--help"))
	err := root.Execute()
	return out.String(), err
}

// visibleCommands are the paths of every command under root that a user
// sees (hidden ones skipped), and their names.
func visibleCommands(root *cobra.Command) (paths [][]string, names map[string]bool) {
	names = map[string]bool{}
	root.InitDefaultHelpCmd() // cobra adds `help` when it executes
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			if sub.Hidden {
				continue
			}
			names[sub.Name()] = true
			p := append(slices.Clone(path), sub.Name())
			paths = append(paths, p)
			walk(sub, p)
		}
	}
	walk(root, nil)
	return append([][]string{nil}, paths...), names
}

// englishHelp describes every visible command under the root made by
// newRootFn whose --help holds English prose (or fails).
func englishHelp(newRootFn func() *cobra.Command) []string {
	var faults []string
	paths, names := visibleCommands(newRootFn())
	for _, p := range paths {
		help, err := helpOf(newRootFn, p)
		if err != nil {
			faults = append(faults, fmt.Sprintf("anprsec %s --help: %v", strings.Join(p, " "), err))
		}
		if en := englishIn(help, names); len(en) > 0 {
			faults = append(faults, fmt.Sprintf("anprsec %s --help has English words %q:\n%s", strings.Join(p, " "), en, help))
		}
	}
	return faults
}

// TestEveryHelpIsItalian: the --help of every command a user sees, cobra's
// own usage and the help and completion commands included, is Italian.
func TestEveryHelpIsItalian(t *testing.T) {
	for _, f := range englishHelp(newRoot) {
		t.Error(f)
	}
}

// TestEnglishHelpIsCaught: the check fails on a command whose Short is
// English, and does not on Italian text naming commands that are English
// words.
func TestEnglishHelpIsCaught(t *testing.T) {
	withShort := func(short string) func() *cobra.Command {
		return func() *cobra.Command {
			root := newRoot()
			root.AddCommand(&cobra.Command{Use: "fabbricato", Short: short, RunE: func(*cobra.Command, []string) error { return nil }})
			italianHelp(root)
			return root
		}
	}
	t.Run("english", func(t *testing.T) {
		faults := englishHelp(withShort("Write the sealed backup to FILE"))
		if !slices.ContainsFunc(faults, func(f string) bool { return strings.HasPrefix(f, "anprsec fabbricato --help has English words") }) {
			t.Fatalf("an English Short passed the check: %q", faults)
		}
	})
	t.Run("italian", func(t *testing.T) {
		if faults := englishHelp(withShort("Scrive il backup cifrato in FILE")); slices.ContainsFunc(faults, func(f string) bool { return strings.HasPrefix(f, "anprsec fabbricato --help") }) {
			t.Fatalf("an Italian Short failed the check: %q", faults)
		}
		_, names := visibleCommands(newRoot())
		if en := englishIn("Elenca i job (anprsec jobs list) e li esegue: anprsec run", names); len(en) > 0 {
			t.Fatalf("Italian text flagged: %q", en)
		}
	})
}

// TestCommandLineErrorsAreItalian: what cobra and pflag say about a command
// line anprsec does not understand reaches the operator in Italian, as a
// usage error (exit 2), before any store is opened.
func TestCommandLineErrorsAreItalian(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"jobs", "list", "--bogus"}, "opzione sconosciuta: --bogus"},
		{[]string{"jobs", "list", "-x"}, "opzione sconosciuta: -x"},
		{[]string{"jobs", "history", "-n", "tanti"}, `valore "tanti" non valido per l'opzione --limit (atteso: numero)`},
		{[]string{"jobs", "history", "--limit"}, "l'opzione --limit richiede un valore"},
		{[]string{"jobs", "run"}, "anprsec jobs run vuole almeno 1 argomento, ne ha ricevuti 0"},
		{[]string{"backup", "a", "b"}, "anprsec backup vuole 1 argomento, ne ha ricevuti 2"},
		{[]string{"jobs", "list", "extra"}, `anprsec jobs list non vuole argomenti: "extra" è di troppo`},
		{[]string{"keys", "rotate", "backup"}, `"backup" non è un argomento valido di anprsec keys rotate`},
		{[]string{"utenze", "list"}, "manca l'opzione obbligatoria --comune"},
		{[]string{"smartcard", "consegna"}, "mancano le opzioni obbligatorie --cf, --seriale"},
		{[]string{"help", "postazioni", "rinnova"}, `nessun aiuto per "postazioni rinnova"`},
		{[]string{"jobs", "run", "foo"}, "nessun job si chiama \"foo\"; i job sono:\n  ingest-censimento\n"},
	} {
		root := newRoot()
		t.Chdir(t.TempDir()) // no anprsec.yaml: the defaults
		root.SetArgs(tc.args)
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("anprsec %s: error %v (exit %d), want exit %d and %q", strings.Join(tc.args, " "), err, exitCode(err), exitUsage, tc.want)
		}
		if strings.Contains(err.Error(), "failed") {
			t.Errorf("anprsec %s: %v", strings.Join(tc.args, " "), err)
		}
	}
}
