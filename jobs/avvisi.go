package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"anprsec/config"
	"anprsec/domain"
	"anprsec/export/audit"
	"anprsec/lifecycle"
	"anprsec/store"
)

// AvvisoActor is the history actor of the security notice campaigns.
const AvvisoActor = "avviso-sicurezza"

// avvisoJob starts the security notice campaign of the day
// (docs/rules.md#security-notice-campaign), twice a year by default, and
// then advances every open campaign like avvisi-promemoria:
//
//  1. one transaction creates the campaign AVV-<YYYYMMDD> (a second run
//     the same day starts none): its comuni (every censused one), the text
//     of avvisi.text, the deadline avvisi.deadline_days ahead and the
//     reminder interval avvisi.reminder_every;
//  2. for each of its comuni not yet notified, the comune's user list is
//     built like the audit export's (utenti-<ISTAT>-<YYYYMMDD>.xlsx and
//     .csv, outside any transaction); then one transaction keeps the list
//     with the campaign, queues one notice per ALS and ASC (outbox ID and
//     Message-ID per campaign, comune, recipient and notice) and records
//     the comune notified. A crash before that transaction builds the
//     list again; after it, the comune is skipped: its notices are queued
//     once;
//  3. when every comune is notified the campaign is open.
//
// invio-pin sends the notices like the PIN halves: PGP/MIME, encrypted to
// the recipient's key or the gateway, signed with keys.service, the list
// attached inside the encrypted part.
var avvisoJob = Job{
	Name:        "avviso-sicurezza",
	Description: "starts a security notice campaign: each comune's ALS and ASC get the phishing warning and the comune's user list to check (signed PGP mail)",
	Run:         runAvviso,
}

// promemoriaJob advances the open campaigns (daily by default): comuni
// still to notify are notified (step 2 above); a comune that has not
// confirmed gets a reminder every avvisi.reminder_every up to the deadline;
// after the deadline it is overdue, once: a history entry, the national
// anomalies, and one message to notify.backoffice per transaction of
// overdue comuni. A closed campaign is left alone.
var promemoriaJob = Job{
	Name:        "avvisi-promemoria",
	Description: "advances the security notice campaigns: reminders to the comuni that have not confirmed, overdue comuni to the back-office",
	Run:         runPromemoria,
}

// CampaignID is the ID of the scheduled campaign started on day (in loc).
func CampaignID(day time.Time, loc *time.Location) string {
	return "AVV-" + day.In(loc).Format("20060102")
}

// CampaignOptions are the choices of a campaign started by the
// back-office (`anprsec avvisi invia`).
type CampaignOptions struct {
	Comune   string    // only this comune ("" = every censused comune)
	Deadline time.Time // a day in the config's zone; zero = avvisi.deadline_days from now
	By       string    // history actor
}

// errNoComuni: there is no censused comune to notify.
var errNoComuni = errors.New("nessun comune censito: nessuna campagna da avviare")

func runAvviso(ctx context.Context, env *Env, run *Run) error {
	c, created, err := startCampaign(env, CampaignOptions{By: AvvisoActor}, false)
	if errors.Is(err, errNoComuni) { // a store not yet censused: nothing to do
		run.Log.Info("avviso-sicurezza: no censused comune, no campaign")
		return AdvanceCampaigns(ctx, env, run)
	}
	if err != nil {
		return err
	}
	if created {
		run.Add("campagne", 1)
		run.Log.Info("avviso-sicurezza: campaign started", "campaign", c.ID, "comuni", len(c.Comuni))
	}
	return AdvanceCampaigns(ctx, env, run)
}

func runPromemoria(ctx context.Context, env *Env, run *Run) error {
	return AdvanceCampaigns(ctx, env, run)
}

// StartCampaign starts an extraordinary campaign (AVV-<YYYYMMDD>-S<n>):
// one transaction, nothing notified yet (AdvanceCampaigns does it).
func StartCampaign(env *Env, o CampaignOptions) (*store.Campaign, error) {
	c, _, err := startCampaign(env, o, true)
	return c, err
}

func startCampaign(env *Env, o CampaignOptions, extraordinary bool) (c *store.Campaign, created bool, err error) {
	av := env.Config.Avvisi
	if _, err := config.NoticeTemplate(av.Text); err != nil {
		return nil, false, fmt.Errorf("avvisi.text: %w", err)
	}
	err = env.Store.Update(func(tx *store.Tx) error {
		created = false
		id, err := newCampaignID(tx, CampaignID(tx.Now, env.Loc), extraordinary)
		if err != nil {
			return err
		}
		if id == "" { // the scheduled campaign of the day exists
			c, err = tx.Campaign(CampaignID(tx.Now, env.Loc))
			return err
		}
		deadline := o.Deadline
		if deadline.IsZero() {
			deadline = tx.Now.In(env.Loc).AddDate(0, 0, av.DeadlineDays)
		}
		c = &store.Campaign{ID: id, State: store.CampaignOpening, Extraordinary: extraordinary,
			Subject: av.Subject, Text: av.Text, Start: tx.Now, Deadline: lifecycle.DeadlineOn(deadline, env.Loc),
			ReminderEvery: av.ReminderEvery, By: o.By}
		if !c.Deadline.After(tx.Now) {
			return fmt.Errorf("la scadenza %s è già passata", c.Deadline.In(env.Loc).Format("02/01/2006"))
		}
		if c.Comuni, err = campaignComuni(tx, o.Comune); err != nil {
			return err
		}
		kind := "ordinaria"
		if extraordinary {
			kind = "straordinaria"
		}
		if err := tx.PutCampaign(c); err != nil {
			return err
		}
		created = true
		return tx.Record(store.Source{Actor: o.By}, "avviso.campagna-avviata", "avviso", id,
			fmt.Sprintf("campagna %s di avvisi di sicurezza a %d comuni, scadenza %s, promemoria %s",
				kind, len(c.Comuni), c.Deadline.In(env.Loc).Format("02/01/2006"), lifecycle.ReminderText(c.ReminderEvery)))
	})
	return c, created, err
}

// newCampaignID is the ID of a new campaign: base for the scheduled one
// ("" when it exists already), base-S<n> for an extraordinary one.
func newCampaignID(tx *store.Tx, base string, extraordinary bool) (string, error) {
	if !extraordinary {
		ok, err := tx.CampaignExists(base)
		if err != nil || ok {
			return "", err
		}
		return base, nil
	}
	for n := 1; ; n++ {
		id := fmt.Sprintf("%s-S%d", base, n)
		ok, err := tx.CampaignExists(id)
		if err != nil || !ok {
			return id, err
		}
	}
}

// campaignComuni are the comuni of a new campaign: comune alone (it must
// be censused), or every censused comune.
func campaignComuni(tx *store.Tx, comune string) ([]string, error) {
	if comune != "" {
		if _, err := tx.Comune(comune); errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("il comune %s non è censito", comune)
		} else if err != nil {
			return nil, err
		}
		return []string{comune}, nil
	}
	var out []string
	if err := tx.Comuni(func(k *domain.Comune) error {
		out = append(out, k.ISTAT)
		return nil
	}); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errNoComuni
	}
	return out, nil
}

// AdvanceCampaigns notifies the comuni not yet notified of every campaign
// in opening, then queues the reminders and marks the overdue comuni of
// every open campaign (the job avvisi-promemoria).
func AdvanceCampaigns(ctx context.Context, env *Env, run *Run) error {
	var ids []string
	if err := env.Store.View(func(tx *store.Tx) (err error) {
		ids, err = tx.OpenCampaigns()
		return err
	}); err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := advanceCampaign(ctx, env, run, id); err != nil {
			errs = append(errs, fmt.Errorf("campagna %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func advanceCampaign(ctx context.Context, env *Env, run *Run, id string) error {
	var c *store.Campaign
	notified := map[string]bool{}
	if err := env.Store.View(func(tx *store.Tx) (err error) {
		if c, err = tx.Campaign(id); err != nil {
			return err
		}
		return tx.CampaignComuni(id, func(cc *store.CampaignComune) error {
			notified[cc.ISTAT] = true
			return nil
		})
	}); err != nil {
		return err
	}
	// A comune that cannot be notified now (its list fails) is retried at
	// the next run; the others are reminded meanwhile, and the campaign
	// is open once every comune is notified.
	var errs []error
	if c.State == store.CampaignOpening {
		for _, istat := range c.Comuni {
			if notified[istat] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := notifyComune(ctx, env, run, c, istat); err != nil {
				errs = append(errs, fmt.Errorf("comune %s: %w", istat, err))
			}
		}
		if len(errs) == 0 {
			if err := openCampaign(env, id); err != nil {
				return err
			}
		}
	}
	errs = append(errs, remindAndExpire(ctx, env, run, id))
	return errors.Join(errs...)
}

// openCampaign marks campaign id open once every comune is notified.
func openCampaign(env *Env, id string) error {
	return env.Store.Update(func(tx *store.Tx) error {
		c, err := tx.Campaign(id)
		if err != nil || c.State != store.CampaignOpening {
			return err
		}
		n, none := 0, 0
		if err := tx.CampaignComuni(id, func(cc *store.CampaignComune) error {
			n++
			if cc.Recipients == 0 {
				none++
			}
			return nil
		}); err != nil {
			return err
		}
		c.State, c.Opened = store.CampaignOpen, tx.Now
		if err := tx.PutCampaign(c); err != nil {
			return err
		}
		return tx.Record(store.Source{Actor: AvvisoActor}, "avviso.campagna-aperta", "avviso", id,
			fmt.Sprintf("avvisi accodati per %d comuni (%d senza ALS o ASC con e-mail)", n, none))
	})
}

// memTarget keeps the files of an export in memory.
type memTarget map[string][]byte

func (m memTarget) Write(_ context.Context, name string, r io.Reader) error {
	b, err := io.ReadAll(r)
	m[name] = b
	return err
}

// campaignList builds comune istat's user list as the audit export does,
// dated at the campaign's start; nil for a comune no longer censused.
func campaignList(ctx context.Context, env *Env, c *store.Campaign, istat string) (*store.CampaignList, error) {
	t := memTarget{}
	e := NewExporter(env, t, true)
	e.Now = func() time.Time { return c.Start }
	files, err := e.Comune(ctx, istat)
	if errors.Is(err, audit.ErrUnknownComune) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &store.CampaignList{XLSXName: files.XLSX, XLSX: t[files.XLSX], CSVName: files.UsersCSV, CSV: t[files.UsersCSV]}, nil
}

// notifyComune keeps comune istat's list with campaign c and queues its
// notices, in one transaction (nothing when it is already notified).
func notifyComune(ctx context.Context, env *Env, run *Run, c *store.Campaign, istat string) error {
	list, err := campaignList(ctx, env, c, istat)
	if err != nil {
		return err
	}
	src := store.Source{Actor: AvvisoActor}
	return env.Store.Update(func(tx *store.Tx) error {
		if _, err := tx.CampaignComune(c.ID, istat); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		cc := &store.CampaignComune{Campaign: c.ID, ISTAT: istat, Notified: tx.Now, LastSent: tx.Now}
		com, err := tx.Comune(istat)
		switch {
		case errors.Is(err, store.ErrNotFound) || list == nil:
			if err := tx.PutCampaignComune(cc); err != nil {
				return err
			}
			run.Add("senza_destinatario", 1)
			return tx.Record(src, "avviso.senza-destinatario", "avviso", c.ID+"/"+istat, "il comune non è più censito: nessun avviso")
		case err != nil:
			return err
		}
		cc.Name = com.Name
		if err := tx.PutCampaignList(c.ID, istat, list); err != nil {
			return err
		}
		n, err := queueNotices(tx, env, c, cc, com, 0)
		if err != nil {
			return err
		}
		cc.Recipients = n
		if err := tx.PutCampaignComune(cc); err != nil {
			return err
		}
		run.Add("comuni_avvisati", 1)
		run.Add("avvisi_accodati", n)
		if n == 0 {
			run.Add("senza_destinatario", 1)
			return tx.Record(src, "avviso.senza-destinatario", "avviso", c.ID+"/"+istat,
				"nessun ALS o ASC attivo con un indirizzo e-mail: avviso non inviato, il comune resta da confermare")
		}
		return tx.Record(src, "avviso.inviato", "avviso", c.ID+"/"+istat,
			fmt.Sprintf("avviso con l'elenco degli utenti (%s, %s) accodato per %d destinatari (ALS e ASC)", list.XLSXName, list.CSVName, n))
	})
}

// queueNotices queues, in tx, notice number k (0: the notice, then the
// reminders) of campaign c to every ALS and ASC of comune com, and
// appends their outbox IDs to cc. It returns how many.
func queueNotices(tx *store.Tx, env *Env, c *store.Campaign, cc *store.CampaignComune, com *domain.Comune, k int) (int, error) {
	us, err := lifecycle.NoticeRecipients(tx, com.ISTAT)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range us {
		name := "amministratore"
		if p, err := tx.Person(u.CF); err == nil {
			name = strings.TrimSpace(p.Name + " " + p.Surname)
		}
		text, err := NoticeText(c, com, name, k, env.Loc)
		if err != nil {
			return n, err
		}
		subject := c.Subject
		if k > 0 {
			subject += " (promemoria)"
		}
		m := &store.Mail{ID: NoticeMailID(c.ID, com.ISTAT, u.CF, k), Kind: store.MailAvviso, CF: u.CF, ISTAT: com.ISTAT,
			To: u.Email, Subject: subject, Text: text, Campaign: c.ID}
		if _, err := tx.QueueMail(m); err != nil {
			return n, err
		}
		cc.Mails = append(cc.Mails, m.ID)
		n++
	}
	return n, nil
}

// NoticeMailID is the outbox ID of notice k (0: the notice, then the
// reminders) of campaign id to recipient cf of comune istat; the
// recipient appears as a hash of his CF (IDs are logged and shown).
func NoticeMailID(id, istat, cf string, k int) string {
	who := sha256.Sum256([]byte(cf))
	return fmt.Sprintf("avviso-sicurezza/%s/%s/%x/%d", id, istat, who[:5], k)
}

// signedParagraph closes every notice, whatever avvisi.text says.
const signedParagraph = `
Questo messaggio è firmato con la chiave OpenPGP del servizio ANPR
Sicurezza, come ogni avviso di sicurezza. Un messaggio che non porta questa
firma, o la cui firma non risulta valida, non è nostro: non ne apra gli
allegati, non ne segua le istruzioni e lo segnali.

Messaggio automatico, non rispondere.
`

// NoticeText is the text of notice k of campaign c to name in comune com:
// the campaign's template filled in, a reminder's first paragraph before
// it, the paragraph on the signature after it.
func NoticeText(c *store.Campaign, com *domain.Comune, name string, k int, loc *time.Location) (string, error) {
	t, err := config.NoticeTemplate(c.Text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if k > 0 {
		fmt.Fprintf(&b, "PROMEMORIA n. %d\n\nIl comune non ha ancora confermato la verifica dell'elenco degli utenti\nchiesta dall'avviso di sicurezza del %s (campagna %s).\n\n",
			k, c.Start.In(loc).Format("02/01/2006"), c.ID)
	}
	if err := t.Execute(&b, map[string]string{"Nome": name, "Comune": com.Name, "ISTAT": com.ISTAT,
		"Campagna": c.ID, "Scadenza": c.Deadline.In(loc).Format("02/01/2006")}); err != nil {
		return "", err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString(signedParagraph)
	return b.String(), nil
}

// overdueChunk is the number of overdue comuni marked (and listed in one
// back-office message) per transaction.
const overdueChunk = 200

// remindAndExpire queues the reminders due and marks the overdue comuni
// of campaign id.
func remindAndExpire(ctx context.Context, env *Env, run *Run, id string) error {
	var remind, overdue []string
	if err := env.Store.View(func(tx *store.Tx) error {
		c, err := tx.Campaign(id)
		if err != nil {
			return err
		}
		return tx.CampaignComuni(id, func(cc *store.CampaignComune) error {
			switch lifecycle.DueAt(c, cc, tx.Now) {
			case lifecycle.DueReminder:
				remind = append(remind, cc.ISTAT)
			case lifecycle.DueOverdue:
				overdue = append(overdue, cc.ISTAT)
			}
			return nil
		})
	}); err != nil {
		return err
	}
	for _, istat := range remind {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := remindComune(env, run, id, istat); err != nil {
			return err
		}
	}
	for len(overdue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(overdueChunk, len(overdue))
		if err := markOverdue(env, run, id, overdue[:n]); err != nil {
			return err
		}
		overdue = overdue[n:]
	}
	return nil
}

// remindComune queues the next reminder of comune istat, in one
// transaction, when it is still due.
func remindComune(env *Env, run *Run, id, istat string) error {
	return env.Store.Update(func(tx *store.Tx) error {
		c, err := tx.Campaign(id)
		if err != nil {
			return err
		}
		cc, err := tx.CampaignComune(id, istat)
		if err != nil {
			return err
		}
		if lifecycle.DueAt(c, cc, tx.Now) != lifecycle.DueReminder {
			return nil
		}
		com, err := tx.Comune(istat)
		if errors.Is(err, store.ErrNotFound) {
			com = &domain.Comune{ISTAT: istat, Name: cc.Name}
		} else if err != nil {
			return err
		}
		k := cc.Reminders + 1
		n, err := queueNotices(tx, env, c, cc, com, k)
		if err != nil {
			return err
		}
		cc.Reminders, cc.LastSent = k, tx.Now
		if err := tx.PutCampaignComune(cc); err != nil {
			return err
		}
		run.Add("promemoria", n)
		return tx.Record(store.Source{Actor: AvvisoActor}, "avviso.promemoria", "avviso", id+"/"+istat,
			fmt.Sprintf("promemoria n. %d accodato per %d destinatari: verifica non ancora confermata (scadenza %s)",
				k, n, c.Deadline.In(env.Loc).Format("02/01/2006")))
	})
}

// markOverdue marks comuni overdue in campaign id, in one transaction,
// and queues one message listing them to notify.backoffice.
func markOverdue(env *Env, run *Run, id string, comuni []string) error {
	src := store.Source{Actor: AvvisoActor}
	return env.Store.Update(func(tx *store.Tx) error {
		c, err := tx.Campaign(id)
		if err != nil {
			return err
		}
		var lines []string
		for _, istat := range comuni {
			cc, err := tx.CampaignComune(id, istat)
			if err != nil {
				return err
			}
			if lifecycle.DueAt(c, cc, tx.Now) != lifecycle.DueOverdue {
				continue
			}
			cc.Overdue = tx.Now
			if err := tx.PutCampaignComune(cc); err != nil {
				return err
			}
			if err := tx.Record(src, "avviso.scaduto", "avviso", id+"/"+istat,
				fmt.Sprintf("scadenza del %s passata senza la conferma della verifica (%d promemoria)", c.Deadline.In(env.Loc).Format("02/01/2006"), cc.Reminders)); err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("  %s  %-30s  avvisati %d destinatari, %d promemoria", istat, cc.Name, cc.Recipients, cc.Reminders))
		}
		if len(lines) == 0 {
			return nil
		}
		run.Add("comuni_scaduti", len(lines))
		to := env.Config.Notify.Backoffice
		if to == "" {
			return nil
		}
		c.OverdueMails++
		if err := tx.PutCampaign(c); err != nil {
			return err
		}
		text := fmt.Sprintf(`Campagna di avvisi di sicurezza %s (avviata il %s, scadenza %s).

I seguenti %d comuni non hanno confermato la verifica dell'elenco degli
utenti entro la scadenza:

%s

Sono elencati tra le anomalie del riepilogo nazionale; "anprsec avvisi stato
--campagna %s" mostra lo stato di ogni comune.
%s`, c.ID, c.Start.In(env.Loc).Format("02/01/2006"), c.Deadline.In(env.Loc).Format("02/01/2006"),
			len(lines), strings.Join(lines, "\n"), c.ID, signedParagraph)
		_, err = tx.QueueMail(&store.Mail{ID: fmt.Sprintf("avviso-sicurezza/%s/scaduti/%d", c.ID, c.OverdueMails),
			Kind: store.MailAvviso, To: to, Subject: "ANPR - avviso di sicurezza: comuni inadempienti", Text: text})
		return err
	})
}
