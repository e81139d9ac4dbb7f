package store

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
)

// Every record type the store writes is read back as encoding/json reads
// it, whatever its fields hold; the plain form is read by decodeRecord for
// every type with a plan (the test fails if it never is).
func TestRecordDecodeIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, v := range recordTypes() {
		typ := reflect.TypeOf(v).Elem()
		fast := 0
		for i := range 500 {
			src := reflect.New(typ)
			if i > 0 {
				fill(r, src.Elem())
			}
			raw, err := encodeRecord(src.Interface())
			if err != nil {
				continue
			}
			byJSON := reflect.New(typ)
			jerr := json.Unmarshal(raw, byJSON.Interface())
			byPlan := reflect.New(typ)
			if decodeRecord(raw, byPlan.Interface()) {
				fast++
				if jerr != nil || !reflect.DeepEqual(byPlan.Elem().Interface(), byJSON.Elem().Interface()) {
					t.Fatalf("%s:\n decodeRecord %+v\n json         %+v (%v)", raw, byPlan.Elem(), byJSON.Elem(), jerr)
				}
			} else if !byPlan.Elem().IsZero() {
				t.Fatalf("%s: decodeRecord stepped aside and left %+v", raw, byPlan.Elem())
			}
			byDecode := reflect.New(typ)
			derr := decode("x", raw, byDecode.Interface())
			if (derr != nil) != (jerr != nil) || jerr == nil && !reflect.DeepEqual(byDecode.Elem().Interface(), byJSON.Elem().Interface()) {
				t.Fatalf("%s: decode %+v (%v), json %+v (%v)", raw, byDecode.Elem(), derr, byJSON.Elem(), jerr)
			}
		}
		if planOf(typ).ok && fast == 0 {
			t.Errorf("%s: no record read by decodeRecord", typ)
		}
	}
}

// What the plain form leaves out is read by encoding/json: escapes, keys
// of another case, unknown keys, numbers that are not integers of the
// field's size, white space, null for a string; and a record read into a
// struct that is not zero.
func TestRecordDecodeStepsAside(t *testing.T) {
	for _, raw := range []string{
		`{"serial":"a\"b"}`, `{"SERIAL":"x"}`, `{"serial":"x","other":1}`, `{"warned":1.0}`, `{"warned":1e2}`,
		`{"warned":99999999999999999999}`, `{ "serial":"x"}`, `{"serial":null}`, `{"serial":"\u00e0"}`,
		`{"warned":01}`, `{"serial":"x",}`, `{"serial":"x"`, `["serial"]`, `{"serial":"\xff"}`,
		`{"first_sealed":"!!"}`, `{"requested":"yesterday"}`, `{"requested":"2026-13-01T00:00:00Z"}`,
	} {
		var c domain.SmartCard
		if decodeRecord([]byte(raw), &c) {
			t.Errorf("%s: read as the plain form: %+v", raw, c)
		}
		if !reflect.ValueOf(c).IsZero() {
			t.Errorf("%s: left %+v", raw, c)
		}
	}
	c := domain.SmartCard{Serial: "old", CF: "kept"}
	if decodeRecord([]byte(`{"serial":"new"}`), &c) || c.Serial != "old" {
		t.Errorf("read into a card that was not zero: %+v", c)
	}
	if err := decode("s/x", []byte(`{"serial":"new"}`), &c); err != nil || c.Serial != "new" || c.CF != "kept" {
		t.Errorf("decode into a card that was not zero: %+v, %v (encoding/json keeps the other fields)", c, err)
	}
	var u domain.Utenza
	if !decodeRecord([]byte(`{"profiles":null}`), &u) || u.Profiles != nil {
		t.Errorf("null list: %+v", u)
	}
	if !decodeRecord([]byte(`{"profiles":[]}`), &u) || u.Profiles == nil || len(u.Profiles) != 0 {
		t.Errorf("empty list: %#v", u.Profiles)
	}
}

// FuzzRecordDecode: whatever bytes decodeRecord reads, encoding/json reads
// alike, with no error.
func FuzzRecordDecode(f *testing.F) {
	now := time.Date(2026, 12, 7, 10, 15, 0, 123, time.FixedZone("CET", 3600))
	for _, v := range []any{
		&domain.SmartCard{Serial: "SC1", CF: "RSSMRA68A01H501Y", Requested: now, FirstSealed: []byte{1, 2, 3}, Warned: -3},
		&domain.Utenza{ISTAT: "058091", CF: "RSSMRA68A01H501Y", Profiles: []domain.Profile{"ASC", "ALS"}},
		&domain.Person{CF: "X", Surname: "D'Angelò", Name: "Nicolò"}, &domain.Comune{ISTAT: "058091", NextPC: 4, Server: true},
	} {
		b, _ := json.Marshal(v)
		f.Add(b, uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		types := []reflect.Type{reflect.TypeFor[domain.SmartCard](), reflect.TypeFor[domain.Utenza](), reflect.TypeFor[domain.Person](), reflect.TypeFor[domain.Comune]()}
		typ := types[int(which)%len(types)]
		byPlan := reflect.New(typ)
		if !decodeRecord(raw, byPlan.Interface()) {
			if !byPlan.Elem().IsZero() {
				t.Fatalf("%q: stepped aside and left %+v", raw, byPlan.Elem())
			}
			return
		}
		byJSON := reflect.New(typ)
		if err := json.Unmarshal(raw, byJSON.Interface()); err != nil {
			t.Fatalf("%q: read by decodeRecord, refused by encoding/json: %v", raw, err)
		}
		if !reflect.DeepEqual(byPlan.Elem().Interface(), byJSON.Elem().Interface()) {
			t.Fatalf("%q:\n decodeRecord %+v\n json         %+v", raw, byPlan.Elem(), byJSON.Elem())
		}
	})
}

// upper is a string type read by a method of its own.
type upper string

func (u *upper) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*u = upper(strings.ToUpper(s))
	return nil
}

// A field whose type encoding/json reads by a method of its own, or a
// json.Number, is read by encoding/json, never by the plain form.
func TestFieldsReadByTheirOwnMethodAreLeftToEncodingJSON(t *testing.T) {
	type withMethod struct {
		Name upper `json:"name"`
	}
	type withNumber struct {
		N json.Number `json:"n"`
	}
	var m withMethod
	if err := decode("x", []byte(`{"name":"rossi"}`), &m); err != nil || m.Name != "ROSSI" {
		t.Errorf("a field with UnmarshalJSON: %+v, %v", m, err)
	}
	var n withNumber
	if err := decode("x", []byte(`{"n":"abc"}`), &n); err == nil {
		t.Errorf("a json.Number that is not a number was read: %+v", n)
	}
	if err := decode("x", []byte(`{"n":12}`), &n); err != nil || n.N != "12" {
		t.Errorf("a json.Number: %+v, %v", n, err)
	}
}
