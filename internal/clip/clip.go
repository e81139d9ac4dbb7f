// Package clip bounds the text that the content of an input file can put
// in the history, a receipt or a log (docs/rules.md#history): a value
// longer than its limit is kept cut, with its length and a short hash of
// the whole, never whole, so that what one row adds is bounded by a small
// constant whatever the file holds.
package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// MinMax is the smallest limit String honours: a cut value is at least its
// notice ("…[tagliato: N byte, sha256 H]"), so a limit below MinMax is
// raised to it.
const MinMax = 64

// String returns s when it is at most max bytes long. Otherwise it
// returns a prefix of s, cut at a character boundary, followed by
// "…[tagliato: <len(s)> byte, sha256 <first 12 hex digits of SHA-256(s)>]",
// the whole at most max bytes (max(max, MinMax)): the length says how much
// was there and the hash lets one find the value in the file it came from.
// Invalid UTF-8 in s is kept as it is (the writers of receipts and logs
// handle it).
func String(s string, max int) string {
	if len(s) <= max {
		return s
	}
	max = Max(max)
	sum := sha256.Sum256([]byte(s))
	notice := fmt.Sprintf("…[tagliato: %d byte, sha256 %s]", len(s), hex.EncodeToString(sum[:6]))
	keep := max - len(notice)
	if keep <= 0 {
		return notice
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + notice
}

// Max is the longest String(s, max) can be for any s.
func Max(max int) int {
	if max < MinMax {
		return MinMax
	}
	return max
}
