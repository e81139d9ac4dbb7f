package store

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A record is stored as the JSON encoding/json gives it. An import writes
// them by the hundred thousand, and encoding/json spends most of its time
// on their times (MarshalJSON, then a check and copy of its output): the
// records of plain fields (strings, booleans, integers, times, bytes,
// lists of strings) are encoded here instead, byte for byte as
// encoding/json encodes them (the tests compare the two on every record
// type); a field of any other type is encoded by encoding/json, and a type
// this encoder does not follow (embedded fields, options other than
// omitempty) is encoded by encoding/json whole.

type fieldKind uint8

const (
	fieldOther fieldKind = iota // encoded by encoding/json
	fieldString
	fieldBool
	fieldInt
	fieldUint
	fieldTime
	fieldBytes
	fieldStrings
)

type fieldPlan struct {
	index     int
	key       string // `"name":`
	omitEmpty bool
	kind      fieldKind
}

// recordPlan is how a struct type is encoded; nil fields and !ok: by
// encoding/json whole.
type recordPlan struct {
	ok     bool
	fields []fieldPlan
	byKey  map[string]int // index in fields by JSON name
}

var recordPlans sync.Map // reflect.Type -> *recordPlan

var (
	timeType            = reflect.TypeFor[time.Time]()
	jsonNumberType      = reflect.TypeFor[json.Number]()
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// marshals reports whether encoding/json writes or reads t by a method of
// its own (or t is json.Number): such a type is left to encoding/json, by
// encodeRecord and by decodeRecord.
func marshals(t reflect.Type) bool {
	if t == jsonNumberType {
		return true
	}
	for _, m := range []reflect.Type{jsonMarshalerType, textMarshalerType, jsonUnmarshalerType, textUnmarshalerType} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func planOf(t reflect.Type) *recordPlan {
	if p, ok := recordPlans.Load(t); ok {
		return p.(*recordPlan)
	}
	p := makePlan(t)
	recordPlans.Store(t, p)
	return p
}

func makePlan(t reflect.Type) *recordPlan {
	no := &recordPlan{}
	if t.Kind() != reflect.Struct || marshals(t) {
		return no
	}
	p := &recordPlan{ok: true, byKey: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return no
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = sf.Name
		}
		f := fieldPlan{index: i, key: strconv.Quote(name) + ":"}
		switch opts {
		case "":
		case "omitempty":
			f.omitEmpty = true
		default:
			return no
		}
		if _, dup := p.byKey[name]; dup || !plainName(name) {
			return no
		}
		p.byKey[name] = len(p.fields)
		f.kind = kindOf(sf.Type)
		p.fields = append(p.fields, f)
	}
	return p
}

// kindOf is how a field of type t is encoded.
func kindOf(t reflect.Type) fieldKind {
	switch {
	case t == timeType:
		return fieldTime
	case marshals(t):
		return fieldOther
	case t.Kind() == reflect.String:
		return fieldString
	case t.Kind() == reflect.Bool:
		return fieldBool
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return fieldInt
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return fieldUint
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !marshals(t.Elem()):
		return fieldBytes
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String && !marshals(t.Elem()):
		return fieldStrings
	}
	return fieldOther
}

// emptyValue is encoding/json's test of omitempty.
func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// encodeRecord returns the JSON of v as json.Marshal gives it.
func encodeRecord(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || marshals(rv.Type().Elem()) {
		return json.Marshal(v)
	}
	rv = rv.Elem()
	p := planOf(rv.Type())
	if !p.ok {
		return json.Marshal(v)
	}
	b := make([]byte, 0, 256)
	b = append(b, '{')
	first := true
	for i := range p.fields {
		f := &p.fields[i]
		fv := rv.Field(f.index)
		if f.omitEmpty && emptyValue(fv) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.key...)
		var err error
		if b, err = appendField(b, f.kind, fv); err != nil {
			return json.Marshal(v) // its error
		}
	}
	return append(b, '}'), nil
}

// appendField appends the JSON of field value fv of kind k; a time
// encoding/json refuses is an error.
func appendField(b []byte, k fieldKind, fv reflect.Value) ([]byte, error) {
	switch k {
	case fieldString:
		b = appendJSONString(b, fv.String())
	case fieldBool:
		b = strconv.AppendBool(b, fv.Bool())
	case fieldInt:
		b = strconv.AppendInt(b, fv.Int(), 10)
	case fieldUint:
		b = strconv.AppendUint(b, fv.Uint(), 10)
	case fieldTime:
		t := (*time.Time)(fv.Addr().UnsafePointer())
		if !jsonTime(*t) {
			return nil, errBadTime
		}
		b = appendJSONTime(b, *t)
	case fieldBytes:
		if fv.IsNil() {
			return append(b, "null"...), nil
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, fv.Bytes())
		b = append(b, '"')
	case fieldStrings:
		if fv.IsNil() {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for j := range fv.Len() {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, fv.Index(j).String())
		}
		b = append(b, ']')
	default:
		j, err := json.Marshal(fv.Addr().Interface())
		if err != nil {
			return nil, err
		}
		b = append(b, j...)
	}
	return b, nil
}

var errBadTime = errors.New("time outside the years 0-9999 or a day or more away from UTC")
