package cellsafe

import "testing"

func TestNeutralizeMarksFormulaCellsAsText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"OK", "OK"},
		{"utenza creata", "utenza creata"},
		{"=1+1", "'=1+1"},
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+39 06 123", "'+39 06 123"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tfoo", "'\tfoo"},
		{"\rfoo", "'\rfoo"},
		{"a=b", "a=b"},   // only the first character matters
		{" =1", " =1"},   // a leading blank makes it text already
		{"'=1", "'=1"},   // already neutral
		{"\n=1", "\n=1"}, // a newline is not a formula trigger
		{"é=1", "é=1"},   // multi-byte first rune
		{"colonna \"X\": =1", "colonna \"X\": =1"},
	} {
		if got := Neutralize(tc.in); got != tc.want {
			t.Errorf("Neutralize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
