package workdays

import (
	"testing"
	"time"
)

func TestEasterSundays(t *testing.T) {
	for y, want := range map[int]string{2024: "2024-03-31", 2025: "2025-04-20", 2026: "2026-04-05", 2027: "2027-03-28", 2038: "2038-04-25"} {
		if got := Easter(y).Format("2006-01-02"); got != want {
			t.Errorf("Easter %d = %s, want %s", y, got, want)
		}
	}
}

func TestHolidaysOfTheItalianCalendar(t *testing.T) {
	rome, _ := time.LoadLocation("Europe/Rome")
	c, err := New([]string{"29/06"})
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time {
		d, err := time.ParseInLocation("02/01/2006", s, rome)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, s := range []string{"01/01/2026", "06/01/2026", "06/04/2026", "25/04/2026", "01/05/2026", "02/06/2026", "29/06/2026", "15/08/2026", "04/10/2026", "01/11/2026", "08/12/2026", "25/12/2026", "26/12/2026", "21/04/2025"} {
		if !c.Holiday(day(s)) {
			t.Errorf("%s is not a holiday", s)
		}
	}
	for _, s := range []string{"07/01/2026", "05/04/2026", "07/04/2026", "04/10/2025", "24/12/2026", "31/12/2026"} {
		if c.Holiday(day(s)) {
			t.Errorf("%s is a holiday", s)
		}
	}
	var national *Calendar
	if national.Holiday(day("29/06/2026")) || !national.Holiday(day("25/12/2026")) {
		t.Error("a nil calendar knows the national holidays only")
	}
	if _, err := New([]string{"31/13"}); err == nil {
		t.Error("31/13 accepted")
	}
}

// TestWorkingDaysSkipTheChristmasHolidays: from Monday 22/12/2025 to Monday
// 05/01/2026 there are 7 working days (23, 24, 29, 30, 31/12, 2 and 5/1):
// 25 and 26/12 and 1/1 are holidays; Tuesday 6/1 is one too.
func TestWorkingDaysSkipTheChristmasHolidays(t *testing.T) {
	rome, _ := time.LoadLocation("Europe/Rome")
	from := time.Date(2025, 12, 22, 16, 0, 0, 0, rome)
	c := &Calendar{}
	for to, want := range map[string]int{"05/01/2026": 7, "06/01/2026": 7, "07/01/2026": 8, "22/12/2025": 0, "21/12/2025": 0} {
		d, _ := time.ParseInLocation("02/01/2006", to, rome)
		if got := c.Between(from, d.Add(23*time.Hour), rome); got != want {
			t.Errorf("working days to %s: %d, want %d", to, got, want)
		}
	}
}
