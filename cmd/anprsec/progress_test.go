package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// A bar draws on a terminal only; elsewhere it writes nothing at all.
func TestProgressOnlyOnATerminal(t *testing.T) {
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	for _, tc := range []struct {
		name  string
		tty   bool
		max   int64
		bytes bool
		want  string // "" = no output
	}{
		{"pipe, rows", false, 100, false, ""},
		{"pipe, spinner", false, -1, true, ""},
		{"terminal, rows", true, 100, false, "rows"},
		{"terminal, bytes", true, 4 << 20, true, "MiB"},
		{"terminal, spinner", true, -1, false, "working"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isTerminal = func(io.Writer) bool { return tc.tty }
			var out bytes.Buffer
			cmd := &cobra.Command{}
			cmd.SetErr(&out)
			desc := map[bool]string{false: "rows", true: "copying"}[tc.bytes]
			if tc.max < 0 {
				desc = "working"
			}
			bar := newProgress(cmd, tc.max, desc, tc.bytes)
			if tc.max > 0 {
				bar.Add64(tc.max / 2)
			} else {
				bar.Write(make([]byte, 1000))
			}
			bar.Finish()
			switch {
			case tc.want == "" && out.Len() > 0:
				t.Errorf("wrote %q, want nothing", out.String())
			case tc.want != "" && !strings.Contains(out.String(), tc.want):
				t.Errorf("wrote %q, want something with %q", out.String(), tc.want)
			}
		})
	}
}

// The test binary's stderr is not a terminal under go test.
func TestIsTerminalBuffer(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
}
