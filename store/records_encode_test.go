package store

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"anprsec/domain"
)

// fill sets every field of v (recursively) to a random value: zero about
// one time in three, else a tricky string, a number, a time, a list.
func fill(r *rand.Rand, v reflect.Value) {
	if r.IntN(3) == 0 {
		v.SetZero()
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(jsonStrings[r.IntN(len(jsonStrings))])
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(r.IntN(2000) - 1000))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(r.IntN(250)))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(r.Float64() * 1000)
	case reflect.Slice:
		n := r.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range r.IntN(3) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(r, k)
			fill(r, e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem())
		v.Set(p)
	case reflect.Struct:
		if v.Type() == timeType {
			zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("X", -5*3600-1800)}
			v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), r.Int64N(1e9)*int64(r.IntN(2))).In(zones[r.IntN(len(zones))])))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i))
			}
		}
	}
}

// recordTypes returns a pointer to a zero value of every record type the
// store writes.
func recordTypes() []any {
	return []any{
		&domain.Comune{}, &domain.Person{}, &domain.Utenza{}, &domain.SmartCard{}, &domain.Postazione{},
		&InputFile{}, &Run{}, &Campaign{}, &CampaignComune{}, &CampaignList{}, &CardOrder{}, &Mail{},
		&Bundle{}, &CFException{}, &Installation{}, &OCSPResponder{}, &Sighting{}, &StatusReport{},
		&histHead{}, &histPseudo{}, &pseudonym{}, &Entry{},
	}
}

// Every record type the store writes is encoded byte for byte as
// encoding/json encodes it, whatever its fields hold: a field added to a
// record is either encoded alike or makes this test fail.
func TestRecordJSONIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, v := range recordTypes() {
		rv := reflect.ValueOf(v)
		for i := range 300 {
			fill(r, rv.Elem())
			if i == 0 {
				rv.Elem().SetZero()
			}
			want, werr := json.Marshal(v)
			got, gerr := encodeRecord(v)
			if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
				t.Fatalf("%T:\n got %s (%v)\nwant %s (%v)", v, got, gerr, want, werr)
			}
		}
	}
	// Values that are not pointers to structs are encoding/json's.
	for _, v := range []any{uint64(7), histPseudo{Phase: migDone}, "x", nil, (*domain.Person)(nil)} {
		want, _ := json.Marshal(v)
		if got, _ := encodeRecord(v); !bytes.Equal(got, want) {
			t.Errorf("%#v: got %s, want %s", v, got, want)
		}
	}
}

// The records the census writes are encoded by the plan, not by
// encoding/json whole.
func TestCensusRecordsHaveAPlan(t *testing.T) {
	for _, v := range []any{domain.Comune{}, domain.Person{}, domain.Utenza{}, domain.SmartCard{}, domain.Postazione{}, InputFile{}} {
		if !planOf(reflect.TypeOf(v)).ok {
			t.Errorf("%T: no plan", v)
		}
	}
}

// A time encoding/json refuses (a year past 9999, an offset of a day or
// more from UTC) is refused alike.
func TestRecordWithATimeOutOfRangeIsRefused(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", -24*3600)),
	} {
		p := &domain.Person{CF: "X", Updated: tm}
		if _, err := json.Marshal(p); err == nil {
			t.Fatalf("encoding/json took %v", tm)
		}
		if b, err := encodeRecord(p); err == nil {
			t.Errorf("%v: encoded %s", tm, b)
		}
	}
}
