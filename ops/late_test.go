package ops

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/store"
	"anprsec/workdays"
)

// TestLateCardsInStatusAndMetrics: of two cards IN PRODUZIONE, the one
// ordered 3 weeks ago is late (more than 10 working days) and the one
// ordered 2 days ago is not: /metrics counts one, /status lists it without
// the holder's codice fiscale.
func TestLateCardsInStatusAndMetrics(t *testing.T) {
	st := openStore(t)
	now := t0
	err := st.Update(func(tx *store.Tx) error {
		for serial, ordered := range map[string]time.Time{"SC0000000001": t0.AddDate(0, 0, -21), "SC0000000002": t0.AddDate(0, 0, -2)} {
			if err := tx.PutCard(&domain.SmartCard{Serial: serial, CF: "RSSMRA68A01H501Y", ISTAT: "058091", State: domain.CardProduzione, Ordered: ordered}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, st, &now, t0)
	s.o.Late = lifecycle.LateRule{Days: 10, Calendar: &workdays.Calendar{}, Loc: time.UTC}
	if got, ok := value(scrape(t, s.Handler()), "anprsec_cards_late"); !ok || got != 1 {
		t.Errorf("anprsec_cards_late = %v (present %v), want 1", got, ok)
	}
	code, body := get(t, s.Handler(), "/status")
	if code != 200 || strings.Contains(body, "RSSMRA68A01H501Y") {
		t.Fatalf("/status = %d, shows the CF: %v", code, strings.Contains(body, "RSSMRA68A01H501Y"))
	}
	var got Status
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.LateCards) != 1 || got.LateCards[0].Serial != "SC0000000001" || got.LateCards[0].WorkingDays <= 10 {
		t.Errorf("late cards = %+v", got.LateCards)
	}
}
