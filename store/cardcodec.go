package store

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"time"

	"anprsec/domain"
)

// A card's record is the JSON of domain.SmartCard, written as every record
// is (encodeRecord). ReadCards, which goes through thousands of cards in
// one run, reads it without reflection when it can: unmarshalCard reads
// the JSON encoding/json writes into the card encoding/json would make of
// it. It steps aside (ok false, and encoding/json does the work) for
// anything outside the plain form: a string with a character JSON escapes
// or outside ASCII, a time, a key it does not know, white space; and
// altogether unless domain.SmartCard has exactly the fields of cardFields,
// so a field added to the card is never lost.

// cardFields are the fields of domain.SmartCard the codec knows: name,
// JSON tag and type, in declaration order.
var cardFields = [][3]string{
	{"Serial", "serial", "string"},
	{"CF", "cf", "string"},
	{"ISTAT", "istat", "string"},
	{"State", "state", "domain.CardState"},
	{"Reason", "reason,omitempty", "string"},
	{"BlockedBy", "blocked_by,omitempty", "string"},
	{"Requested", "requested", "time.Time"},
	{"Updated", "updated", "time.Time"},
	{"Order", "order,omitempty", "string"},
	{"Ordered", "ordered,omitempty", "time.Time"},
	{"Delivered", "delivered,omitempty", "time.Time"},
	{"DeliveredTo", "delivered_to,omitempty", "string"},
	{"Activated", "activated,omitempty", "time.Time"},
	{"Expires", "expires,omitempty", "time.Time"},
	{"FirstSealed", "first_sealed,omitempty", "[]uint8"},
	{"SecondSealed", "second_sealed,omitempty", "[]uint8"},
	{"Warned", "warned,omitempty", "int"},
	{"Unwarned", "unwarned,omitempty", "int"},
	{"Replaces", "replaces,omitempty", "string"},
	{"LateNotified", "late_notified,omitempty", "time.Time"},
}

// cardCodec says whether domain.SmartCard is what the codec knows.
var cardCodec = func() bool {
	t := reflect.TypeFor[domain.SmartCard]()
	if t.NumField() != len(cardFields) {
		return false
	}
	for i, f := range cardFields {
		sf := t.Field(i)
		if sf.Name != f[0] || sf.Tag.Get("json") != f[1] || sf.Type.String() != f[2] {
			return false
		}
	}
	return true
}()

// encodeCard returns the record of c: the bytes of json.Marshal, written
// as every record is (encodeRecord).
func encodeCard(c *domain.SmartCard) ([]byte, error) { return encodeRecord(c) }

// decodeCard reads the record raw of key into c, as decode does.
func decodeCard(key string, raw []byte, c *domain.SmartCard) error {
	if unmarshalCard(raw, c) {
		return nil
	}
	*c = domain.SmartCard{}
	return decode(key, raw, c)
}

// cardSlots are the fields of a card by JSON key.
var cardSlots = map[string]func(c *domain.SmartCard) any{
	"serial":        func(c *domain.SmartCard) any { return &c.Serial },
	"cf":            func(c *domain.SmartCard) any { return &c.CF },
	"istat":         func(c *domain.SmartCard) any { return &c.ISTAT },
	"state":         func(c *domain.SmartCard) any { return (*string)(&c.State) },
	"reason":        func(c *domain.SmartCard) any { return &c.Reason },
	"blocked_by":    func(c *domain.SmartCard) any { return &c.BlockedBy },
	"requested":     func(c *domain.SmartCard) any { return &c.Requested },
	"updated":       func(c *domain.SmartCard) any { return &c.Updated },
	"order":         func(c *domain.SmartCard) any { return &c.Order },
	"ordered":       func(c *domain.SmartCard) any { return &c.Ordered },
	"delivered":     func(c *domain.SmartCard) any { return &c.Delivered },
	"delivered_to":  func(c *domain.SmartCard) any { return &c.DeliveredTo },
	"activated":     func(c *domain.SmartCard) any { return &c.Activated },
	"expires":       func(c *domain.SmartCard) any { return &c.Expires },
	"first_sealed":  func(c *domain.SmartCard) any { return &c.FirstSealed },
	"second_sealed": func(c *domain.SmartCard) any { return &c.SecondSealed },
	"warned":        func(c *domain.SmartCard) any { return &c.Warned },
	"unwarned":      func(c *domain.SmartCard) any { return &c.Unwarned },
	"replaces":      func(c *domain.SmartCard) any { return &c.Replaces },
	"late_notified": func(c *domain.SmartCard) any { return &c.LateNotified },
}

// unmarshalCard reads raw, in marshalCard's plain form, into c (a zero
// card), as json.Unmarshal does; false, with c in any state, for anything
// else.
func unmarshalCard(raw []byte, c *domain.SmartCard) bool {
	if !cardCodec || len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return false
	}
	r := cardReader{raw: raw, p: 1}
	if raw[1] == '}' {
		return len(raw) == 2
	}
	for {
		k, ok := r.str()
		if !ok || !r.next(':') {
			return false
		}
		slot := cardSlots[string(k)]
		if slot == nil || !r.value(slot(c)) {
			return false
		}
		switch {
		case r.next(','):
		case r.next('}'):
			return r.p == len(raw)
		default:
			return false
		}
	}
}

// cardReader reads a card's record from raw[p].
type cardReader struct {
	raw []byte
	p   int
}

// next reports whether raw[p] is ch, and moves past it if so.
func (r *cardReader) next(ch byte) bool {
	if r.p < len(r.raw) && r.raw[r.p] == ch {
		r.p++
		return true
	}
	return false
}

// str returns the plain string (without the quotes) at raw[p].
func (r *cardReader) str() ([]byte, bool) {
	if !r.next('"') {
		return nil, false
	}
	start := r.p
	for ; r.p < len(r.raw); r.p++ {
		switch ch := r.raw[r.p]; {
		case ch == '"':
			r.p++
			return r.raw[start : r.p-1], true
		case ch < 0x20 || ch > 0x7e || ch == '\\':
			return nil, false
		}
	}
	return nil, false
}

// value reads the value at raw[p] into dst, a field of the card.
func (r *cardReader) value(dst any) bool {
	start := r.p
	switch dst := dst.(type) {
	case *string:
		v, ok := r.str()
		*dst = string(v)
		return ok
	case *time.Time:
		_, ok := r.str()
		return ok && dst.UnmarshalJSON(r.raw[start:r.p]) == nil
	case *[]byte:
		v, ok := r.str()
		if !ok {
			return false
		}
		out := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
		n, err := base64.StdEncoding.Decode(out, v)
		*dst = out[:n]
		return err == nil
	case *int:
		return r.int(dst)
	}
	return false
}

// int reads an integer in JSON's form (no leading zero, no "-0").
func (r *cardReader) int(dst *int) bool {
	start := r.p
	r.next('-')
	digits := r.p
	for r.p < len(r.raw) && r.raw[r.p] >= '0' && r.raw[r.p] <= '9' {
		r.p++
	}
	if r.p == digits || r.raw[digits] == '0' && (r.p-digits > 1 || digits > start) {
		return false
	}
	v, err := strconv.Atoi(string(r.raw[start:r.p]))
	*dst = v
	return err == nil
}
