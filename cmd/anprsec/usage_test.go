package main

import (
	"strings"
	"testing"
)

// TestMisspelledSubcommandIsAUsageError: a word a command group does not
// have, or an unknown flag, exits 2 naming the group's commands, so that a
// script never takes a typo for success.
func TestMisspelledSubcommandIsAUsageError(t *testing.T) {
	for _, args := range [][]string{
		{"postazioni", "rilascia", "058091-PC-0001"},
		{"smartcard", "bloca"},
		{"frobnicate"},
		{"jobs", "list", "--bogus"},
	} {
		root := newRoot()
		root.SetArgs(args)
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		if err == nil || exitCode(err) != exitUsage {
			t.Errorf("anprsec %s: error %v, exit %d; want exit %d", strings.Join(args, " "), err, exitCode(err), exitUsage)
			continue
		}
		if args[0] == "postazioni" && (!strings.Contains(err.Error(), `"rilascia" non è un comando di "anprsec postazioni"`) || !strings.Contains(err.Error(), "\n  blocca")) {
			t.Errorf("message %q does not name the word and the group's commands", err)
		}
	}
}
