package ops

import (
	"testing"
	"time"

	"anprsec/store"
)

// TestMetricsShowEachOpenCampaign: /metrics shows, per campaign not
// closed, the comuni notified, confirmed, reminded, overdue and without
// recipient, and its messages by state; a closed campaign is not shown.
func TestMetricsShowEachOpenCampaign(t *testing.T) {
	st := openStore(t)
	now := t0
	s := newServer(t, st, &now, t0.Add(-time.Hour))
	err := st.Update(func(tx *store.Tx) error {
		for _, c := range []*store.Campaign{
			{ID: "AVV-20260115", State: store.CampaignOpen, Comuni: []string{"058091", "015146", "001272"}},
			{ID: "AVV-20250715", State: store.CampaignClosed, Comuni: []string{"058091"}},
		} {
			if err := tx.PutCampaign(c); err != nil {
				return err
			}
		}
		mails := []struct {
			id string
			st store.MailState
		}{{"m/a0", store.MailSent}, {"m/a1", store.MailSent}, {"m/b0", store.MailFailed}, {"m/b1", store.MailQueued}}
		for _, m := range mails {
			if err := tx.PutMail(&store.Mail{ID: m.id, Kind: store.MailAvviso, State: m.st}); err != nil {
				return err
			}
		}
		for _, cc := range []*store.CampaignComune{
			{Campaign: "AVV-20260115", ISTAT: "058091", Recipients: 1, Mails: []string{"m/a0", "m/a1"}, Reminders: 1, Confirmed: t0, ConfirmedBy: "X"},
			{Campaign: "AVV-20260115", ISTAT: "015146", Recipients: 1, Mails: []string{"m/b0", "m/b1"}, Reminders: 1, Overdue: t0},
			{Campaign: "AVV-20260115", ISTAT: "001272"},
			{Campaign: "AVV-20250715", ISTAT: "058091", Recipients: 1},
		} {
			if err := tx.PutCampaignComune(cc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, s.Handler())
	for _, tc := range []struct {
		name, state string
		want        float64
	}{
		{"anprsec_notice_campaign_comuni", "notified", 3},
		{"anprsec_notice_campaign_comuni", "confirmed", 1},
		{"anprsec_notice_campaign_comuni", "reminded", 2},
		{"anprsec_notice_campaign_comuni", "overdue", 1},
		{"anprsec_notice_campaign_comuni", "no_recipient", 1},
		{"anprsec_notice_campaign_mails", "sent", 2},
		{"anprsec_notice_campaign_mails", "queued", 1},
		{"anprsec_notice_campaign_mails", "failed", 1},
	} {
		if got, ok := value(fams, tc.name, "campaign=AVV-20260115", "state="+tc.state); !ok || got != tc.want {
			t.Errorf("%s{%s} = %v (present %v), want %v", tc.name, tc.state, got, ok, tc.want)
		}
	}
	if _, ok := value(fams, "anprsec_notice_campaign_comuni", "campaign=AVV-20250715", "state=notified"); ok {
		t.Error("a closed campaign in /metrics")
	}
}
