package store

import (
	"errors"
	"strings"
	"time"
)

// Key layout of the security notice campaigns
// (docs/rules.md#security-notice-campaign):
//
//	av/<id>              campaign                   i/av-open/<id> until closed
//	avc/<id>/<istat>     a comune of a campaign     (its notices, reminders, confirmation)
//	avl/<id>/<istat>     the comune's user list as of its notice (xlsx and CSV)
//
// A comune's record, its list and the notices queued for it in the outbox
// are written in one transaction, so a notice is queued once.

// CampaignState is the state of a security notice campaign.
type CampaignState string

// States of a campaign.
const (
	CampaignOpening CampaignState = "in apertura" // comuni still to be notified
	CampaignOpen    CampaignState = "aperta"      // every comune notified; reminders until the deadline
	CampaignClosed  CampaignState = "chiusa"      // closed by the back-office: no more reminders
)

// Campaign is one security notice campaign.
type Campaign struct {
	ID            string        `json:"id"`
	State         CampaignState `json:"state"`
	Extraordinary bool          `json:"extraordinary,omitempty"`
	Subject       string        `json:"subject"`
	Text          string        `json:"text"` // the template of the notice (config avvisi.text)
	Start         time.Time     `json:"start"`
	Deadline      time.Time     `json:"deadline"` // the last instant of the deadline day
	ReminderEvery time.Duration `json:"reminder_every"`
	Comuni        []string      `json:"comuni"` // the comuni to notify, fixed at the start
	By            string        `json:"by"`     // who started it (job or back-office operator)
	Opened        time.Time     `json:"opened,omitempty"`
	Closed        time.Time     `json:"closed,omitempty"`
	ClosedBy      string        `json:"closed_by,omitempty"`
	// OverdueMails counts the back-office messages of overdue comuni
	// queued so far (their outbox IDs are numbered with it).
	OverdueMails int `json:"overdue_mails,omitempty"`
}

// CampaignComune is one comune of a campaign.
type CampaignComune struct {
	Campaign    string    `json:"campaign"`
	ISTAT       string    `json:"istat"`
	Name        string    `json:"name"`
	Notified    time.Time `json:"notified"`               // its notices were queued (its list taken)
	Recipients  int       `json:"recipients"`             // ALS and ASC written to by the notice
	Mails       []string  `json:"mails,omitempty"`        // outbox IDs of its notices and reminders
	Reminders   int       `json:"reminders,omitempty"`    // reminders queued
	LastSent    time.Time `json:"last_sent,omitempty"`    // when the last notice or reminder was queued
	Confirmed   time.Time `json:"confirmed,omitempty"`    // CONFERMA_VERIFICA received
	ConfirmedBy string    `json:"confirmed_by,omitempty"` // the operator's codice fiscale
	Note        string    `json:"note,omitempty"`
	Overdue     time.Time `json:"overdue,omitempty"` // the deadline passed without a confirmation
}

// CampaignList is a comune's user list as attached to its notices.
type CampaignList struct {
	XLSXName string `json:"xlsx_name"`
	XLSX     []byte `json:"xlsx"`
	CSVName  string `json:"csv_name"`
	CSV      []byte `json:"csv"`
}

func campaignIndexes(c *Campaign) []string {
	if c.State != CampaignClosed {
		return []string{"i/av-open/" + c.ID}
	}
	return nil
}

// Campaign returns a campaign by ID.
func (tx *Tx) Campaign(id string) (*Campaign, error) {
	var c Campaign
	return &c, tx.get("av/"+id, &c)
}

// PutCampaign stores a campaign and keeps the index of the open ones.
func (tx *Tx) PutCampaign(c *Campaign) error {
	var old []string
	if prev, err := tx.Campaign(c.ID); err == nil {
		old = campaignIndexes(prev)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.setIndexes(old, campaignIndexes(c)); err != nil {
		return err
	}
	return tx.set("av/"+c.ID, c)
}

// CampaignExists reports whether a campaign with id exists.
func (tx *Tx) CampaignExists(id string) (bool, error) { return tx.exists("av/" + id) }

// OpenCampaigns returns the IDs of the campaigns not closed, in ID order.
func (tx *Tx) OpenCampaigns() ([]string, error) { return tx.indexTail("i/av-open/") }

// Campaigns calls fn for each campaign in ID order.
func (tx *Tx) Campaigns(fn func(*Campaign) error) error {
	return tx.scan("av/", true, func(k string, v []byte) (bool, error) {
		var c Campaign
		if err := decode(k, v, &c); err != nil {
			return false, err
		}
		return true, fn(&c)
	})
}

// CampaignComune returns the record of comune istat in campaign id.
func (tx *Tx) CampaignComune(id, istat string) (*CampaignComune, error) {
	var c CampaignComune
	return &c, tx.get("avc/"+id+"/"+istat, &c)
}

// PutCampaignComune stores the record of a comune of a campaign.
func (tx *Tx) PutCampaignComune(c *CampaignComune) error {
	return tx.set("avc/"+c.Campaign+"/"+c.ISTAT, c)
}

// CampaignComuni calls fn for each notified comune of campaign id, in
// ISTAT order.
func (tx *Tx) CampaignComuni(id string, fn func(*CampaignComune) error) error {
	return tx.scan("avc/"+id+"/", true, func(k string, v []byte) (bool, error) {
		var c CampaignComune
		if err := decode(k, v, &c); err != nil {
			return false, err
		}
		return true, fn(&c)
	})
}

// CampaignList returns the user list attached to the notices of comune
// istat in campaign id.
func (tx *Tx) CampaignList(id, istat string) (*CampaignList, error) {
	var l CampaignList
	return &l, tx.get("avl/"+id+"/"+istat, &l)
}

// PutCampaignList stores the user list of comune istat in campaign id.
func (tx *Tx) PutCampaignList(id, istat string, l *CampaignList) error {
	return tx.set("avl/"+id+"/"+istat, l)
}

// CampaignFigures are the figures of one campaign.
type CampaignFigures struct {
	Comuni        int // comuni of the campaign
	Notified      int // comuni whose notices were queued
	NoRecipient   int // notified comuni without an ALS or ASC with an e-mail
	Confirmed     int
	Reminded      int // comuni reminded at least once
	Overdue       int // past the deadline without a confirmation
	MailsSent     int
	MailsQueued   int
	MailsFailed   int
	FailedComuni  []string       // comuni with a failed message, in ISTAT order
	FailedBy      map[string]int // failed messages by comune (ISTAT)
	ConfirmedList []*CampaignComune
}

// CampaignFiguresOf counts the comuni and the messages of campaign c.
func (tx *Tx) CampaignFiguresOf(c *Campaign) (*CampaignFigures, error) {
	f := &CampaignFigures{Comuni: len(c.Comuni), FailedBy: map[string]int{}}
	err := tx.CampaignComuni(c.ID, func(cc *CampaignComune) error {
		f.Notified++
		if cc.Recipients == 0 {
			f.NoRecipient++
		}
		if !cc.Confirmed.IsZero() {
			f.Confirmed++
			f.ConfirmedList = append(f.ConfirmedList, cc)
		}
		if cc.Reminders > 0 {
			f.Reminded++
		}
		if !cc.Overdue.IsZero() && cc.Confirmed.IsZero() {
			f.Overdue++
		}
		failed := false
		for _, id := range cc.Mails {
			m, err := tx.Mail(id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			switch m.State {
			case MailSent:
				f.MailsSent++
			case MailQueued:
				f.MailsQueued++
			case MailFailed:
				f.MailsFailed++
				f.FailedBy[cc.ISTAT]++
				failed = true
			}
		}
		if failed {
			f.FailedComuni = append(f.FailedComuni, cc.ISTAT)
		}
		return nil
	})
	return f, err
}

// CampaignIDOK reports whether s can be a campaign ID: letters, digits and
// dashes, at most 40 characters (it goes into outbox IDs and Message-IDs).
func CampaignIDOK(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == ""
}
