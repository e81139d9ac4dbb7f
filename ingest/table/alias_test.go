package table

import "testing"

// TestHeaderAliases: the usual spellings of the e-mail columns match.
func TestHeaderAliases(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"E-mail", "Email"}, {"e mail", "EMAIL"}, {"P.E.C.", "PEC"}, {"p e c", "pec"},
	} {
		if FoldHeader(tc.a) != FoldHeader(tc.b) {
			t.Errorf("%q folds to %q, %q to %q", tc.a, FoldHeader(tc.a), tc.b, FoldHeader(tc.b))
		}
	}
	if FoldHeader("E-mail personale") == FoldHeader("Email") {
		t.Error("a longer header matched Email")
	}
}
