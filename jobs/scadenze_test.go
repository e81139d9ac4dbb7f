package jobs

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/mail/smtptest"
	"anprsec/store"
)

// TestScadenze: after a batch, one certificate is past its validity (ATTIVO),
// one blocked one too, one expires in 10 days and one in a year; a card
// expires in 30 days. The job marks the two expired ones SCADUTO with a
// history entry, and the comune's report lists the certificate and the card
// in the window, not the others. A second run the same day changes nothing
// and rewrites the same report.
func TestScadenze(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	st := c.env.Store
	now := time.Now().UTC()
	var card string
	err := st.Update(func(tx *store.Tx) error {
		set := func(code string, state domain.CertState, notAfter time.Time) {
			p, err := tx.Postazione(code)
			if err != nil {
				t.Fatal(err)
			}
			p.State, p.NotAfter = state, notAfter
			if err := tx.PutPostazione(p); err != nil {
				t.Fatal(err)
			}
		}
		set("058091-PC-0001", domain.CertAttivo, now.Add(-time.Hour))
		set("058091-PC-0002", domain.CertBloccato, now.Add(-48*time.Hour))
		set("058091-PC-0003", domain.CertAttivo, now.Add(10*24*time.Hour))
		set("058091-CO-9999", domain.CertAttivo, now.Add(365*24*time.Hour))
		serials, err := tx.CardsInState(domain.CardRichiesta)
		if err != nil || len(serials) < 2 {
			t.Fatalf("cards: %v %v", serials, err)
		}
		for i, s := range serials[:2] {
			sc, err := tx.Card(s)
			if err != nil {
				t.Fatal(err)
			}
			sc.Expires = now.Add(30 * 24 * time.Hour)
			if i == 1 {
				sc.Expires = now.Add(90 * 24 * time.Hour)
			}
			if err := tx.PutCard(sc); err != nil {
				t.Fatal(err)
			}
		}
		card = serials[0]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for round := 1; round <= 2; round++ {
		counts, err := c.run(scadenzeJob)
		if err != nil {
			t.Fatal(err)
		}
		wantExpired := 2
		if round == 2 {
			wantExpired = 0
		}
		if counts["scaduti"] != wantExpired || counts["report"] != 1 || counts["righe"] != 2 {
			t.Errorf("round %d: counts %v", round, counts)
		}
		// The ALP is warned once of PC-0003 (10 days: threshold 30).
		if want := 2 - round; counts["avvisi_certificati"] != want {
			t.Errorf("round %d: %d warnings queued, want %d", round, counts["avvisi_certificati"], want)
		}
		ps := c.postazioni()
		for code, want := range map[string]domain.CertState{
			"058091-PC-0001": domain.CertScaduto, "058091-PC-0002": domain.CertScaduto,
			"058091-PC-0003": domain.CertAttivo, "058091-CO-9999": domain.CertAttivo,
		} {
			if ps[code].State != want {
				t.Errorf("round %d: %s is %s, want %s", round, code, ps[code].State, want)
			}
		}
		if ps["058091-PC-0002"].PrevState != domain.CertBloccato || !ps["058091-PC-0002"].HoldSince.IsZero() {
			t.Errorf("expired blocked certificate: prev %q, hold %v", ps["058091-PC-0002"].PrevState, ps["058091-PC-0002"].HoldSince)
		}
	}
	hist, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.scade" })
	if err != nil || len(hist) != 2 || hist[0].Actor != ScadenzeActor {
		t.Errorf("history: %+v %v", hist, err)
	}

	name := filepath.Join(c.root, filepath.FromSlash(ScadenzeReportName("058091", now.In(c.env.Loc))))
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "\ufeffTipo;Codice;") {
		t.Errorf("report does not start with BOM and header: %q", data[:min(40, len(data))])
	}
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(data), "\ufeff")))
	cr.Comma = ';'
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("report has %d lines, want header + 2:\n%s", len(recs), data)
	}
	// Sorted by expiry: the certificate in 10 days, then the card in 30.
	if recs[1][0] != "certificato" || recs[1][1] != "058091-PC-0003" || recs[1][3] != "ATTIVO" || recs[1][5] != "10" {
		t.Errorf("line 1: %q", recs[1])
	}
	if recs[2][0] != "smart card" || recs[2][1] != card || recs[2][5] != "30" || !strings.Contains(recs[2][2], "(") {
		t.Errorf("line 2: %q", recs[2])
	}
	if recs[1][4] != now.Add(10*24*time.Hour).In(c.env.Loc).Format("02/01/2006") {
		t.Errorf("expiry date %q", recs[1][4])
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(name), "*"))
	if len(left) != 1 {
		t.Errorf("report folder holds %v, want the report alone", left)
	}
}

// TestScadenzeWarnings: the ALPs are e-mailed when a certificate crosses
// 60, 30 and 7 days before expiry, once per threshold; the ALS when a card
// does; invio-pin sends the notices, encrypted and signed.
func TestScadenzeWarnings(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	srv := smtptest.Start(t)
	c.env.Config.Mail.SMTP.Address, c.env.Config.Mail.SMTP.TLS = srv.Addr, "none"
	// The comune's first certificate goes to the sindaco first
	// (docs/rules.md#the-first-certificate); the warnings come after.
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 1 {
		t.Fatalf("first certificate: %v %v", counts, err)
	}
	srv.Reset()
	// The card is the comune's only usable ASC card: the warning of the
	// last card (TestLastUsableCardOfAProfileIsWarned) is left out here.
	c.env.Config.Cards.LastCardWarningDays = 1
	setExpiry := func(days float64) {
		c.env.Store.Update(func(tx *store.Tx) error {
			p, _ := tx.Postazione("058091-PC-0001")
			p.NotAfter = time.Now().Add(time.Duration(days * 24 * float64(time.Hour)))
			tx.PutPostazione(p)
			sc, _ := tx.Card("SC0000000001")
			sc.State, sc.Expires = domain.CardAttiva, p.NotAfter
			return tx.PutCard(sc)
		})
	}
	for _, step := range []struct {
		days        float64
		certs, card int
	}{
		{90, 0, 0},   // not yet
		{59.5, 1, 1}, // 60
		{45, 0, 0},   // already warned at 60
		{29.5, 1, 1}, // 30
		{5.5, 1, 1},  // 7
		{2, 0, 0},    // nothing below 7
	} {
		setExpiry(step.days)
		counts, err := c.run(scadenzeJob)
		if err != nil {
			t.Fatal(err)
		}
		if counts["avvisi_certificati"] != step.certs || counts["avvisi_smartcard"] != step.card {
			t.Errorf("%.1f days left: counts %v, want %d certificate and %d card warnings", step.days, counts, step.certs, step.card)
		}
		if _, err := c.run(invioJob); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 6 {
		t.Fatalf("%d messages, want 6", len(msgs))
	}
	var alp, als int
	for _, m := range msgs {
		hdr, text := c.openPIN(m.Data, filepath.Join(c.env.Config.Dir, "keys", "gateway.sec.asc"))
		switch {
		case m.To[0] == "maria.martini@example.it" && strings.Contains(text, "058091-PC-0001") && hdr.Get("Subject") == "ANPR - certificati in scadenza":
			alp++
		case m.To[0] == "fabio.cucco@example.it" && strings.Contains(text, "SC0000000001") && hdr.Get("Subject") == "ANPR - smart card in scadenza":
			als++
		default:
			t.Errorf("unexpected message to %v: %s\n%s", m.To, hdr.Get("Subject"), text)
		}
	}
	if alp != 3 || als != 3 {
		t.Errorf("%d warnings to the ALP, %d to the ALS; want 3 each", alp, als)
	}
}

// TestScadenzeWarningWithoutRecipient: a threshold that falls due when the
// comune has no ALP (ALS) with an e-mail is not marked warned: it is
// recorded once in the history, retried every day, and warned as soon as
// somebody can be written to.
func TestScadenzeWarningWithoutRecipient(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	c.env.Config.Cards.LastCardWarningDays = 1 // see TestScadenzeWarnings
	emails := map[string]string{}              // CF -> e-mail taken away
	err := c.env.Store.Update(func(tx *store.Tx) error {
		var us []*domain.Utenza
		if err := tx.UtenzeOfComune("058091", func(u *domain.Utenza) error {
			if u.Email != "" && (u.Has(domain.ALP) || u.Has(domain.ALS)) {
				us = append(us, u)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, u := range us {
			emails[u.CF], u.Email = u.Email, ""
			if err := tx.PutUtenza(u); err != nil {
				return err
			}
		}
		p, err := tx.Postazione("058091-PC-0001")
		if err != nil {
			return err
		}
		p.NotAfter = time.Now().Add(29*24*time.Hour + time.Hour)
		if err := tx.PutPostazione(p); err != nil {
			return err
		}
		sc, err := tx.Card("SC0000000001")
		if err != nil {
			return err
		}
		sc.State, sc.Expires = domain.CardAttiva, p.NotAfter
		return tx.PutCard(sc)
	})
	if err != nil || len(emails) == 0 {
		t.Fatalf("%v (%d e-mails taken away)", err, len(emails))
	}
	unwarned := func() []store.Entry {
		t.Helper()
		es, err := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "avviso.senza-destinatario" })
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	for run := 1; run <= 2; run++ {
		counts, err := c.run(scadenzeJob)
		if err != nil {
			t.Fatal(err)
		}
		if counts["avvisi_certificati"] != 0 || counts["avvisi_smartcard"] != 0 {
			t.Errorf("run %d: counts %v, want no warning queued", run, counts)
		}
		if es := unwarned(); len(es) != 2 {
			t.Errorf("run %d: %d avviso.senza-destinatario entries, want 2 (the certificate and the card, once)", run, len(es))
		}
		if p := c.postazioni()["058091-PC-0001"]; p.Warned != 0 || p.Unwarned != 30 {
			t.Errorf("run %d: warned %d, unwarned %d; want 0 and 30", run, p.Warned, p.Unwarned)
		}
	}
	if es := unwarned(); len(es) > 0 && !strings.Contains(es[0].Detail+es[1].Detail, "058091-PC-0001") {
		t.Errorf("the history does not name the certificate: %q, %q", es[0].Detail, es[1].Detail)
	}

	// The ALP gets her e-mail back: the next run warns her.
	err = c.env.Store.Update(func(tx *store.Tx) error {
		for cf, mail := range emails {
			u, err := tx.Utenza("058091", cf)
			if err != nil {
				return err
			}
			if u.Has(domain.ALP) && !u.Has(domain.ALS) {
				u.Email = mail
				if err := tx.PutUtenza(u); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := c.run(scadenzeJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["avvisi_certificati"] != 1 || counts["avvisi_smartcard"] != 0 {
		t.Errorf("after the ALP's e-mail is back: counts %v, want 1 certificate warning and no card warning", counts)
	}
	if p := c.postazioni()["058091-PC-0001"]; p.Warned != 30 || p.Unwarned != 0 {
		t.Errorf("warned %d, unwarned %d; want 30 and 0", p.Warned, p.Unwarned)
	}
	if es := unwarned(); len(es) != 2 {
		t.Errorf("%d avviso.senza-destinatario entries after the retry, want still 2", len(es))
	}
	if counts, _ := c.run(scadenzeJob); counts["avvisi_certificati"] != 0 {
		t.Errorf("warned twice: %v", counts)
	}
}

// TestScadenzeSecondRunSameDayWarns: every expiry notice has an outbox ID
// of its own, so a second run on the same day (jobs run scadenze, a
// restart, a certificate that crosses its threshold a few hours later)
// queues the notice about a certificate newly within its threshold: a
// certificate is marked warned only with its notice in the outbox, and the
// history does not say that no ALP could be written to
// (docs/rules.md#expiry).
func TestScadenzeSecondRunSameDayWarns(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	setNotAfter := func(code string, d time.Duration) {
		if err := c.env.Store.Update(func(tx *store.Tx) error {
			p, err := tx.Postazione(code)
			if err != nil {
				return err
			}
			p.State, p.NotAfter = domain.CertAttivo, now.Add(d)
			return tx.PutPostazione(p)
		}); err != nil {
			t.Fatal(err)
		}
	}
	setNotAfter("058091-PC-0003", 10*24*time.Hour)
	if counts, err := c.run(scadenzeJob); err != nil || counts["avvisi_certificati"] == 0 {
		t.Fatalf("first run: %v %v", counts, err)
	}
	// Later the same day another certificate is within 30 days.
	setNotAfter("058091-PC-0001", 20*24*time.Hour)
	counts, err := c.run(scadenzeJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["avvisi_certificati"] == 0 {
		t.Errorf("second run the same day: no notice queued for 058091-PC-0001 (counts %v)", counts)
	}
	found := false
	c.env.Store.View(func(tx *store.Tx) error {
		for _, st := range []store.MailState{store.MailQueued, store.MailSent} {
			ids, _ := tx.MailsInState(st)
			for _, id := range ids {
				if m, err := tx.Mail(id); err == nil && m.Kind == store.MailAvviso && strings.Contains(m.Text, "058091-PC-0001") {
					found = true
				}
			}
		}
		return nil
	})
	if !found {
		t.Errorf("no notice in the outbox mentions 058091-PC-0001, yet it is marked warned: %d", c.postazioni()["058091-PC-0001"].Warned)
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "avviso.senza-destinatario" })
	if len(hist) > 0 {
		t.Errorf("history says nobody could be warned, but the comune has an ALP with e-mail: %s", hist[0].Detail)
	}
}

// TestCardExpiryWarnsTheComuneWhereTheHolderWorks: the warning that a card
// expires goes to the ALS of the comune where its holder has an active
// utenza, not to the comune the card was requested through once his utenza
// there is cancelled (CANCELLA_UTENTE with utenze elsewhere keeps the card,
// docs/rules.md#utenza-lifecycle): the ALS of a comune the person left gets
// no name, CF or serial of his, and the ALS who can act (NUOVA_SC comes
// from the comune where he works) is warned (docs/rules.md#expiry).
func TestCardExpiryWarnsTheComuneWhereTheHolderWorks(t *testing.T) {
	c := newCertEnv(t)
	x := cfOf("SCDTTR00A01H501")
	people := append(append([]person{}, matrixPeople...), person{x, comA, []domain.Profile{domain.Operatore}, domain.UtenzaCancellata, domain.CardAttiva})
	matrixStore(t, c, people)
	var serial string
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		p, _ := tx.Person(x)
		serial = p.Card
		sc, err := tx.Card(serial)
		if err != nil {
			return err
		}
		sc.Expires = time.Now().Add(5 * 24 * time.Hour)
		if err := tx.PutCard(sc); err != nil {
			return err
		}
		return tx.PutUtenza(&domain.Utenza{ISTAT: comB, CF: x, Email: "xscade@example.it", Profiles: []domain.Profile{domain.Operatore},
			Environments: []domain.Environment{domain.Produzione}, NeedsCard: true, State: domain.UtenzaAttiva})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(scadenzeJob); err != nil {
		t.Fatal(err)
	}
	var to []string
	c.env.Store.View(func(tx *store.Tx) error {
		ids, _ := tx.MailsInState(store.MailQueued)
		for _, id := range ids {
			if m, err := tx.Mail(id); err == nil && m.Kind == store.MailAvviso && strings.Contains(m.Text, serial) {
				to = append(to, m.ISTAT+":"+m.CF)
			}
		}
		return nil
	})
	if len(to) == 0 || strings.Contains(strings.Join(to, ","), comA+":") || !strings.Contains(strings.Join(to, ","), comB+":"+opALSOther) {
		t.Errorf("warning about card %s of %s (works only in %s) sent to %v; want the ALS of %s", serial, x, comB, to, comB)
	}
}
