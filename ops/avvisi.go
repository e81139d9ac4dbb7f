package ops

import (
	"github.com/prometheus/client_golang/prometheus"

	"anprsec/store"
)

var (
	descCampaignComuni = prometheus.NewDesc("anprsec_notice_campaign_comuni",
		"Comuni of each security notice campaign not closed, by state: notified, confirmed, reminded (at least once), overdue, no_recipient (docs/rules.md#security-notice-campaign).",
		[]string{"campaign", "state"}, nil)
	descCampaignMails = prometheus.NewDesc("anprsec_notice_campaign_mails",
		"Notices and reminders of each security notice campaign not closed, by state: sent, queued, failed.",
		[]string{"campaign", "state"}, nil)
)

// campaignCollector reads the figures of the campaigns not closed at
// scrape time, in one read transaction (closed ones stay in `anprsec
// avvisi stato` and the national workbook).
type campaignCollector struct{ s *Server }

func (c campaignCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCampaignComuni
	ch <- descCampaignMails
}

func (c campaignCollector) Collect(ch chan<- prometheus.Metric) {
	type fig struct {
		id string
		f  *store.CampaignFigures
	}
	var figs []fig
	err := c.s.o.Store.View(func(tx *store.Tx) error {
		ids, err := tx.OpenCampaigns()
		if err != nil {
			return err
		}
		for _, id := range ids {
			camp, err := tx.Campaign(id)
			if err != nil {
				return err
			}
			f, err := tx.CampaignFiguresOf(camp)
			if err != nil {
				return err
			}
			figs = append(figs, fig{id, f})
		}
		return nil
	})
	if err != nil {
		c.s.o.Log.Warn("metrics: cannot read the notice campaigns", "err", err)
		return
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, g := range figs {
		f := g.f
		gauge(descCampaignComuni, f.Notified, g.id, "notified")
		gauge(descCampaignComuni, f.Confirmed, g.id, "confirmed")
		gauge(descCampaignComuni, f.Reminded, g.id, "reminded")
		gauge(descCampaignComuni, f.Overdue, g.id, "overdue")
		gauge(descCampaignComuni, f.NoRecipient, g.id, "no_recipient")
		gauge(descCampaignMails, f.MailsSent, g.id, "sent")
		gauge(descCampaignMails, f.MailsQueued, g.id, "queued")
		gauge(descCampaignMails, f.MailsFailed, g.id, "failed")
	}
}
