package lifecycle

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"anprsec/domain"
	"anprsec/internal/clip"
	"anprsec/store"
)

// The security notice campaign (docs/rules.md#security-notice-campaign):
// every comune of a campaign gets a notice with its user list, to each of
// its ALS and ASC; the comune answers with CONFERMA_VERIFICA; until then a
// reminder goes out every ReminderEvery, up to the deadline; after it the
// comune is overdue. A closed campaign sends nothing more.

// maxNote bounds the Nota of a confirmation kept in the store.
const maxNote = 500

// NoticeRecipients returns the utenze of comune istat a notice goes to:
// ATTIVA, with the ALS or the ASC profile, with an e-mail; one each,
// in CF order.
func NoticeRecipients(tx *store.Tx, istat string) ([]*domain.Utenza, error) {
	var out []*domain.Utenza
	err := tx.UtenzeOfComune(istat, func(u *domain.Utenza) error {
		if u.State == domain.UtenzaAttiva && (u.Has(domain.ALS) || u.Has(domain.ASC)) && strings.TrimSpace(u.Email) != "" {
			cp := *u
			out = append(out, &cp)
		}
		return nil
	})
	return out, err
}

// DeadlineOn is the deadline of a campaign that ends on day (its date in
// loc counts): the last second of that day.
func DeadlineOn(day time.Time, loc *time.Location) time.Time {
	y, m, d := day.In(loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc).Add(-time.Second).UTC()
}

// ReminderText says in Italian how often a comune is reminded: "ogni 7
// giorni", "ogni 36h0m0s", "nessuno".
func ReminderText(every time.Duration) string {
	switch {
	case every <= 0:
		return "nessuno"
	case every%(24*time.Hour) == 0:
		return fmt.Sprintf("ogni %d giorni", every/(24*time.Hour))
	}
	return "ogni " + every.String()
}

// CampaignDue is what a comune of a campaign is due at a time.
type CampaignDue int

// What a comune may be due.
const (
	DueNothing  CampaignDue = iota // confirmed, overdue already, closed, or not yet time
	DueReminder                    // ReminderEvery has passed since its last notice
	DueOverdue                     // the deadline has passed without a confirmation
)

// DueAt says what comune cc of campaign c is due at now: nothing once
// confirmed or overdue or when the campaign is closed; overdue after the
// deadline; a reminder when ReminderEvery has passed since its last notice
// or reminder and it has someone to write to.
func DueAt(c *store.Campaign, cc *store.CampaignComune, now time.Time) CampaignDue {
	switch {
	case c.State == store.CampaignClosed, !cc.Confirmed.IsZero(), !cc.Overdue.IsZero():
		return DueNothing
	case now.After(c.Deadline):
		return DueOverdue
	case c.ReminderEvery > 0 && cc.Recipients > 0 && !now.Before(cc.LastSent.Add(c.ReminderEvery)):
		return DueReminder
	}
	return DueNothing
}

// ConfirmCheck records, inside the caller's transaction, that comune
// istat has checked its user list for campaign id (CONFERMA_VERIFICA,
// asked by operator, already authorized). It returns the receipt code and
// message, or a Refusal that changed nothing: an unknown campaign, one
// that did not notify the comune, a closed one, or a second confirmation.
// A confirmation after the deadline is taken (the comune stays counted
// as confirmed late).
func ConfirmCheck(tx *store.Tx, src store.Source, istat, id, operator, note string, loc *time.Location) (string, string, *Refusal, error) {
	if loc == nil {
		loc = time.UTC
	}
	id = strings.TrimSpace(id)
	if !store.CampaignIDOK(id) {
		return "", "", Refuse("CAMPAGNA_SCONOSCIUTA", "%q non è il codice di una campagna di avvisi di sicurezza", clip.String(id, 64)), nil
	}
	c, err := tx.Campaign(id)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", Refuse("CAMPAGNA_SCONOSCIUTA", "la campagna di avvisi di sicurezza %s non esiste", id), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	cc, err := tx.CampaignComune(id, istat)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", Refuse("CAMPAGNA_ALTRO_COMUNE", "la campagna %s non ha inviato un avviso al comune %s", id, istat), nil
	}
	if err != nil {
		return "", "", nil, err
	}
	if c.State == store.CampaignClosed {
		return "", "", Refuse("CAMPAGNA_CHIUSA", "la campagna %s è stata chiusa il %s: non si confermano più verifiche", id, c.Closed.In(loc).Format("02/01/2006")), nil
	}
	if !cc.Confirmed.IsZero() {
		return "", "", Refuse("GIA_CONFERMATA", "il comune %s ha già confermato la verifica della campagna %s il %s (%s)", istat, id,
			cc.Confirmed.In(loc).Format("02/01/2006 15:04"), cc.ConfirmedBy), nil
	}
	cc.Confirmed, cc.ConfirmedBy, cc.Note = tx.Now, operator, clip.String(oneLine(note), maxNote)
	if err := tx.PutCampaignComune(cc); err != nil {
		return "", "", nil, err
	}
	late := ""
	if tx.Now.After(c.Deadline) {
		late = ", oltre la scadenza del " + c.Deadline.In(loc).Format("02/01/2006")
	}
	detail := "verifica dell'elenco degli utenti confermata da " + operator + late
	if cc.Note != "" {
		detail += ": " + cc.Note
	}
	if err := tx.Record(src, "avviso.verifica-confermata", "avviso", id+"/"+istat, detail); err != nil {
		return "", "", nil, err
	}
	return "VERIFICA_CONFERMATA", fmt.Sprintf("campagna %s: verifica dell'elenco degli utenti del comune %s confermata%s; non arriveranno altri promemoria", id, istat, late), nil, nil
}

// oneLine is s written by a comune made one line of printable text: its
// control characters (line ends, tabs, terminal escapes) become spaces.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}

// CloseCampaign closes campaign id: no more reminders nor overdue
// comuni; its figures stay. A Refusal for an unknown or closed campaign.
func CloseCampaign(tx *store.Tx, src store.Source, id, motivo string) (*store.Campaign, *Refusal, error) {
	c, err := tx.Campaign(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, Refuse("CAMPAGNA_SCONOSCIUTA", "la campagna di avvisi di sicurezza %s non esiste", id), nil
	}
	if err != nil {
		return nil, nil, err
	}
	if c.State == store.CampaignClosed {
		return c, Refuse("CAMPAGNA_CHIUSA", "la campagna %s è già chiusa", id), nil
	}
	c.State, c.Closed, c.ClosedBy = store.CampaignClosed, tx.Now, src.Actor
	if err := tx.PutCampaign(c); err != nil {
		return nil, nil, err
	}
	detail := "campagna chiusa: nessun altro promemoria"
	if motivo = strings.TrimSpace(motivo); motivo != "" {
		detail += ": " + clip.String(motivo, maxNote)
	}
	return c, nil, tx.Record(src, "avviso.campagna-chiusa", "avviso", id, detail)
}
