package store

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strconv"
	"time"

	"anprsec/domain"
)

// A card's record is the JSON of domain.SmartCard. ReadCards and
// PutReadCard, which go through thousands of cards in one run, write and
// read it without reflection when they can: marshalCard writes the bytes
// encoding/json writes, and unmarshalCard reads the JSON marshalCard
// writes into the card encoding/json would make of it. Each steps aside
// (ok false, and encoding/json does the work) for anything outside that
// plain form: a string with a character JSON escapes or outside ASCII, a
// time encoding/json refuses, a key it does not know, white space. Both
// step aside altogether unless domain.SmartCard has exactly the fields of
// cardFields, so a field added to the card is never lost.

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

// encodeCard returns the record of c: the bytes of json.Marshal.
func encodeCard(c *domain.SmartCard) ([]byte, error) {
	if b, ok := marshalCard(c); ok {
		return b, nil
	}
	return json.Marshal(c)
}

// decodeCard reads the record raw of key into c, as decode does.
func decodeCard(key string, raw []byte, c *domain.SmartCard) error {
	if unmarshalCard(raw, c) {
		return nil
	}
	*c = domain.SmartCard{}
	return decode(key, raw, c)
}

type cardWriter struct {
	b  []byte
	ok bool
}

func (w *cardWriter) key(k string) {
	if len(w.b) > 1 {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

// plain reports whether encoding/json writes s as it is, between quotes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func (w *cardWriter) str(k, v string, omitEmpty bool) {
	if omitEmpty && v == "" {
		return
	}
	if !plain(v) {
		w.ok = false
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = append(w.b, v...)
	w.b = append(w.b, '"')
}

// time writes t as time.Time.MarshalJSON does (omitempty leaves a struct
// in); a year outside 0-9999 or an offset of a day or more, which it
// refuses, is not plain.
func (w *cardWriter) time(k string, t time.Time) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off <= -24*3600 || off >= 24*3600 {
		w.ok = false
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

func (w *cardWriter) bytes(k string, v []byte) { // omitempty
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = base64.StdEncoding.AppendEncode(w.b, v)
	w.b = append(w.b, '"')
}

func (w *cardWriter) int(k string, v int) { // omitempty
	if v == 0 {
		return
	}
	w.key(k)
	w.b = strconv.AppendInt(w.b, int64(v), 10)
}

// marshalCard returns json.Marshal(c), or ok false.
func marshalCard(c *domain.SmartCard) ([]byte, bool) {
	if !cardCodec {
		return nil, false
	}
	w := cardWriter{b: make([]byte, 0, 256+len(c.FirstSealed)*4/3+len(c.SecondSealed)*4/3), ok: true}
	w.b = append(w.b, '{')
	w.str("serial", c.Serial, false)
	w.str("cf", c.CF, false)
	w.str("istat", c.ISTAT, false)
	w.str("state", string(c.State), false)
	w.str("reason", c.Reason, true)
	w.str("blocked_by", c.BlockedBy, true)
	w.time("requested", c.Requested)
	w.time("updated", c.Updated)
	w.str("order", c.Order, true)
	w.time("ordered", c.Ordered)
	w.time("delivered", c.Delivered)
	w.str("delivered_to", c.DeliveredTo, true)
	w.time("activated", c.Activated)
	w.time("expires", c.Expires)
	w.bytes("first_sealed", c.FirstSealed)
	w.bytes("second_sealed", c.SecondSealed)
	w.int("warned", c.Warned)
	w.int("unwarned", c.Unwarned)
	w.str("replaces", c.Replaces, true)
	w.time("late_notified", c.LateNotified)
	w.b = append(w.b, '}')
	return w.b, w.ok
}

// unmarshalCard reads raw, in marshalCard's plain form, into c (a zero
// card), as json.Unmarshal does; false, with c in any state, for anything
// else.
func unmarshalCard(raw []byte, c *domain.SmartCard) bool {
	if !cardCodec || len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return false
	}
	p := 1
	if raw[p] == '}' {
		return p == len(raw)-1
	}
	// str returns the plain string starting at raw[p] (a quote) and moves p
	// past it.
	str := func() ([]byte, bool) {
		if p >= len(raw) || raw[p] != '"' {
			return nil, false
		}
		start := p + 1
		for i := start; i < len(raw); i++ {
			switch ch := raw[i]; {
			case ch == '"':
				p = i + 1
				return raw[start:i], true
			case ch < 0x20 || ch > 0x7e || ch == '\\':
				return nil, false
			}
		}
		return nil, false
	}
	for {
		k, ok := str()
		if !ok || p >= len(raw) || raw[p] != ':' {
			return false
		}
		p++
		if !cardValue(raw, &p, string(k), c, str) {
			return false
		}
		if p >= len(raw) {
			return false
		}
		switch raw[p] {
		case ',':
			p++
		case '}':
			return p == len(raw)-1
		default:
			return false
		}
	}
}

// cardValue reads the value of key k at raw[*p] into c.
func cardValue(raw []byte, p *int, k string, c *domain.SmartCard, str func() ([]byte, bool)) bool {
	var s *string
	var t *time.Time
	var b *[]byte
	var n *int
	switch k {
	case "serial":
		s = &c.Serial
	case "cf":
		s = &c.CF
	case "istat":
		s = &c.ISTAT
	case "state":
		v, ok := str()
		c.State = domain.CardState(v)
		return ok
	case "reason":
		s = &c.Reason
	case "blocked_by":
		s = &c.BlockedBy
	case "requested":
		t = &c.Requested
	case "updated":
		t = &c.Updated
	case "order":
		s = &c.Order
	case "ordered":
		t = &c.Ordered
	case "delivered":
		t = &c.Delivered
	case "delivered_to":
		s = &c.DeliveredTo
	case "activated":
		t = &c.Activated
	case "expires":
		t = &c.Expires
	case "first_sealed":
		b = &c.FirstSealed
	case "second_sealed":
		b = &c.SecondSealed
	case "warned":
		n = &c.Warned
	case "unwarned":
		n = &c.Unwarned
	case "replaces":
		s = &c.Replaces
	case "late_notified":
		t = &c.LateNotified
	default:
		return false
	}
	switch {
	case s != nil:
		v, ok := str()
		*s = string(v)
		return ok
	case t != nil:
		start := *p
		if _, ok := str(); !ok {
			return false
		}
		return t.UnmarshalJSON(raw[start:*p]) == nil
	case b != nil:
		v, ok := str()
		if !ok {
			return false
		}
		out := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
		m, err := base64.StdEncoding.Decode(out, v)
		*b = out[:m]
		return err == nil
	default:
		start := *p
		if *p < len(raw) && raw[*p] == '-' {
			*p++
		}
		for *p < len(raw) && raw[*p] >= '0' && raw[*p] <= '9' {
			*p++
		}
		v, err := strconv.Atoi(string(raw[start:*p]))
		*n = v
		return err == nil && (raw[start] != '0' || *p-start == 1) && (raw[start] != '-' || raw[start+1] != '0')
	}
}
