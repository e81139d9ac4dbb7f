package lifecycle

import (
	"testing"
	"time"

	"anprsec/store"
)

// TestCampaignDeadlineDayCountsWhole: the deadline is the last second of
// its day in the zone, also on the days the clocks change.
func TestCampaignDeadlineDayCountsWhole(t *testing.T) {
	rome, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	for _, day := range []time.Time{
		time.Date(2026, 1, 14, 9, 0, 0, 0, rome),
		time.Date(2026, 3, 29, 1, 0, 0, 0, rome),  // clocks forward
		time.Date(2026, 10, 25, 1, 0, 0, 0, rome), // clocks back
	} {
		d := DeadlineOn(day, rome)
		if got := d.In(rome); got.Format("02/01/2006 15:04:05") != day.Format("02/01/2006")+" 23:59:59" {
			t.Errorf("deadline of %s: %s", day.Format("02/01/2006"), got)
		}
	}
}

// TestCampaignDueOrder: a comune is due a reminder once the interval has
// passed since its last notice, overdue after the deadline (before any
// reminder), and nothing once confirmed, overdue, without recipients (no
// reminder) or in a closed campaign.
func TestCampaignDueOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC)
	c := &store.Campaign{State: store.CampaignOpen, Start: t0, Deadline: t0.AddDate(0, 0, 30), ReminderEvery: 7 * 24 * time.Hour}
	cc := func(mod func(*store.CampaignComune)) *store.CampaignComune {
		x := &store.CampaignComune{Notified: t0, LastSent: t0, Recipients: 2}
		if mod != nil {
			mod(x)
		}
		return x
	}
	week := 7 * 24 * time.Hour
	for _, tc := range []struct {
		name string
		c    *store.Campaign
		cc   *store.CampaignComune
		at   time.Time
		want CampaignDue
	}{
		{"before the interval", c, cc(nil), t0.Add(week - time.Second), DueNothing},
		{"at the interval", c, cc(nil), t0.Add(week), DueReminder},
		{"a week after the last reminder", c, cc(func(x *store.CampaignComune) { x.Reminders, x.LastSent = 1, t0.Add(week) }), t0.Add(2*week - time.Minute), DueNothing},
		{"confirmed", c, cc(func(x *store.CampaignComune) { x.Confirmed = t0.Add(time.Hour) }), t0.Add(2 * week), DueNothing},
		{"no recipient", c, cc(func(x *store.CampaignComune) { x.Recipients = 0 }), t0.Add(2 * week), DueNothing},
		{"past the deadline", c, cc(nil), c.Deadline.Add(time.Second), DueOverdue},
		{"at the deadline", c, cc(nil), c.Deadline, DueReminder},
		{"no recipient, past the deadline", c, cc(func(x *store.CampaignComune) { x.Recipients = 0 }), c.Deadline.Add(time.Second), DueOverdue},
		{"overdue already", c, cc(func(x *store.CampaignComune) { x.Overdue = c.Deadline.Add(time.Hour) }), c.Deadline.Add(48 * time.Hour), DueNothing},
		{"closed", &store.Campaign{State: store.CampaignClosed, Deadline: c.Deadline, ReminderEvery: week}, cc(nil), c.Deadline.Add(time.Second), DueNothing},
		{"no reminders configured", &store.Campaign{State: store.CampaignOpen, Deadline: c.Deadline}, cc(nil), t0.Add(2 * week), DueNothing},
	} {
		if got := DueAt(tc.c, tc.cc, tc.at); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
