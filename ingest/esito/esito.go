// Package esito writes receipts: for every input file, one CSV line per data
// row, accepted (OK) or refused (SCARTATO) with a code and a message an
// operator understands. Format (SPEC.md): UTF-8, ';'-separated, header
// foglio;riga;esito;codice;messaggio; riga 0 when the whole file is refused.
package esito

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
)

// Header is the first line of every receipt.
const Header = "foglio;riga;esito;codice;messaggio\n"

// Outcomes.
const (
	OK       = "OK"
	Scartato = "SCARTATO"
)

// Line is one receipt line.
type Line struct {
	Sheet   string
	Row     int
	Outcome string // OK or SCARTATO
	Code    string // short machine code: CREATA, AGGIORNATA, CF_CONTROLLO, ...
	Message string
}

// Append writes lines as CSV (without header) to buf.
func Append(buf *bytes.Buffer, lines ...Line) {
	w := csv.NewWriter(buf)
	w.Comma = ';'
	for _, l := range lines {
		w.Write([]string{cell(l.Sheet), strconv.Itoa(l.Row), cell(l.Outcome), cell(l.Code), cell(l.Message)})
	}
	w.Flush()
}

// Neutralize keeps a spreadsheet from reading a cell as a formula: a value
// starting with = + - @ tab or CR gets a leading apostrophe.
func Neutralize(s string) string {
	if s != "" && bytes.IndexByte([]byte("=+-@\t\r"), s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// File builds a whole receipt from already-formatted CSV chunks.
func File(chunks ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString(Header)
	for _, c := range chunks {
		b.Write(c)
	}
	return b.Bytes()
}

// Refused is the receipt of a file refused as a whole.
func Refused(code, message string) []byte {
	var b bytes.Buffer
	Append(&b, Line{Row: 0, Outcome: Scartato, Code: code, Message: message})
	return File(b.Bytes())
}

// cell makes a field safe for a receipt: valid UTF-8, not a formula.
func cell(s string) string { return Neutralize(strings.ToValidUTF8(s, "\uFFFD")) }
