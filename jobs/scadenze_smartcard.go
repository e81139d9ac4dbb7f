package jobs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	netmail "net/mail"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/store"
	"anprsec/workdays"
)

// The smart-card steps of the scadenze job (docs/rules.md#expiry):
//
//  1. every card past its expiry that is not over becomes SCADUTA
//     (lifecycle.ExpireCard), a chunk per transaction;
//  2. a comune whose last usable card of its ASC, of its ALS or of its ALP
//     expires within cards.last_card_warning_days is warned by e-mail (its
//     ATTIVA ASC and ALS), once per such card;
//  3. the cards late in production (lifecycle.LateRule) not yet notified
//     are e-mailed to notify.backoffice in one message per run, each card
//     marked notified in the transaction that queues it.

// expireCards marks SCADUTA every card past its expiry, a chunk per
// transaction, and returns how many.
func expireCards(st *store.Store) (int, error) {
	live := []domain.CardState{domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata}
	return inChunks(st, func(tx *store.Tx, src store.Source, change func() error) error {
		return tx.EachCardIn(live, func(c *domain.SmartCard) error {
			if !lifecycle.CardExpired(c, tx.Now) {
				return nil
			}
			if err := change(); err != nil {
				return err
			}
			return lifecycle.ExpireCard(tx, src, c)
		})
	})
}

// LateRule is the rule of cards late in production from the config
// (cards.late_working_days, cards.holidays) in the config's time zone.
func LateRule(env *Env) (lifecycle.LateRule, error) {
	cal, err := workdays.New(env.Config.Cards.Holidays)
	if err != nil {
		return lifecycle.LateRule{}, err
	}
	return lifecycle.LateRule{Days: env.Config.Cards.LateWorkingDays, Calendar: cal, Loc: env.Loc}, nil
}

// lateChunk is the number of late cards one message (and one transaction)
// names at most.
const lateChunk = 200

// notifyLateCards e-mails the back-office the late cards it was not told
// of yet; without notify.backoffice it only counts them.
func notifyLateCards(env *Env, run *Run) error {
	rule, err := LateRule(env)
	if err != nil {
		return err
	}
	var fresh []string
	late := 0
	if err := env.Store.View(func(tx *store.Tx) error {
		cards, err := lifecycle.LateCards(tx, rule, tx.Now)
		late = len(cards)
		for _, c := range cards {
			if c.Notified.IsZero() {
				fresh = append(fresh, c.Serial)
			}
		}
		return err
	}); err != nil {
		return err
	}
	run.Set("smartcard_in_ritardo", late)
	if env.Config.Notify.Backoffice == "" || len(fresh) == 0 {
		return nil
	}
	addr, err := netmail.ParseAddress(env.Config.Notify.Backoffice)
	if err != nil {
		return fmt.Errorf("scadenze: notify.backoffice %q: %w", env.Config.Notify.Backoffice, err)
	}
	to := addr.Address
	for len(fresh) > 0 {
		chunk := fresh[:min(lateChunk, len(fresh))]
		fresh = fresh[len(chunk):]
		n := 0
		err := env.Store.Update(func(tx *store.Tx) error {
			n = 0
			return queueLateNotice(tx, env, rule, to, chunk, &n)
		})
		if err != nil {
			return fmt.Errorf("scadenze: smart card in ritardo: %w", err)
		}
		run.Add("ritardi_segnalati", n)
	}
	return nil
}

// queueLateNotice queues, in tx, one message to the back-office naming the
// cards of serials still late and not notified, marks them notified and
// records each; n is how many.
func queueLateNotice(tx *store.Tx, env *Env, rule lifecycle.LateRule, to string, serials []string, n *int) error {
	src := store.Source{Actor: ScadenzeActor}
	var lines strings.Builder
	var cards []*domain.SmartCard
	h := sha256.New()
	for _, s := range serials {
		c, err := tx.Card(s)
		if err != nil {
			return err
		}
		late, days := rule.Late(c, tx.Now)
		if !late || !c.LateNotified.IsZero() {
			continue
		}
		cards = append(cards, c)
		fmt.Fprintf(h, "%s;", c.Serial)
		fmt.Fprintf(&lines, "  %-14s comune %s  ordinata il %s  (%d giorni lavorativi)\n",
			c.Serial, c.ISTAT, c.Ordered.In(env.Loc).Format("02/01/2006"), days)
	}
	if len(cards) == 0 {
		return nil
	}
	day := tx.Now.In(env.Loc)
	m := &store.Mail{
		ID:      fmt.Sprintf("ritardo/%s/%x", day.Format("20060102"), h.Sum(nil)[:6]),
		Kind:    store.MailAvviso,
		To:      to,
		Subject: fmt.Sprintf("ANPR - %d smart card in ritardo di produzione", len(cards)),
		Text: fmt.Sprintf(`Le seguenti smart card sono IN PRODUZIONE da più di %d giorni lavorativi
(sabati, domeniche e festivi esclusi) e non risultano ancora consegnate
alla prefettura:

%s
Verificare con il produttore lo stato della produzione e della spedizione.
Ogni smart card è segnalata una sola volta; l'elenco aggiornato è in
"anprsec status".

Messaggio automatico, non rispondere.
`, rule.Days, lines.String()),
	}
	if _, err := tx.QueueMail(m); err != nil {
		return err
	}
	for _, c := range cards {
		c.LateNotified = tx.Now
		if err := tx.PutCard(c); err != nil {
			return err
		}
		if err := tx.Record(src, "smartcard.ritardo", "smartcard", c.Serial,
			fmt.Sprintf("in produzione dal %s, oltre %d giorni lavorativi: segnalata al back-office (%s)",
				c.Ordered.In(env.Loc).Format("02/01/2006"), rule.Days, m.ID)); err != nil {
			return err
		}
	}
	*n = len(cards)
	return nil
}

// lastCard is the usable card, of the ATTIVA utenze of a comune holding a
// mandatory profile, that expires last.
type lastCard struct {
	istat   string
	profile domain.Profile
	serial  string
	holder  string // CF
	expires time.Time
}

// lastCards finds, for every comune, each mandatory profile whose last
// usable card expires within days of now.
func lastCards(tx *store.Tx, days int) ([]lastCard, error) {
	limit := tx.Now.AddDate(0, 0, days)
	var out []lastCard
	err := tx.Comuni(func(com *domain.Comune) error {
		best := map[domain.Profile]lastCard{}
		if err := tx.UtenzeOfComune(com.ISTAT, func(u *domain.Utenza) error {
			if u.State != domain.UtenzaAttiva {
				return nil
			}
			p, err := tx.Person(u.CF)
			if err != nil || p.Card == "" {
				return nil
			}
			c, err := tx.Card(p.Card)
			if err != nil || !lifecycle.CardUsable(c, tx.Now) {
				return nil
			}
			exp := c.Expires
			if exp.IsZero() || p.NextCard != "" {
				// No expiry, or its replacement already asked: not a
				// card the comune must be warned about.
				exp = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			for _, pr := range lifecycle.Mandatory {
				if u.Has(pr) && exp.After(best[pr].expires) {
					best[pr] = lastCard{com.ISTAT, pr, c.Serial, u.CF, exp}
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, pr := range lifecycle.Mandatory {
			if b, ok := best[pr]; ok && !b.expires.After(limit) {
				out = append(out, b)
			}
		}
		return nil
	})
	return out, err
}

// warnLastCards warns each comune whose last usable ASC, ALS or ALP card
// expires within cards.last_card_warning_days, once per card: the message
// ID names the comune, the profile and the card.
func warnLastCards(env *Env, run *Run) error {
	var due []lastCard
	if err := env.Store.View(func(tx *store.Tx) (err error) {
		due, err = lastCards(tx, env.Config.Cards.LastCardWarningDays)
		return err
	}); err != nil {
		return err
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].istat < due[j].istat })
	for _, lc := range due {
		err := env.Store.Update(func(tx *store.Tx) error {
			n, err := queueLastCardWarning(tx, env, lc)
			run.Add("avvisi_ultima_smartcard", n)
			return err
		})
		if err != nil {
			return fmt.Errorf("scadenze: ultima smart card del comune %s: %w", lc.istat, err)
		}
	}
	return nil
}

// queueLastCardWarning queues the warning of lc to the ATTIVA ASC and ALS
// of its comune and records it once; with nobody to write to it records
// that once (the warning stays due).
func queueLastCardWarning(tx *store.Tx, env *Env, lc lastCard) (int, error) {
	src := store.Source{Actor: ScadenzeActor}
	com, err := tx.Comune(lc.istat)
	if err != nil {
		return 0, err
	}
	days := daysLeft(lc.expires, tx.Now)
	text := fmt.Sprintf(`Gentile {nome},

nel comune di %s (%s) l'ultima smart card attiva di un utente con profilo
%s (%s) è la %s di %s, che scade il %s (tra %d giorni).

Alla scadenza il comune resterebbe senza un %s con smart card attiva: chieda
per tempo una nuova smart card (NUOVA_SC con motivo "scadenza": quella in
uso resta attiva fino alla consegna della nuova) o nomini un altro %s.

Il Ministero dell'Interno non chiede mai credenziali, PIN, PUK o
password per telefono o per posta elettronica.

Messaggio automatico, non rispondere.
`, com.Name, com.ISTAT, lc.profile, profileName(lc.profile), lc.serial, holderName(tx, lc.holder),
		lc.expires.In(env.Loc).Format("02/01/2006"), max(days, 0), lc.profile, lc.profile)
	n, err := queueToUtenze(tx, com.ISTAT, func(u *domain.Utenza) bool { return u.Has(domain.ASC) || u.Has(domain.ALS) }, func(u *domain.Utenza, name string, who [32]byte) *store.Mail {
		return &store.Mail{ID: fmt.Sprintf("ultima-sc/%s/%s/%s/%x", com.ISTAT, lc.profile, lc.serial, who[:5]), Kind: store.MailAvviso,
			CF: u.CF, ISTAT: com.ISTAT, To: u.Email, Subject: "ANPR - ultima smart card " + string(lc.profile) + " in scadenza", Text: strings.Replace(text, "{nome}", name, 1)}
	})
	if err != nil {
		return 0, err
	}
	detail := fmt.Sprintf("l'ultima smart card attiva di un %s (%s) scade il %s", lc.profile, lc.serial, lc.expires.In(env.Loc).Format("02/01/2006"))
	if n > 0 {
		return n, tx.Record(src, "comune.avviso-ultima-smartcard", "comune", com.ISTAT, fmt.Sprintf("%s: avvisati %d tra ASC e ALS", detail, n))
	}
	key := "avviso-ultima-sc/" + com.ISTAT + "/" + string(lc.profile)
	var seen string
	if err := tx.Meta(key, &seen); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	if seen == lc.serial {
		return 0, nil
	}
	if err := tx.SetMeta(key, lc.serial); err != nil {
		return 0, err
	}
	return 0, tx.Record(src, "avviso.senza-destinatario", "comune", com.ISTAT,
		detail+": nessun ASC o ALS attivo con e-mail a cui scrivere, si riprova ogni giorno")
}

func profileName(p domain.Profile) string {
	if info, ok := domain.LookupProfile(string(p)); ok {
		return info.Description
	}
	return string(p)
}
