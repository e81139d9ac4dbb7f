// Package cellsafe keeps a value written to a CSV or a worksheet from being
// read as a formula by a spreadsheet program (CSV injection): receipts,
// reports and audit lists all pass their cells through it.
package cellsafe

import "strings"

// Dangerous reports whether a spreadsheet program could read s as a
// formula: it starts with = + - @ tab or CR.
func Dangerous(s string) bool {
	return s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0
}

// Neutralize keeps a spreadsheet from reading a cell as a formula: a
// Dangerous value gets a leading apostrophe.
func Neutralize(s string) string {
	if Dangerous(s) {
		return "'" + s
	}
	return s
}
