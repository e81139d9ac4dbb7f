package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"anprsec/domain"
)

// BenchmarkRecordDecode reads the records the national jobs read most (a
// card in production, an utenza, a person) by decode, against encoding/json
// (the baseline) in the same run.
func BenchmarkRecordDecode(b *testing.B) {
	now := time.Date(2026, 12, 7, 10, 15, 0, 123456789, time.UTC)
	records := []any{
		&domain.SmartCard{Serial: "SC0000000042", CF: "RSSMRA68A01H501Y", ISTAT: "058091", State: domain.CardProduzione,
			Requested: now, Updated: now, Order: "ordine-20261207-101500.csv.pgp", Ordered: now, FirstSealed: make([]byte, 120), SecondSealed: make([]byte, 120)},
		&domain.Utenza{ISTAT: "058091", CF: "RSSMRA68A01H501Y", Profiles: []domain.Profile{"ASC", "ALS"}, Created: now, Updated: now},
		&domain.Person{CF: "RSSMRA68A01H501Y", Surname: "Rossi", Name: "Mario", Sex: "M", BirthDate: "1968-01-01", Card: "SC0000000042", Updated: now},
	}
	for _, rec := range records {
		raw, err := encodeRecord(rec)
		if err != nil {
			b.Fatal(err)
		}
		typ := reflect.TypeOf(rec).Elem()
		b.Run("baseline=encoding-json/"+typ.Name(), func(b *testing.B) {
			for b.Loop() {
				if err := json.Unmarshal(raw, reflect.New(typ).Interface()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/"+typ.Name(), func(b *testing.B) {
			for b.Loop() {
				if err := decode("x", raw, reflect.New(typ).Interface()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
