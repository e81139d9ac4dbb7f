package xlsx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// tokKind is the kind of a token of the XML scanner.
type tokKind int

const (
	tokEOF   tokKind = iota
	tokStart         // <name attr="v"> or <name/>
	tokEnd           // </name>, and the end of a self-closing element
	tokText          // character data (entities decoded, CDATA included)
)

// attr is an attribute of a start tag: its local name (prefix dropped)
// and its decoded value, both views into the scanner's buffers.
type attr struct {
	local []byte
	value []byte
}

// Limits of the scanner: a tag or an entity longer than these, or
// elements nested deeper, are not something a spreadsheet program writes
// (encoding/xml bounds its Unmarshal at the same depth).
const (
	maxTag    = 1 << 20
	maxEntity = 32
	maxDepth  = 10000
	readSize  = 64 << 10
)

// short quotes input for a message, cut to a few dozen bytes: messages go
// into receipts, and the input may be hostile.
func short(b []byte) string { return `"` + clip(b) + `"` }

// clip is short without the quotes, for names between < and >.
func clip(b []byte) string {
	const n = 40
	cut := len(b)
	if cut > n {
		cut = n
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
	}
	q := strconv.Quote(string(b[:cut]))
	q = q[1 : len(q)-1]
	if cut < len(b) {
		q += fmt.Sprintf("… (%d byte)", len(b))
	}
	return q
}

// scanner is a pull tokenizer for the subset of XML 1.0 that workbook
// parts use: elements, attributes, character data with the predefined and
// numeric entities, CDATA sections, comments and processing instructions.
// A DOCTYPE is refused (no workbook has one; it could declare entities).
// It checks what a reader of untrusted input must: element nesting, quoted
// attributes, valid UTF-8 and XML characters, known entities; it does not
// resolve namespaces (names are matched on their local part). Line ends
// are normalized as XML requires ("\r\n" and "\r" read as "\n").
//
// It is several times faster than encoding/xml because it allocates
// nothing per token: names, attributes and text are views into buffers
// that the next token reuses.
type scanner struct {
	r    io.Reader
	buf  []byte // window of input: buf[pos:end] is unread
	pos  int
	end  int
	eof  bool
	rerr error // read error other than io.EOF

	line int // input lines consumed before buf[0:pos] (for messages), approximately

	kind  tokKind
	local []byte // local name of tokStart/tokEnd
	attrs []attr
	text  []byte // tokText

	pendingEnd bool   // a self-closing tag's end is the next token
	stack      []byte // raw names of the open elements, each followed by 0
	stackIdx   []int  // start of each name in stack

	nameBuf []byte
	attrBuf []byte
	textBuf []byte
}

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, readSize*2)}
}

// syntaxError describes malformed XML.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("XML non valido (linea %d della parte XML): %s", e.line, e.msg)
}

// errorf describes a syntax error at the current position; when reading
// the part failed (a damaged or tampered archive: a part inflating beyond
// its declared size, ending short of it, a corrupt deflate stream), the
// read error is the cause, not the XML it cut.
func (s *scanner) errorf(format string, args ...any) error {
	if s.rerr != nil {
		return s.readError()
	}
	return &syntaxError{line: s.line + 1 + bytes.Count(s.buf[:s.pos], []byte{'\n'}), msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) readError() error {
	return fmt.Errorf("archivio danneggiato, lettura della parte interrotta: %w", s.rerr)
}

// fill moves the unread bytes to the front and reads more. It reports
// false when no byte could be added (end of input or a read error).
func (s *scanner) fill() bool {
	if s.eof || s.rerr != nil {
		return false
	}
	if s.pos > 0 {
		s.line += bytes.Count(s.buf[:s.pos], []byte{'\n'})
		n := copy(s.buf, s.buf[s.pos:s.end])
		s.pos, s.end = 0, n
	}
	if s.end == len(s.buf) {
		if len(s.buf) >= maxTag+readSize {
			return false
		}
		nb := make([]byte, len(s.buf)*2)
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			s.rerr = err
		}
		if n > 0 || s.eof || s.rerr != nil {
			return n > 0
		}
	}
}

// need makes at least n unread bytes available if the input has them.
func (s *scanner) need(n int) bool {
	for s.end-s.pos < n {
		if !s.fill() {
			return false
		}
	}
	return true
}

// next reads the next token. At the end of the input it returns tokEOF,
// or an error if elements are still open or the input could not be read.
func (s *scanner) next() (tokKind, error) {
	if s.pendingEnd {
		s.pendingEnd = false
		s.kind = tokEnd
		return s.pop()
	}
	for {
		if s.pos == s.end && !s.fill() {
			if s.rerr != nil {
				return tokEOF, s.readError()
			}
			if len(s.stackIdx) > 0 {
				return tokEOF, s.errorf("il file finisce con l'elemento <%s> aperto", clip(s.top()))
			}
			s.kind = tokEOF
			return tokEOF, nil
		}
		if s.buf[s.pos] != '<' {
			return s.readText()
		}
		if !s.need(2) {
			return tokEOF, s.errorf("'<' alla fine del file")
		}
		switch s.buf[s.pos+1] {
		case '/':
			return s.readEndTag()
		case '?':
			if err := s.skipUntil("?>", 2); err != nil {
				return tokEOF, err
			}
			continue
		case '!':
			s.need(9)
			rest := s.buf[s.pos:s.end]
			switch {
			case bytes.HasPrefix(rest, []byte("<!--")):
				if err := s.skipUntil("-->", 4); err != nil {
					return tokEOF, err
				}
				continue
			case bytes.HasPrefix(rest, []byte("<![CDATA[")):
				return s.readText()
			default:
				return tokEOF, s.errorf("dichiarazione <! non ammessa (DOCTYPE o simili)")
			}
		default:
			return s.readStartTag()
		}
	}
}

// skipUntil skips a comment or processing instruction ending in term,
// whose opening is skip bytes long.
func (s *scanner) skipUntil(term string, skip int) error {
	s.pos += skip
	for {
		if i := bytes.Index(s.buf[s.pos:s.end], []byte(term)); i >= 0 {
			s.pos += i + len(term)
			return nil
		}
		// Keep the last bytes: the terminator may straddle the refill.
		if keep := len(term) - 1; s.end-s.pos > keep {
			s.pos = s.end - keep
		}
		if !s.fill() {
			return s.errorf("commento o istruzione non chiusa (manca %q)", term)
		}
	}
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// tagEnd returns the offset of the '>' closing the tag that starts at
// s.pos, skipping quoted attribute values, or -1 if the window has none.
func (s *scanner) tagEnd() int {
	var quote byte
	for i := s.pos + 1; i < s.end; i++ {
		c := s.buf[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// wholeTag makes the whole tag starting at s.pos available and returns
// the offset of its '>'.
func (s *scanner) wholeTag() (int, error) {
	for {
		if e := s.tagEnd(); e >= 0 {
			return e, nil
		}
		if s.end-s.pos > maxTag {
			return 0, s.errorf("tag più lungo di %d byte", maxTag)
		}
		if !s.fill() {
			return 0, s.errorf("tag non chiuso alla fine del file")
		}
	}
}

// localName splits a raw name "p:local" and checks it is a name.
func (s *scanner) checkName(raw []byte) error {
	if len(raw) == 0 {
		return s.errorf("nome di elemento o attributo mancante")
	}
	for _, c := range raw {
		if c == '<' || c == '>' || c == '=' || c == '"' || c == '\'' || c == '&' || c == '/' || isSpace(c) {
			return s.errorf("nome non valido %s", short(raw))
		}
	}
	if !utf8.Valid(raw) {
		return s.errorf("nome non valido (UTF-8)")
	}
	return nil
}

func localPart(raw []byte) []byte {
	if i := bytes.LastIndexByte(raw, ':'); i >= 0 {
		return raw[i+1:]
	}
	return raw
}

// readStartTag reads a start tag: its name, pushed on the stack of open
// elements, and its attributes, decoded into attrBuf.
//
// It stays one function: it is the byte-level loop that every tag of a
// sheet goes through, one index i walking the tag from the name through
// each key, '=', quote and value, and the offsets of the attributes (spans,
// on the stack) only become views once attrBuf no longer grows; split, the
// walk would be spread over functions passing i and the spans back and
// forth.
func (s *scanner) readStartTag() (tokKind, error) {
	e, err := s.wholeTag()
	if err != nil {
		return tokEOF, err
	}
	tag := s.buf[s.pos+1 : e] // without < and >
	self := len(tag) > 0 && tag[len(tag)-1] == '/'
	if self {
		tag = tag[:len(tag)-1]
	}
	i := 0
	for i < len(tag) && !isSpace(tag[i]) {
		i++
	}
	raw := tag[:i]
	if err := s.checkName(raw); err != nil {
		return tokEOF, err
	}
	if len(s.stackIdx) >= maxDepth {
		return tokEOF, s.errorf("elementi annidati oltre %d livelli", maxDepth)
	}
	// The name is kept for the end tag's check; the scanner's buffers are
	// reused, so copy.
	s.stackIdx = append(s.stackIdx, len(s.stack))
	s.stack = append(s.stack, raw...)
	s.nameBuf = append(s.nameBuf[:0], raw...)
	s.local = localPart(s.nameBuf)
	s.attrs = s.attrs[:0]
	s.attrBuf = s.attrBuf[:0]
	type span struct{ k0, k1, v0, v1 int }
	var spans [16]span
	sp := spans[:0]
	for {
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i == len(tag) {
			break
		}
		k := i
		for i < len(tag) && tag[i] != '=' && !isSpace(tag[i]) {
			i++
		}
		key := tag[k:i]
		if err := s.checkName(key); err != nil {
			return tokEOF, err
		}
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i == len(tag) || tag[i] != '=' {
			return tokEOF, s.errorf("attributo %s di <%s> senza valore", clip(key), clip(raw))
		}
		i++
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i == len(tag) || (tag[i] != '"' && tag[i] != '\'') {
			return tokEOF, s.errorf("valore dell'attributo %s di <%s> senza virgolette", clip(key), clip(raw))
		}
		q := tag[i]
		j := bytes.IndexByte(tag[i+1:], q)
		if j < 0 {
			return tokEOF, s.errorf("valore dell'attributo %s di <%s> non chiuso", clip(key), clip(raw))
		}
		val := tag[i+1 : i+1+j]
		i += j + 2
		k0 := len(s.attrBuf)
		s.attrBuf = append(s.attrBuf, localPart(key)...)
		k1 := len(s.attrBuf)
		s.attrBuf, err = s.decode(s.attrBuf, val, true)
		if err != nil {
			return tokEOF, err
		}
		sp = append(sp, span{k0, k1, k1, len(s.attrBuf)})
	}
	for _, x := range sp {
		s.attrs = append(s.attrs, attr{local: s.attrBuf[x.k0:x.k1], value: s.attrBuf[x.v0:x.v1]})
	}
	s.pos = e + 1
	s.pendingEnd = self
	s.kind = tokStart
	return tokStart, nil
}

func (s *scanner) top() []byte {
	return s.stack[s.stackIdx[len(s.stackIdx)-1]:]
}

// pop closes the innermost element.
func (s *scanner) pop() (tokKind, error) {
	n := len(s.stackIdx) - 1
	s.nameBuf = append(s.nameBuf[:0], s.stack[s.stackIdx[n]:]...)
	s.local = localPart(s.nameBuf)
	s.stack = s.stack[:s.stackIdx[n]]
	s.stackIdx = s.stackIdx[:n]
	return tokEnd, nil
}

func (s *scanner) readEndTag() (tokKind, error) {
	e, err := s.wholeTag()
	if err != nil {
		return tokEOF, err
	}
	raw := bytes.TrimRight(s.buf[s.pos+2:e], " \t\r\n")
	if len(s.stackIdx) == 0 {
		return tokEOF, s.errorf("</%s> senza elemento aperto", clip(raw))
	}
	if !bytes.Equal(raw, s.top()) {
		return tokEOF, s.errorf("l'elemento <%s> è chiuso da </%s>", clip(s.top()), clip(raw))
	}
	s.pos = e + 1
	s.kind = tokEnd
	return s.pop()
}

// readText reads character data up to the next tag (CDATA sections are
// part of it), decoding entities.
func (s *scanner) readText() (tokKind, error) {
	s.textBuf = s.textBuf[:0]
	for {
		if s.pos == s.end && !s.fill() {
			break
		}
		if s.buf[s.pos] == '<' {
			s.need(9)
			if !bytes.HasPrefix(s.buf[s.pos:s.end], []byte("<![CDATA[")) {
				break
			}
			s.pos += 9
			for {
				if i := bytes.Index(s.buf[s.pos:s.end], []byte("]]>")); i >= 0 {
					var err error
					if s.textBuf, err = s.decodeRaw(s.textBuf, s.buf[s.pos:s.pos+i]); err != nil {
						return tokEOF, err
					}
					s.pos += i + 3
					break
				}
				// Not in the window: read more; only a section larger than
				// the window's limit is taken in pieces, cut where no "]]>",
				// "\r\n" or UTF-8 sequence is split.
				if s.end-s.pos >= maxTag && !s.eof && s.rerr == nil {
					take := safeCut(s.buf[s.pos:s.end])
					var err error
					if s.textBuf, err = s.decodeRaw(s.textBuf, s.buf[s.pos:s.pos+take]); err != nil {
						return tokEOF, err
					}
					s.pos += take
				}
				if !s.fill() {
					return tokEOF, s.errorf("sezione CDATA non chiusa")
				}
			}
			continue
		}
		// Plain text up to the next '<'. When the window has none, more
		// is read first (a cell's text fits easily); only a text larger
		// than the window's limit is decoded in pieces, cut where no
		// entity, "\r\n" or UTF-8 sequence is split.
		i := bytes.IndexByte(s.buf[s.pos:s.end], '<')
		if i < 0 {
			if !s.eof && s.rerr == nil && s.end-s.pos < maxTag {
				s.fill()
				continue
			}
			i = s.end - s.pos
			if !s.eof && s.rerr == nil {
				i = safeCut(s.buf[s.pos:s.end])
			}
		}
		var err error
		if s.textBuf, err = s.decode(s.textBuf, s.buf[s.pos:s.pos+i], false); err != nil {
			return tokEOF, err
		}
		s.pos += i
		if i == 0 && !s.fill() {
			break
		}
	}
	s.text = s.textBuf
	s.kind = tokText
	return tokText, nil
}

// safeCut returns a length of b, a little short of all of it, that ends
// neither inside an entity, nor between "\r" and "\n", nor inside a UTF-8
// sequence.
func safeCut(b []byte) int {
	n := len(b) - 8
	if n <= 0 {
		return 0
	}
	if amp := bytes.LastIndexByte(b[:n], '&'); amp >= 0 && n-amp <= maxEntity && bytes.IndexByte(b[amp:n], ';') < 0 {
		n = amp
	}
	for k := 0; k < 3 && n > 0 && b[n]&0xC0 == 0x80; k++ {
		n--
	}
	if n > 0 && b[n-1] == '\r' {
		n--
	}
	return n
}

// decodeRaw appends CDATA content to dst: line ends normalized, characters
// checked, no entity.
func (s *scanner) decodeRaw(dst, src []byte) ([]byte, error) {
	start := len(dst)
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\r')
		if i < 0 {
			dst = append(dst, src...)
			break
		}
		dst = append(dst, src[:i]...)
		dst = append(dst, '\n')
		src = src[i+1:]
		if len(src) > 0 && src[0] == '\n' {
			src = src[1:]
		}
	}
	return dst, s.checkChars(dst[start:])
}

// decode appends src to dst with entities decoded and line ends
// normalized; in an attribute value '<' is refused.
func (s *scanner) decode(dst, src []byte, inAttr bool) ([]byte, error) {
	start := len(dst)
	for len(src) > 0 {
		i := bytes.IndexAny(src, "&\r<")
		if i < 0 {
			dst = append(dst, src...)
			break
		}
		dst = append(dst, src[:i]...)
		switch src[i] {
		case '<':
			return dst, s.errorf("'<' nel valore di un attributo")
		case '\r':
			dst = append(dst, '\n')
			src = src[i+1:]
			if len(src) > 0 && src[0] == '\n' {
				src = src[1:]
			}
			continue
		}
		semi := bytes.IndexByte(src[i:], ';')
		if semi < 0 || semi > maxEntity {
			return dst, s.errorf("'&' non seguito da un'entità")
		}
		ent := src[i+1 : i+semi]
		src = src[i+semi+1:]
		switch string(ent) {
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "amp":
			dst = append(dst, '&')
		case "quot":
			dst = append(dst, '"')
		case "apos":
			dst = append(dst, '\'')
		default:
			r, ok := charRef(ent)
			if !ok {
				return dst, s.errorf("entità sconosciuta &%s;", clip(ent))
			}
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst, s.checkChars(dst[start:])
}

// charRef decodes "#123" or "#x7B" to an XML character.
func charRef(ent []byte) (rune, bool) {
	if len(ent) < 2 || ent[0] != '#' {
		return 0, false
	}
	base, digits := 10, ent[1:]
	if digits[0] == 'x' {
		base, digits = 16, digits[1:]
	}
	if len(digits) == 0 || len(digits) > 8 {
		return 0, false
	}
	var r rune
	for _, c := range digits {
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*rune(base) + d
	}
	return r, isXMLChar(r)
}

// isXMLChar: XML 1.0's Char production.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

var errChars = errors.New("carattere non ammesso in XML")

// checkChars refuses invalid UTF-8 and characters XML does not allow
// (control characters, U+FFFE, U+FFFF).
func (s *scanner) checkChars(b []byte) error {
	ascii := true
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return s.errorf("%v (codice %d)", errChars, c)
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if ascii {
		return nil
	}
	if !utf8.Valid(b) {
		return s.errorf("testo non in UTF-8")
	}
	if bytes.Contains(b, []byte("\uFFFE")) || bytes.Contains(b, []byte("\uFFFF")) {
		return s.errorf("%v (U+FFFE o U+FFFF)", errChars)
	}
	return nil
}

// attrValue returns the value of the attribute of the current start tag
// with local name name; the last one when it is repeated (encoding/xml
// accepts repeated attributes, and excelize keeps the last).
func (s *scanner) attrValue(name string) ([]byte, bool) {
	for i := len(s.attrs) - 1; i >= 0; i-- {
		if string(s.attrs[i].local) == name {
			return s.attrs[i].value, true
		}
	}
	return nil, false
}

// skipElement skips the content of the element just started, up to and
// including its end.
func (s *scanner) skipElement() error {
	depth := 1
	for depth > 0 {
		k, err := s.next()
		if err != nil {
			return err
		}
		switch k {
		case tokStart:
			depth++
		case tokEnd:
			depth--
		case tokEOF:
			return s.errorf("fine del file dentro un elemento")
		}
	}
	return nil
}
