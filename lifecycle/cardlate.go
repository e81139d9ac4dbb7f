package lifecycle

import (
	"sort"
	"time"

	"anprsec/domain"
	"anprsec/store"
	"anprsec/workdays"
)

// LateRule says when a card is late in production
// (docs/rules.md#card-lifecycle): a card reaches the prefettura in about
// ten working days, so one IN PRODUZIONE for more than Days working days
// of Calendar, counted in Loc from the day it was ordered, is late.
type LateRule struct {
	Days     int
	Calendar *workdays.Calendar
	Loc      *time.Location
}

// Late reports whether card c is late at now, and the working days it has
// been IN PRODUZIONE. A zero rule finds nothing late.
func (r LateRule) Late(c *domain.SmartCard, now time.Time) (bool, int) {
	if r.Days <= 0 || c.State != domain.CardProduzione || c.Ordered.IsZero() {
		return false, 0
	}
	loc := r.Loc
	if loc == nil {
		loc = time.UTC
	}
	n := r.Calendar.Between(c.Ordered, now, loc)
	return n > r.Days, n
}

// LateCard is a card late in production, without its holder's codice
// fiscale (it is shown by `anprsec status` and /status).
type LateCard struct {
	Serial      string    `json:"serial"`
	ISTAT       string    `json:"istat"` // the home comune, whose prefettura receives it
	Ordered     time.Time `json:"ordered"`
	WorkingDays int       `json:"working_days"`
	// Notified is when the back-office was e-mailed (zero: not yet).
	Notified time.Time `json:"notified,omitzero"`
}

// LateCards lists the cards late at now, oldest order first.
func LateCards(tx *store.Tx, r LateRule, now time.Time) ([]LateCard, error) {
	out := []LateCard{}
	if r.Days <= 0 {
		return out, nil
	}
	err := tx.EachCardIn([]domain.CardState{domain.CardProduzione}, func(c *domain.SmartCard) error {
		if late, n := r.Late(c, now); late {
			out = append(out, LateCard{Serial: c.Serial, ISTAT: c.ISTAT, Ordered: c.Ordered, WorkingDays: n, Notified: c.LateNotified})
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Ordered.Equal(out[j].Ordered) {
			return out[i].Ordered.Before(out[j].Ordered)
		}
		return out[i].Serial < out[j].Serial
	})
	return out, err
}
