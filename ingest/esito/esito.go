// Package esito writes receipts: for every input file, one CSV line per data
// row, accepted (OK) or refused (SCARTATO) with a code and a message an
// operator understands. Format (docs/rules.md#drops-and-receipts): UTF-8, ';'-separated, header
// foglio;riga;esito;codice;messaggio; riga 0 when the whole file is refused.
package esito

import (
	"bytes"
	"strconv"
	"strings"

	"anprsec/internal/cellsafe"
	"anprsec/internal/clip"
)

// Header is the first line of every receipt.
const Header = "foglio;riga;esito;codice;messaggio\n"

// Outcomes.
const (
	OK       = "OK"
	Scartato = "SCARTATO"
)

// Limits of the fields of a receipt line, in bytes: a longer value is
// written cut, with its length and a short hash (clip.String), so that a
// line is at most about 5 KB whatever the file held
// (docs/rules.md#drops-and-receipts).
const (
	MaxSheet   = 128
	MaxCode    = 64
	MaxMessage = 4096
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
	for _, l := range lines {
		field(buf, cell(clip.String(l.Sheet, MaxSheet)))
		buf.WriteByte(';')
		buf.WriteString(strconv.Itoa(l.Row))
		buf.WriteByte(';')
		field(buf, cell(clip.String(l.Outcome, MaxCode)))
		buf.WriteByte(';')
		field(buf, cell(clip.String(l.Code, MaxCode)))
		buf.WriteByte(';')
		field(buf, cell(clip.String(l.Message, MaxMessage)))
		buf.WriteByte('\n')
	}
}

// field writes one CSV field, quoted when encoding/csv would quote it (a
// separator, a quote, a line break, a leading blank). It does what a
// csv.Writer does without its 4 KiB buffer per call: receipts are written a
// line at a time for hundreds of thousands of rows.
func field(buf *bytes.Buffer, s string) {
	if !strings.ContainsAny(s, ";\"\r\n") && s != `\.` && (s == "" || (s[0] != ' ' && s[0] != '\t')) {
		buf.WriteString(s)
		return
	}
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			buf.WriteByte('"')
		}
		buf.WriteByte(s[i])
	}
	buf.WriteByte('"')
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
func cell(s string) string { return cellsafe.Neutralize(strings.ToValidUTF8(s, "\uFFFD")) }
