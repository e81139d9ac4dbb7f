package jobs

import (
	"bytes"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/secret"
	"anprsec/store"
)

// newClockedCertEnv is newCertEnv with a store whose clock is now: the
// transactions' tx.Now, which the jobs compare dates with.
func newClockedCertEnv(t *testing.T, now time.Time) *certEnv {
	t.Helper()
	c := newCertEnv(t)
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{1}, secret.KeySize), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.env.Store = st
	return c
}

// TestReview3ConsegnaTomorrowIsFuture: a delivery manifest dated tomorrow
// is a date in the future, whatever the hour the job reads it.
//
// SPEC.md (README, "ingest-consegne"): "A row is refused (with its reason
// in the receipt and the history) when ... the date in the future".
//
// ingest/consegne/consegne.go compares the day at noon with now + 1 day,
// so from noon on a manifest dated tomorrow is accepted and the card
// becomes CONSEGNATA DALLA PREFETTURA (or, for the sindaco, ATTIVA with his
// second halves e-mailed) on a day that has not come yet.
func TestReview3ConsegnaTomorrowIsFuture(t *testing.T) {
	rome, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, rome) // an afternoon; "tomorrow" is 26/11/2026
	c := newClockedCertEnv(t, now)
	c.orderedCards()
	c.drop("prefetture/058/consegne/domani.csv", manifestHeader+
		"058091;SC0000000002;"+cfALS+";26/11/2026;"+cfASC+"\n") // 2: dated tomorrow
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	got := c.receipt("prefetture/058/consegne/esiti/domani.csv.esito.csv")
	if g := got["2"]; len(g) < 2 || g[0] != "SCARTATO" || g[1] != "DATA_FUTURA" {
		t.Errorf("row 2 dated 26/11/2026, read on 25/11/2026 at 15:00: receipt %q, want SCARTATO DATA_FUTURA", g)
	}
	if s := c.cards()["SC0000000002"]; s.State != domain.CardProduzione {
		t.Errorf("card SC0000000002 is %s after a delivery dated tomorrow, want it still %s", s.State, domain.CardProduzione)
	}
}
