package store

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// A record is read back as encoding/json reads it. The jobs that go through
// every record of a kind (the export, the orders, the mails) spent a fifth
// of their time in json.Unmarshal: decodeRecord reads the plain form
// encodeRecord writes (no white space, no escapes, each key as its field
// is named, the values of the plain kinds) straight into the fields, and
// steps aside for anything else, which encoding/json then reads: a string
// with an escape, a number that is not an integer of the field's size, a
// key of another case or unknown, a field of another kind, a record not
// read into a zero value. The tests compare the two on every record type
// and on arbitrary bytes (FuzzRecordDecode).

// decodeRecord reads raw into v, a pointer to a zero struct, as
// json.Unmarshal would, and reports true; or reports false with v zero
// again.
func decodeRecord(raw []byte, v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	sv := rv.Elem()
	p := planOf(sv.Type())
	if !p.ok || !sv.IsZero() {
		return false
	}
	if !p.read(raw, sv) {
		sv.SetZero()
		return false
	}
	return true
}

// field returns the plan of the field named key (its exact name).
func (p *recordPlan) field(key []byte) (*fieldPlan, bool) {
	i, ok := p.byKey[string(key)]
	if !ok {
		return nil, false
	}
	return &p.fields[i], true
}

// read reads the object raw into the struct sv.
func (p *recordPlan) read(raw []byte, sv reflect.Value) bool {
	n := len(raw)
	if n < 2 || raw[0] != '{' || raw[n-1] != '}' {
		return false
	}
	if n == 2 {
		return true
	}
	r := plainReader{b: raw[:n-1], p: 1}
	for {
		key, ok := r.str()
		if !ok || !r.next(':') {
			return false
		}
		f, ok := p.field(key)
		if !ok || !r.value(f.kind, sv.Field(f.index)) {
			return false
		}
		if r.p == len(r.b) {
			return true
		}
		if !r.next(',') {
			return false
		}
	}
}

// plainReader reads the plain form of JSON values from b at p.
type plainReader struct {
	b []byte
	p int
}

func (r *plainReader) next(c byte) bool {
	if r.p < len(r.b) && r.b[r.p] == c {
		r.p++
		return true
	}
	return false
}

func (r *plainReader) literal(s string) bool {
	if len(r.b)-r.p >= len(s) && string(r.b[r.p:r.p+len(s)]) == s {
		r.p += len(s)
		return true
	}
	return false
}

// str reads a string without escapes or control characters, of valid
// UTF-8, and returns what is between its quotes.
func (r *plainReader) str() ([]byte, bool) {
	if !r.next('"') {
		return nil, false
	}
	start, ascii := r.p, true
	for ; r.p < len(r.b); r.p++ {
		switch c := r.b[r.p]; {
		case c == '"':
			s := r.b[start:r.p]
			r.p++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// integer returns the digits of an integer (JSON's grammar: no leading
// zero, no fraction, no exponent), with its sign when signed.
func (r *plainReader) integer(signed bool) (string, bool) {
	start := r.p
	if signed {
		r.next('-')
	}
	digits := r.p
	for r.p < len(r.b) && '0' <= r.b[r.p] && r.b[r.p] <= '9' {
		r.p++
	}
	if r.p == digits || r.b[digits] == '0' && r.p-digits > 1 {
		return "", false
	}
	if r.p < len(r.b) && (r.b[r.p] == '.' || r.b[r.p] == 'e' || r.b[r.p] == 'E') {
		return "", false
	}
	return string(r.b[start:r.p]), true
}

// value reads the value of a field of kind k into fv.
func (r *plainReader) value(k fieldKind, fv reflect.Value) bool {
	switch k {
	case fieldString:
		s, ok := r.str()
		if ok {
			fv.SetString(string(s))
		}
		return ok
	case fieldBool:
		switch {
		case r.literal("true"):
			fv.SetBool(true)
		case r.literal("false"):
			fv.SetBool(false)
		default:
			return false
		}
		return true
	case fieldInt:
		s, ok := r.integer(true)
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(s, 10, fv.Type().Bits())
		if err != nil {
			return false
		}
		fv.SetInt(n)
		return true
	case fieldUint:
		s, ok := r.integer(false)
		if !ok {
			return false
		}
		n, err := strconv.ParseUint(s, 10, fv.Type().Bits())
		if err != nil {
			return false
		}
		fv.SetUint(n)
		return true
	case fieldTime:
		start := r.p
		if _, ok := r.str(); !ok {
			return false
		}
		return (*time.Time)(fv.Addr().UnsafePointer()).UnmarshalJSON(r.b[start:r.p]) == nil
	case fieldBytes:
		if r.literal("null") {
			fv.SetZero()
			return true
		}
		s, ok := r.str()
		if !ok {
			return false
		}
		b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(b, s)
		if err != nil {
			return false
		}
		fv.SetBytes(b[:n])
		return true
	case fieldStrings:
		if r.literal("null") {
			fv.SetZero()
			return true
		}
		if !r.next('[') {
			return false
		}
		var items [][]byte
		for !r.next(']') {
			if len(items) > 0 && !r.next(',') {
				return false
			}
			s, ok := r.str()
			if !ok {
				return false
			}
			items = append(items, s)
		}
		list := reflect.MakeSlice(fv.Type(), len(items), len(items))
		for i, s := range items {
			list.Index(i).SetString(string(s))
		}
		fv.Set(list)
		return true
	}
	return false
}
