package main

import (
	"testing"
	"time"
)

// TestOperatorDatesAreDayMonthYear: a person types and reads gg/mm/aaaa
// (ISO still accepted in flags), times as gg/mm/aaaa HH:MM with the zone.
func TestOperatorDatesAreDayMonthYear(t *testing.T) {
	rome, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Skip(err)
	}
	for in, want := range map[string]string{"07/12/2026": "2026-12-07", "7/12/2026": "2026-12-07", "2026-12-07": "2026-12-07"} {
		got, err := parseDay(in, rome)
		if err != nil || got.Format("2006-01-02") != want || got.Location() != rome {
			t.Errorf("parseDay(%q) = %v, %v; want %s in Europe/Rome", in, got, err, want)
		}
	}
	for _, bad := range []string{"12/31/2026", "31-12-2026", "domani"} {
		if _, err := parseDay(bad, rome); err == nil {
			t.Errorf("parseDay(%q) accepted", bad)
		}
	}
	if got := personDay("1996-10-23"); got != "23/10/1996" {
		t.Errorf("personDay = %q", got)
	}
	if got := time.Date(2026, 12, 7, 6, 8, 0, 0, time.UTC).In(rome).Format(whenLayout); got != "07/12/2026 07:08 CET" {
		t.Errorf("when = %q", got)
	}
}
