package jobs

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/internal/cellsafe"
	"anprsec/store"
)

// ScadenzeActor is the history actor of the scadenze job.
const ScadenzeActor = "scadenze"

// ScadenzeWindow is how far ahead the scadenze report looks.
const ScadenzeWindow = 60 * 24 * time.Hour

// scadenzeChunk is the number of postazioni expired per transaction.
const scadenzeChunk = 500

// scadenzeJob runs daily (docs/rules.md#expiry):
//
//  1. every certificate past its NotAfter that is still ATTIVO or BLOCCATO
//     becomes SCADUTO, with a history entry (a BLOCCATO one leaves the CRL:
//     an expired certificate needs no revocation entry, RFC 5280 §3.3);
//  2. for each comune with something expiring in the next 60 days, it
//     writes comuni/<ISTAT>/report/scadenze-<YYYYMMDD>.csv: its
//     certificates (ATTIVO, BLOCCATO) and the smart cards requested through
//     it (any state but REVOCATA and SCADUTA) whose expiry falls in the window. The file
//     of the same day is replaced, so a second run the same day is harmless;
//  3. it queues e-mail warnings, sent by invio-pin like the second
//     halves (encrypted to the recipient's key or the gateway, signed):
//     to each ATTIVA ALP of a comune, the certificates that cross 60, 30 or
//     7 days before expiry; to each ATTIVA ALS of every comune where the
//     holder has an ATTIVA utenza, the cards (ATTIVA or BLOCCATA) that do.
//     Each threshold is warned once (Postazione.Warned, SmartCard.Warned),
//     in the same transaction that queues the messages. A threshold with
//     nobody to write to (no ATTIVA ALP or ALS with an e-mail) stays due
//     and is retried every day; it is recorded once in the history
//     (avviso.senza-destinatario, Unwarned);
//  4. before the warnings, with pki.auto_renew, it asks the renewal of
//     every ATTIVO certificate within pki.renew_before of its expiry and
//     tells the comune's ALPs (autoRenew, docs/rules.md#renewal).
//
// Between the steps, the smart-card steps of scadenze_smartcard.go: cards
// past their expiry SCADUTA, the warning of a comune's last usable ASC,
// ALS or ALP card, the late cards to the back-office.
var scadenzeJob = Job{
	Name:        "scadenze",
	Description: "segna SCADUTO i certificati scaduti e SCADUTA le smart card scadute, scrive per comune il report di ciò che scade entro 60 giorni, avvisa per e-mail (soglie, ultima smart card ASC/ALS/ALP di un comune, smart card in ritardo al back-office)",
	Run:         runScadenze,
}

// ScadenzeReportName is the drop path of a comune's expiry report.
func ScadenzeReportName(istat string, day time.Time) string {
	return "comuni/" + istat + "/report/scadenze-" + istat + "-" + day.Format("20060102") + ".csv"
}

// scadenza is one line of the report.
type scadenza struct {
	kind, code, what string
	state            string
	expires          time.Time
}

func runScadenze(ctx context.Context, env *Env, run *Run) error {
	expired, err := expireCertificates(env.Store)
	run.Add("scaduti", expired)
	if err != nil {
		return err
	}
	expiredCards, err := expireCards(env.Store)
	run.Add("smartcard_scadute", expiredCards)
	if err != nil {
		return err
	}
	if err := autoRenew(env, run); err != nil {
		return err
	}
	if err := warnExpiries(env, run); err != nil {
		return err
	}
	if err := warnLastCards(env, run); err != nil {
		return err
	}
	if err := notifyLateCards(env, run); err != nil {
		return err
	}
	var now time.Time
	byComune := map[string][]scadenza{}
	err = env.Store.View(func(tx *store.Tx) error {
		now = tx.Now
		limit := now.Add(ScadenzeWindow)
		if err := tx.EachPostazioneIn(liveCerts, func(p *domain.Postazione) error {
			if p.NotAfter.IsZero() || p.NotAfter.After(limit) {
				return nil
			}
			what := certLabel(p)
			if what == "" {
				what = "postazione"
			}
			byComune[p.ISTAT] = append(byComune[p.ISTAT], scadenza{"certificato", p.Code, what, string(p.State), p.NotAfter})
			return nil
		}); err != nil {
			return err
		}
		cardStates := []domain.CardState{domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata}
		return tx.EachCardIn(cardStates, func(c *domain.SmartCard) error {
			if !c.Expires.IsZero() && !c.Expires.After(limit) {
				byComune[c.ISTAT] = append(byComune[c.ISTAT], scadenza{"smart card", c.Serial, holderName(tx, c.CF), string(c.State), c.Expires})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	comuni := make([]string, 0, len(byComune))
	for k := range byComune {
		comuni = append(comuni, k)
	}
	sort.Strings(comuni)
	var errs []error
	for _, istat := range comuni {
		if err := ctx.Err(); err != nil {
			return err
		}
		lines := byComune[istat]
		sort.Slice(lines, func(i, j int) bool {
			if !lines[i].expires.Equal(lines[j].expires) {
				return lines[i].expires.Before(lines[j].expires)
			}
			return lines[i].code < lines[j].code
		})
		name := ScadenzeReportName(istat, now.In(env.Loc))
		if err := env.Drop.Write(ctx, name, bytes.NewReader(scadenzeCSV(lines, now, env.Loc))); err != nil {
			errs = append(errs, fmt.Errorf("scadenze: %s: %w", name, err))
			continue
		}
		run.Add("report", 1)
		run.Add("righe", len(lines))
	}
	return errors.Join(errs...)
}

// scadenzeCSV formats a report: UTF-8 with BOM (Italian Excel), ';', one
// line per certificate or card, with the days left (0 = expires today or
// already expired, for a card).
func scadenzeCSV(lines []scadenza, now time.Time, loc *time.Location) []byte {
	var b bytes.Buffer
	b.WriteString("\ufeff")
	w := csv.NewWriter(&b)
	w.Comma, w.UseCRLF = ';', true
	w.Write([]string{"Tipo", "Codice", "Postazione o titolare", "Stato", "Scadenza", "Giorni"})
	for _, l := range lines {
		row := []string{l.kind, l.code, l.what, l.state, l.expires.In(loc).Format("02/01/2006"), fmt.Sprint(max(daysLeft(l.expires, now), 0))}
		for i := range row {
			row[i] = cellsafe.Neutralize(row[i])
		}
		w.Write(row)
	}
	w.Flush() // a bytes.Buffer does not fail
	return b.Bytes()
}

// daysLeft is the number of days from now to t, rounded up (negative when
// t is past).
func daysLeft(t, now time.Time) int { return int(math.Ceil(t.Sub(now).Hours() / 24)) }

// certLabel names a certificate in reports and warnings: its label, or
// "certificato server".
func certLabel(p *domain.Postazione) string {
	if p.Server {
		return "certificato server"
	}
	return p.Label
}

// holderName is "Cognome Nome (CF)" of a card's holder, or the CF alone.
func holderName(tx *store.Tx, cf string) string {
	if p, err := tx.Person(cf); err == nil {
		return strings.TrimSpace(p.Surname+" "+p.Name) + " (" + cf + ")"
	}
	return cf
}

// liveCerts are the states of a certificate that can expire.
var liveCerts = []domain.CertState{domain.CertAttivo, domain.CertBloccato}

// errChunkFull ends a transaction's pass once it holds a chunk.
var errChunkFull = errors.New("chunk full")

// expireCertificates marks SCADUTO every ATTIVO or BLOCCATO certificate
// whose validity has ended, a chunk per transaction.
func expireCertificates(st *store.Store) (int, error) {
	return inChunks(st, func(tx *store.Tx, src store.Source, change func() error) error {
		return tx.EachPostazioneIn(liveCerts, func(p *domain.Postazione) error {
			if p.NotAfter.IsZero() || p.NotAfter.After(tx.Now) {
				return nil
			}
			if err := change(); err != nil {
				return err
			}
			prev := p.State
			p.State, p.PrevState, p.HoldSince, p.Updated = domain.CertScaduto, prev, time.Time{}, tx.Now
			if err := tx.PutPostazione(p); err != nil {
				return err
			}
			detail := fmt.Sprintf("%s → %s: validità terminata il %s", prev, domain.CertScaduto, p.NotAfter.UTC().Format(time.RFC3339))
			return tx.Record(src, "postazione.scade", "postazione", p.Code, detail)
		})
	})
}

// inChunks runs pass in transactions of at most scadenzeChunk changes, as
// the scadenze job, until a pass makes fewer: pass calls change before
// each change it makes, and stops with its error once the chunk is full.
// It returns how many changes were made.
func inChunks(st *store.Store, pass func(tx *store.Tx, src store.Source, change func() error) error) (int, error) {
	total := 0
	for {
		n := 0
		err := st.Update(func(tx *store.Tx) error {
			n = 0
			err := pass(tx, store.Source{Actor: ScadenzeActor}, func() error {
				if n == scadenzeChunk {
					return errChunkFull
				}
				n++
				return nil
			})
			if errors.Is(err, errChunkFull) {
				return nil
			}
			return err
		})
		total += n
		if err != nil || n < scadenzeChunk {
			return total, err
		}
	}
}

// WarnThresholds are the days before expiry at which the comune is warned.
var WarnThresholds = []int{60, 30, 7}

// warnThreshold is the threshold to warn for daysLeft days left when the
// last one warned was warned (0: none): the smallest one reached and not
// yet warned, 0 when there is none.
func warnThreshold(daysLeft, warned int) int {
	t := 0
	for _, th := range WarnThresholds {
		if daysLeft <= th && (warned == 0 || th < warned) {
			t = th
		}
	}
	return t
}

type warning struct {
	code, what string
	expires    time.Time
	days, th   int
}

// warnExpiries queues the expiry warnings: for each comune, in one
// transaction, its certificates to its ALPs; then for each card, in one
// transaction, to the ALS of every comune where its holder has an ATTIVA
// utenza (the comuni that can act on it, not the one it was first
// requested through). The cards are read once.
func warnExpiries(env *Env, run *Run) error {
	comuni, cards, err := dueWarnings(env)
	if err != nil {
		return err
	}
	for _, istat := range comuni {
		if err := env.Store.Update(func(tx *store.Tx) error { return warnComune(tx, env, run, istat) }); err != nil {
			return fmt.Errorf("scadenze: avvisi del comune %s: %w", istat, err)
		}
	}
	for _, serial := range cards {
		if err := env.Store.Update(func(tx *store.Tx) error { return warnCard(tx, env, run, serial) }); err != nil {
			return fmt.Errorf("scadenze: avviso della smart card %s: %w", serial, err)
		}
	}
	return warnCAExpiry(env, run)
}

// dueWarnings is one read pass that finds what has a warning due: the
// comuni with a certificate to warn (sorted) and the cards to warn. Only
// those get a write transaction.
func dueWarnings(env *Env) (comuni, cards []string, err error) {
	err = env.Store.View(func(tx *store.Tx) error {
		seen := map[string]bool{}
		if err := tx.EachPostazioneIn(liveCerts, func(p *domain.Postazione) error {
			if !seen[p.ISTAT] && certWarning(p, tx.Now) > 0 {
				seen[p.ISTAT] = true
				comuni = append(comuni, p.ISTAT)
			}
			return nil
		}); err != nil {
			return err
		}
		sort.Strings(comuni)
		return tx.EachCardIn([]domain.CardState{domain.CardAttiva, domain.CardBloccata}, func(c *domain.SmartCard) error {
			if cardWarning(c, tx.Now) > 0 {
				cards = append(cards, c.Serial)
			}
			return nil
		})
	})
	return comuni, cards, err
}

// warnComune queues, in tx, the warnings of the certificates of comune
// istat to its ALPs and records them on each certificate, or records that
// nobody could be warned.
func warnComune(tx *store.Tx, env *Env, run *Run, istat string) error {
	src := store.Source{Actor: ScadenzeActor}
	var certs []warning
	var ps []*domain.Postazione
	if err := tx.PostazioniOfComune(istat, func(p *domain.Postazione) error {
		if th := certWarning(p, tx.Now); th > 0 {
			certs = append(certs, warning{p.Code, certLabel(p), p.NotAfter, daysLeft(p.NotAfter, tx.Now), th})
			ps = append(ps, p)
		}
		return nil
	}); err != nil {
		return err
	}
	if len(certs) == 0 {
		return nil
	}
	com, err := tx.Comune(istat)
	if err != nil {
		return err
	}
	n, err := queueWarnings(tx, src, env.Loc, com, domain.ALP, "certificati", certs)
	if err != nil {
		return err
	}
	run.Add("avvisi_certificati", n)
	if n == 0 {
		return certsUnwarned(tx, src, com, ps, certs)
	}
	return certsWarned(tx, src, ps, certs, n)
}

// certsUnwarned handles certificates nobody could be warned of: the
// threshold stays due, so an ALP named (or given an e-mail) later is still
// warned; it is recorded once.
func certsUnwarned(tx *store.Tx, src store.Source, com *domain.Comune, ps []*domain.Postazione, certs []warning) error {
	var fresh []warning
	for i, p := range ps {
		if p.Unwarned == certs[i].th {
			continue
		}
		p.Unwarned = certs[i].th
		if err := tx.PutPostazione(p); err != nil {
			return err
		}
		fresh = append(fresh, certs[i])
	}
	return recordUnwarned(tx, src, "comune", com.ISTAT, domain.ALP, "certificati", fresh)
}

// certsWarned marks each certificate warned at its threshold, with a
// history entry naming how many ALPs were warned.
func certsWarned(tx *store.Tx, src store.Source, ps []*domain.Postazione, certs []warning, n int) error {
	for i, p := range ps {
		p.Warned, p.Unwarned = certs[i].th, 0
		if err := tx.PutPostazione(p); err != nil {
			return err
		}
		if err := tx.Record(src, "postazione.avviso-scadenza", "postazione", p.Code,
			fmt.Sprintf("scade tra %d giorni: avvisati %d ALP", certs[i].days, n)); err != nil {
			return err
		}
	}
	return nil
}

// warnCard queues, in tx, the warning of card serial to the ALSs of every
// comune where its holder has an ATTIVA utenza and records it on the card,
// or records that nobody could be warned.
func warnCard(tx *store.Tx, env *Env, run *Run, serial string) error {
	src := store.Source{Actor: ScadenzeActor}
	c, err := tx.Card(serial)
	if err != nil {
		return err
	}
	th := cardWarning(c, tx.Now)
	if th == 0 {
		return nil
	}
	days := daysLeft(c.Expires, tx.Now)
	ws := []warning{{c.Serial, holderName(tx, c.CF), c.Expires, days, th}}
	total, err := queueCardWarnings(tx, src, env.Loc, c.CF, ws)
	if err != nil {
		return err
	}
	run.Add("avvisi_smartcard", total)
	if total == 0 {
		// As for certificates: due until somebody can be warned.
		if c.Unwarned == th {
			return nil
		}
		c.Unwarned = th
		if err := tx.PutCard(c); err != nil {
			return err
		}
		return recordUnwarned(tx, src, "smartcard", c.Serial, domain.ALS, "smart card", ws)
	}
	c.Warned, c.Unwarned = th, 0
	if err := tx.PutCard(c); err != nil {
		return err
	}
	return tx.Record(src, "smartcard.avviso-scadenza", "smartcard", c.Serial,
		fmt.Sprintf("scade tra %d giorni: avvisati %d ALS", days, total))
}

// queueCardWarnings queues the card warnings ws to the ALSs of every
// comune where holder cf has an ATTIVA utenza, and returns how many.
func queueCardWarnings(tx *store.Tx, src store.Source, loc *time.Location, cf string, ws []warning) (int, error) {
	comuni, err := tx.ComuniOfPerson(cf)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, istat := range comuni {
		if u, err := tx.Utenza(istat, cf); err != nil || u.State != domain.UtenzaAttiva {
			continue
		}
		com, err := tx.Comune(istat)
		if err != nil {
			return 0, err
		}
		n, err := queueWarnings(tx, src, loc, com, domain.ALS, "smart card", ws)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// certWarning is the threshold to warn for certificate p at now (0: none).
func certWarning(p *domain.Postazione, now time.Time) int {
	if p.State != domain.CertAttivo && p.State != domain.CertBloccato || p.NotAfter.IsZero() || !p.NotAfter.After(now) {
		return 0
	}
	return warnThreshold(daysLeft(p.NotAfter, now), p.Warned)
}

// cardWarning is the threshold to warn for card c at now (0: none).
func cardWarning(c *domain.SmartCard, now time.Time) int {
	if c.Expires.IsZero() || !c.Expires.After(now) {
		return 0
	}
	return warnThreshold(daysLeft(c.Expires, now), c.Warned)
}

// queueWarnings queues one notice per ATTIVA utenza of the comune holding
// profile (ALP for certificates, ALS for cards), in the caller's
// transaction, and returns how many.
func queueWarnings(tx *store.Tx, src store.Source, loc *time.Location, com *domain.Comune, profile domain.Profile, what string, ws []warning) (int, error) {
	// The ID names what is warned (codes and thresholds), so another
	// warning of the same day is another message, and the same one is not
	// queued twice.
	h := sha256.New()
	for _, w := range ws {
		fmt.Fprintf(h, "%s/%d;", w.code, w.th)
	}
	day := tx.Now.In(loc).Format("20060102")
	tag := fmt.Sprintf("%s-%x", day, h.Sum(nil)[:6])
	var body strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&body, "  %-18s %-40s scade il %s (tra %d giorni)\n", w.code, w.what, w.expires.In(loc).Format("02/01/2006"), w.days)
	}
	return queueToUtenze(tx, com.ISTAT, func(u *domain.Utenza) bool { return u.Has(profile) }, func(u *domain.Utenza, name string, who [32]byte) *store.Mail {
		text := fmt.Sprintf(`Gentile %s,

le seguenti %s del comune di %s (%s) scadono entro %d giorni:

%s
Provveda per tempo dalla console di sicurezza ANPR, perché alla scadenza
non sarà più possibile usarle.

Il Ministero dell'Interno non chiede mai credenziali, PIN, PUK o
password per telefono o per posta elettronica.

Messaggio automatico, non rispondere.
`, name, map[string]string{"certificati": "postazioni (certificati)", "smart card": "smart card"}[what], com.Name, com.ISTAT, maxDays(ws), body.String())
		id := fmt.Sprintf("avviso/%s/%s/%s/%x", com.ISTAT, strings.ReplaceAll(what, " ", ""), tag, who[:5])
		return &store.Mail{ID: id, Kind: store.MailAvviso,
			CF: u.CF, ISTAT: com.ISTAT, To: u.Email, Subject: "ANPR - " + what + " in scadenza", Text: text}
	})
}

// queueToUtenze queues, in tx, one message to each ATTIVA utenza of comune
// istat with an e-mail that want takes: mail makes it from the utenza, the
// greeting's name (the person's, else "amministratore") and the SHA-256 of
// the codice fiscale, which names the recipient in message IDs (IDs are
// shown by `anprsec status` and logged, a CF is not); it returns how many
// were queued (a message already queued is not queued twice).
func queueToUtenze(tx *store.Tx, istat string, want func(*domain.Utenza) bool, mail func(u *domain.Utenza, name string, who [32]byte) *store.Mail) (int, error) {
	n := 0
	err := tx.UtenzeOfComune(istat, func(u *domain.Utenza) error {
		if u.State != domain.UtenzaAttiva || u.Email == "" || !want(u) {
			return nil
		}
		name := "amministratore"
		if p, err := tx.Person(u.CF); err == nil {
			name = strings.TrimSpace(p.Name + " " + p.Surname)
		}
		queued, err := tx.QueueMail(mail(u, name, sha256.Sum256([]byte(u.CF))))
		if queued {
			n++
		}
		return err
	})
	return n, err
}

// recordUnwarned records, once per threshold, the warnings nobody could be
// sent (no ATTIVA utenza with the profile and an e-mail).
func recordUnwarned(tx *store.Tx, src store.Source, kind, id string, profile domain.Profile, what string, ws []warning) error {
	if len(ws) == 0 {
		return nil
	}
	codes := make([]string, len(ws))
	for i, w := range ws {
		codes[i] = w.code
	}
	return tx.Record(src, "avviso.senza-destinatario", kind, id,
		fmt.Sprintf("%d %s in scadenza (%s) ma nessun %s attivo con e-mail a cui scrivere: si riprova ogni giorno",
			len(ws), what, strings.Join(codes, ", "), profile))
}

func maxDays(ws []warning) int {
	m := 0
	for _, w := range ws {
		m = max(m, w.th)
	}
	return m
}

// CAWarnThresholds are the days before the current CA's certificate
// expires at which scadenze warns (docs/rules.md#ca-rollover).
var CAWarnThresholds = []int{180, 90, 30}

// caWarnedMeta keeps, per CA (its KeyID), the last threshold warned.
func caWarnedMeta(keyID string) string { return "ca-expiry-warned/" + keyID }

// warnCAExpiry warns, once per threshold, when the current CA's
// certificate expires within 180, 90 or 30 days: a history entry
// (ca.scadenza) and a warning in the log, both saying to run `anprsec ca
// rinnova`. The days left are a value of the run (ca_days_left).
func warnCAExpiry(env *Env, run *Run) error {
	cur, err := CurrentCA(env)
	if err != nil {
		run.Log.Warn("scadenze: the CA certificate cannot be read: its expiry is not checked", "err", err)
		return nil
	}
	return env.Store.Update(func(tx *store.Tx) error {
		days := daysLeft(cur.Cert.NotAfter, tx.Now)
		run.Set("ca_days_left", days)
		var warned int
		if err := tx.Meta(caWarnedMeta(cur.KeyID), &warned); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		th := 0
		for _, t := range CAWarnThresholds {
			if days <= t && (warned == 0 || t < warned) {
				th = t
			}
		}
		if th == 0 {
			return nil
		}
		if err := tx.SetMeta(caWarnedMeta(cur.KeyID), th); err != nil {
			return err
		}
		run.Add("ca_avvisi", 1)
		run.Log.Warn("scadenze: the CA certificate expires soon: run `anprsec ca rinnova`", "ca", cur.KeyID, "days_left", days, "not_after", cur.Cert.NotAfter)
		return tx.Record(store.Source{Actor: ScadenzeActor}, "ca.scadenza", "ca", cur.KeyID,
			fmt.Sprintf("il certificato della CA %s scade il %s (fra %d giorni, soglia %d): eseguire `anprsec ca rinnova`",
				cur.KeyID, cur.Cert.NotAfter.In(cmp.Or(env.Loc, time.UTC)).Format("02/01/2006"), days, th))
	})
}
