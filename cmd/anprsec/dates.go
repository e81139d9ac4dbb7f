package main

import (
	"fmt"
	"strings"
	"time"
)

// Dates for people (docs/rules.md#drops-and-receipts): what an operator
// reads or types is gg/mm/aaaa, and gg/mm/aaaa HH:MM in the configured
// time zone (named); file names keep their sortable YYYYMMDD, logs are UTC.
const (
	dayLayout  = "02/01/2006"
	whenLayout = "02/01/2006 15:04 MST"
)

// parseDay reads a day typed by an operator: gg/mm/aaaa (also g/m/aaaa), or
// aaaa-mm-gg.
func parseDay(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"02/01/2006", "2/1/2006", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q non è una data gg/mm/aaaa", s)
}

// personDay shows a stored YYYY-MM-DD date as gg/mm/aaaa ("-" when empty).
func personDay(iso string) string {
	t, err := time.Parse("2006-01-02", iso)
	if err != nil {
		return orDash(iso)
	}
	return t.Format(dayLayout)
}
