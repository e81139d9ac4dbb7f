package e2e

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/lifecycle"
	"anprsec/store"
)

// TestKillDuringNoticeCampaign: kill -9 during a security notice campaign
// never sends a notice twice (docs/rules.md#security-notice-campaign).
//
// A census of 150 comuni; avviso-sicurezza (building each comune's list
// and queuing its notices) is killed at random moments, then run to the
// end: one campaign, every comune notified once, one outbox message per
// ALS and ASC with an e-mail, each with its own ID. Then invio-pin (to
// the spool, whose files are named by Message-ID) is killed at random
// moments and run to the end: one .eml per notice, every message sent.
func TestKillDuringNoticeCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and notifies 150 comuni")
	}
	bin := binary(t)
	base := t.TempDir()
	gen := &workdir{t: t, bin: bin, dir: base}
	wbPath := filepath.Join(base, "big.xlsx")
	gen.run("gen", "censimento", "--comuni", "150", "--users", "1200", "-o", wbPath)
	workbook, err := os.ReadFile(wbPath)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkdir(t, bin, filepath.Join(base, "w"), workbook)
	w.run("jobs", "run", "ingest-censimento")
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	t.Logf("kill delays drawn with seed %d", seed)

	aim := 1500 * time.Millisecond
	for i := 0; i < 8; i++ {
		d := time.Duration(float64(aim) * (0.1 + 0.9*rng.Float64()))
		killed, ran, _ := w.killCmdWithin(d, "jobs", "run", "avviso-sicurezza")
		if !killed {
			aim = min(aim, ran)
		}
		state, notified := w.campaignState()
		t.Logf("avviso-sicurezza kill %d after %v (hit: %v): campaign %q, %d comuni notified", i+1, d.Round(time.Millisecond), killed, state, notified)
		if state == store.CampaignOpen {
			break
		}
	}
	w.run("jobs", "run", "avviso-sicurezza")
	want := w.checkCampaign(t)

	// The aim grows while kills land before the first message leaves (the
	// start-up: store, keys) and shrinks to a run that ended on its own.
	hits, aim := 0, 250*time.Millisecond
	for i := 0; i < 8 && w.mails(store.MailQueued) > 0; i++ {
		d := time.Duration(float64(aim) * (0.1 + 0.9*rng.Float64()))
		before := w.mails(store.MailSent)
		killed, ran, _ := w.killCmdWithin(d, "jobs", "run", "invio-pin")
		switch {
		case !killed:
			aim = min(aim, ran)
		case w.mails(store.MailSent) == before:
			hits++
			aim = min(2*aim, 10*time.Second)
		default:
			hits++
		}
		t.Logf("invio-pin kill %d after %v (hit: %v): %d sent, %d queued", i+1, d, killed, w.mails(store.MailSent), w.mails(store.MailQueued))
	}
	for i := 0; w.mails(store.MailQueued) > 0; i++ {
		if i == 10 {
			t.Fatal("messages still queued after 10 runs")
		}
		w.run("jobs", "run", "invio-pin")
	}
	emls, err := filepath.Glob(w.path("var/mail/avviso-sicurezza*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(emls) != want || w.mails(store.MailSent) != want {
		t.Errorf("%d .eml files of notices, %d messages sent, want %d", len(emls), w.mails(store.MailSent), want)
	}
	ids := map[string]bool{}
	for _, f := range emls {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := bytes.Cut(raw, []byte("Message-ID: "))
		id, _, _ := bytes.Cut(rest, []byte("\r\n"))
		if ids[string(id)] {
			t.Errorf("Message-ID %s in two files", id)
		}
		ids[string(id)] = true
	}
}

// campaignState reads the state of the one campaign and how many comuni
// it notified ("" when none started).
func (w *workdir) campaignState() (store.CampaignState, int) {
	w.t.Helper()
	st := w.openStore(false)
	defer st.Close()
	var state store.CampaignState
	n := 0
	if err := st.View(func(tx *store.Tx) error {
		return tx.Campaigns(func(c *store.Campaign) error {
			state = c.State
			return tx.CampaignComuni(c.ID, func(*store.CampaignComune) error { n++; return nil })
		})
	}); err != nil {
		w.t.Fatal(err)
	}
	return state, n
}

// checkCampaign checks that there is one open campaign, every comune of
// it notified once with one message per ALS and ASC with an e-mail, and
// no other notice in the outbox; it returns the number of notices.
func (w *workdir) checkCampaign(t *testing.T) int {
	t.Helper()
	st := w.openStore(false)
	defer st.Close()
	total := 0
	err := st.View(func(tx *store.Tx) error {
		var camps []*store.Campaign
		if err := tx.Campaigns(func(c *store.Campaign) error { camps = append(camps, c); return nil }); err != nil {
			return err
		}
		if len(camps) != 1 || camps[0].State != store.CampaignOpen {
			t.Fatalf("%d campaigns, want 1 open: %+v", len(camps), camps)
		}
		c := camps[0]
		seen := map[string]bool{}
		err := tx.CampaignComuni(c.ID, func(cc *store.CampaignComune) error {
			seen[cc.ISTAT] = true
			us, err := lifecycle.NoticeRecipients(tx, cc.ISTAT)
			if err != nil {
				return err
			}
			ids := map[string]bool{}
			for _, id := range cc.Mails {
				ids[id] = true
			}
			if len(cc.Mails) != len(us) || len(ids) != len(us) || cc.Recipients != len(us) {
				t.Errorf("comune %s: %d messages (%d distinct), %d recipients", cc.ISTAT, len(cc.Mails), len(ids), len(us))
			}
			total += len(us)
			return nil
		})
		if err != nil {
			return err
		}
		if len(seen) != len(c.Comuni) {
			t.Errorf("%d of %d comuni notified", len(seen), len(c.Comuni))
		}
		n := 0
		for _, state := range []store.MailState{store.MailQueued, store.MailSent, store.MailFailed} {
			ids, err := tx.MailsInState(state)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if strings.HasPrefix(id, "avviso-sicurezza/") {
					n++
				}
			}
		}
		if n != total {
			t.Errorf("%d notices in the outbox, want %d", n, total)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 {
		t.Fatal("no recipient in the census")
	}
	return total
}
