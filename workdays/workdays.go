// Package workdays is the Italian calendar of working days: Saturdays,
// Sundays, the national holidays (Easter Monday computed) and configured
// local ones (the patron saint) are not working days
// (docs/rules.md#card-lifecycle).
package workdays

import (
	"fmt"
	"strings"
	"time"
)

// Calendar tells working days apart. The zero value knows the national
// holidays only.
type Calendar struct {
	local map[[2]int]bool // month, day
}

// New returns a calendar with local holidays given as "gg/mm".
func New(local []string) (*Calendar, error) {
	c := &Calendar{local: map[[2]int]bool{}}
	for _, h := range local {
		t, err := time.Parse("02/01/2006", strings.TrimSpace(h)+"/2000")
		if err != nil {
			return nil, fmt.Errorf("festivo locale %q: atteso gg/mm", h)
		}
		c.local[[2]int{int(t.Month()), t.Day()}] = true
	}
	return c, nil
}

// national are the fixed national holidays (month, day).
var national = [][2]int{
	{1, 1}, {1, 6}, {4, 25}, {5, 1}, {6, 2}, {8, 15}, {11, 1}, {12, 8}, {12, 25}, {12, 26},
}

// Easter returns Easter Sunday of year (Gregorian calendar, the anonymous
// algorithm of Meeus/Jones/Butcher).
func Easter(year int) time.Time {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
}

// Holiday reports whether the calendar day of t (in t's location) is a
// holiday: national, Easter Monday, 4 October from 2026 (San Francesco,
// a national holiday again), or local.
func (c *Calendar) Holiday(t time.Time) bool {
	y, m, d := t.Date()
	md := [2]int{int(m), d}
	for _, h := range national {
		if h == md {
			return true
		}
	}
	if y >= 2026 && md == [2]int{10, 4} {
		return true
	}
	if c != nil && c.local[md] {
		return true
	}
	em := Easter(y).AddDate(0, 0, 1)
	return em.Month() == m && em.Day() == d
}

// Working reports whether the calendar day of t is a working day.
func (c *Calendar) Working(t time.Time) bool {
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !c.Holiday(t)
}

// Between counts the working days after the day of from up to and
// including the day of to, both taken in loc; 0 when to is not after from.
func (c *Calendar) Between(from, to time.Time, loc *time.Location) int {
	f, t := from.In(loc), to.In(loc)
	day := time.Date(f.Year(), f.Month(), f.Day(), 12, 0, 0, 0, loc)
	end := time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, loc)
	n := 0
	for day = day.AddDate(0, 0, 1); !day.After(end); day = day.AddDate(0, 0, 1) {
		if c.Working(day) {
			n++
		}
	}
	return n
}
