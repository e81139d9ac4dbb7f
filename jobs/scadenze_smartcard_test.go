package jobs

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/mail/smtptest"
	"anprsec/secret"
	"anprsec/store"
)

// newMovingClockEnv is newCertEnv with a store whose clock is *now, which
// the test moves.
func newMovingClockEnv(t *testing.T, now *time.Time) *certEnv {
	t.Helper()
	c := newCertEnv(t)
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{1}, secret.KeySize), Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.env.Store = st
	return c
}

func (c *certEnv) history(action string) []store.Entry {
	c.t.Helper()
	es, err := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == action })
	if err != nil {
		c.t.Fatal(err)
	}
	return es
}

// TestCardPastItsExpiryBecomesScaduta: the comune's only ALS card expires
// in 30 days: scadenze warns the comune (its ASC and ALS) once that its
// last ALS card is expiring; once the day has passed, the card is SCADUTA
// with a history entry, the comune no longer counts an ALS with an active
// card, and a second run changes nothing (docs/rules.md#expiry).
func TestCardPastItsExpiryBecomesScaduta(t *testing.T) {
	rome, _ := time.LoadLocation("Europe/Rome")
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, rome)
	c := newMovingClockEnv(t, &now)
	serials, _ := c.orderedCards()
	c.activate(serials...)
	const als = "SC0000000002" // cfALS's card
	err := c.env.Store.Update(func(tx *store.Tx) error {
		sc, err := tx.Card(als)
		if err != nil {
			return err
		}
		sc.Expires = now.AddDate(0, 0, 30)
		return tx.PutCard(sc)
	})
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		counts, err := c.run(scadenzeJob)
		if err != nil {
			t.Fatal(err)
		}
		if want := 2 - run; min(counts["avvisi_ultima_smartcard"], 1) != want {
			t.Errorf("run %d: counts %v, want last-card warnings: %v", run, counts, want == 1)
		}
	}
	es := c.history("comune.avviso-ultima-smartcard")
	if len(es) != 1 || es[0].Key != "058091" || !strings.Contains(es[0].Detail, "ALS ("+als+")") {
		t.Errorf("last-card warning history: %+v", es)
	}
	var ids []string
	c.env.Store.View(func(tx *store.Tx) error {
		ids, _ = tx.MailsInState(store.MailQueued)
		return nil
	})
	warned := 0
	for _, id := range ids {
		if strings.HasPrefix(id, "ultima-sc/058091/ALS/"+als+"/") {
			warned++
		}
	}
	if warned == 0 {
		t.Errorf("no last-card message queued: %v", ids)
	}

	now = now.AddDate(0, 0, 31)
	for run := 1; run <= 2; run++ {
		counts, err := c.run(scadenzeJob)
		if err != nil {
			t.Fatal(err)
		}
		if want := 2 - run; counts["smartcard_scadute"] != want {
			t.Errorf("run %d after the expiry: counts %v, want %d card expired", run, counts, want)
		}
	}
	cards := c.cards()
	if cards[als].State != domain.CardScaduta || cards["SC0000000001"].State != domain.CardAttiva {
		t.Errorf("after the expiry: ALS card %s, ASC card %s", cards[als].State, cards["SC0000000001"].State)
	}
	if es := c.history("smartcard.scade"); len(es) != 1 || es[0].Key != als || es[0].Actor != ScadenzeActor {
		t.Errorf("expiry history: %+v", es)
	}
	c.env.Store.View(func(tx *store.Tx) error {
		if has, err := lifecycle.HasActiveALS(tx, "058091"); has || err != nil {
			t.Errorf("the expired card still counts as the comune's ALS (%v)", err)
		}
		return nil
	})
}

// TestLateCardsCountWorkingDaysAndAreMailedOnce: cards ordered on Monday
// 22/12/2025 with cards.late_working_days 8 are not late on 05/01/2026 (7
// working days: 25 and 26/12 and 1/1 are holidays) nor on 07/01 (6/1 is a
// holiday: 8), and are on 08/01; the back-office gets one signed and
// encrypted message naming them, and a second run sends nothing more.
func TestLateCardsCountWorkingDaysAndAreMailedOnce(t *testing.T) {
	rome, _ := time.LoadLocation("Europe/Rome")
	now := time.Date(2025, 12, 22, 16, 0, 0, 0, rome)
	c := newMovingClockEnv(t, &now)
	serials, _ := c.orderedCards()
	srv := smtptest.Start(t)
	cfg := c.env.Config
	cfg.Mail.SMTP.Address, cfg.Mail.SMTP.TLS = srv.Addr, "none"
	cfg.Cards.LateWorkingDays = 8
	cfg.Notify.Backoffice = "backoffice@example.it"
	for _, step := range []struct {
		day  time.Time
		late int
	}{
		{time.Date(2026, 1, 5, 9, 0, 0, 0, rome), 0},
		{time.Date(2026, 1, 7, 9, 0, 0, 0, rome), 0},
		{time.Date(2026, 1, 8, 9, 0, 0, 0, rome), len(serials)},
		{time.Date(2026, 1, 9, 9, 0, 0, 0, rome), len(serials)},
	} {
		now = step.day
		counts, err := c.run(scadenzeJob)
		if err != nil {
			t.Fatal(err)
		}
		if counts["smartcard_in_ritardo"] != step.late {
			t.Errorf("%s: counts %v, want %d late", now.Format("02/01"), counts, step.late)
		}
		if _, err := c.run(invioJob); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "backoffice@example.it" {
		t.Fatalf("%d messages, want one to the back-office: %+v", len(msgs), msgs)
	}
	hdr, text := c.openPIN(msgs[0].Data, filepath.Join(c.env.Config.Dir, "keys", "gateway.sec.asc"))
	for _, s := range serials {
		if !strings.Contains(text, s) {
			t.Errorf("the message does not name %s:\n%s", s, text)
		}
	}
	if !strings.Contains(hdr.Get("Subject"), "ritardo") {
		t.Errorf("subject %q", hdr.Get("Subject"))
	}
	if es := c.history("smartcard.ritardo"); len(es) != len(serials) {
		t.Errorf("%d smartcard.ritardo entries, want %d", len(es), len(serials))
	}
}
