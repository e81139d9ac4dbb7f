package jobs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/store"
)

// autoRenew is the step of the scadenze job that, with pki.auto_renew,
// asks the renewal of every ATTIVO certificate within pki.renew_before of
// its expiry and without a renewal pending (docs/rules.md#renewal): one
// transaction per comune holds the requests (lifecycle.RequestRenewalTx,
// actor scadenze), their history entries and one notice to each ATTIVA ALP
// of the comune with an e-mail. The next certificati batch issues them.
func autoRenew(env *Env, run *Run) error {
	pc := env.Config.PKI
	if !pc.AutoRenew || pc.RenewBefore <= 0 {
		return nil
	}
	byComune := map[string][]string{}
	if err := env.Store.View(func(tx *store.Tx) error {
		return tx.EachPostazioneIn([]domain.CertState{domain.CertAttivo}, func(p *domain.Postazione) error {
			if renewDue(p, tx.Now, pc.RenewBefore) {
				byComune[p.ISTAT] = append(byComune[p.ISTAT], p.Code)
			}
			return nil
		})
	}); err != nil {
		return err
	}
	comuni := make([]string, 0, len(byComune))
	for istat := range byComune {
		comuni = append(comuni, istat)
	}
	sort.Strings(comuni)
	var errs []error
	for _, istat := range comuni {
		asked, told := 0, 0
		err := env.Store.Update(func(tx *store.Tx) error {
			asked, told = 0, 0
			var renewed []*domain.Postazione
			for _, code := range byComune[istat] {
				p, err := tx.Postazione(code)
				if err != nil {
					return err
				}
				if p.State != domain.CertAttivo || !renewDue(p, tx.Now, pc.RenewBefore) {
					continue // changed since it was read
				}
				motivo := "rinnovo automatico: il certificato scade il " + p.NotAfter.In(locOr(env.Loc)).Format("02/01/2006")
				p, err = lifecycle.RequestRenewalTx(tx, store.Source{Actor: ScadenzeActor}, code, motivo, true)
				if err != nil {
					return err
				}
				renewed = append(renewed, p)
			}
			if len(renewed) == 0 {
				return nil
			}
			asked = len(renewed)
			var err error
			told, err = queueRenewalNotice(tx, env.Loc, istat, renewed)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("scadenze: rinnovo automatico nel comune %s: %w", istat, err))
			continue
		}
		run.Add("rinnovi_automatici", asked)
		run.Add("avvisi_rinnovo", told)
	}
	return errors.Join(errs...)
}

// renewDue reports whether p is to be renewed automatically at now: it
// has a certificate expiring within before, not yet expired, and no
// renewal pending.
func renewDue(p *domain.Postazione, now time.Time, before time.Duration) bool {
	return p.Renewal == nil && p.Serial != "" && !p.NotAfter.IsZero() && p.NotAfter.After(now) && !p.NotAfter.After(now.Add(before))
}

func locOr(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// queueRenewalNotice queues, in tx, one notice per ATTIVA ALP of comune
// istat with an e-mail, listing the certificates whose renewal was just
// asked; it returns how many. Nobody to tell is recorded in the history.
func queueRenewalNotice(tx *store.Tx, loc *time.Location, istat string, ps []*domain.Postazione) (int, error) {
	com, err := tx.Comune(istat)
	if err != nil {
		return 0, err
	}
	loc = locOr(loc)
	h := sha256.New()
	var body strings.Builder
	for _, p := range ps {
		fmt.Fprintf(h, "%s/%s;", p.Code, p.Serial)
		fmt.Fprintf(&body, "  %-18s %-40s scade il %s\n", p.Code, certLabel(p), p.NotAfter.In(loc).Format("02/01/2006"))
	}
	tag := fmt.Sprintf("%s-%x", tx.Now.In(loc).Format("20060102"), h.Sum(nil)[:6])
	n, err := queueToUtenze(tx, istat, func(u *domain.Utenza) bool { return u.Has(domain.ALP) }, func(u *domain.Utenza, name string, who [32]byte) *store.Mail {
		text := fmt.Sprintf(`Gentile %s,

per le seguenti postazioni del comune di %s (%s) è stato chiesto
automaticamente un nuovo certificato, perché quello attuale è in scadenza:

%s
Il nuovo certificato sarà nel prossimo archivio della cartella certificati
del comune. Lo installi sul PC o server e ne registri l'installazione
(REGISTRA_INSTALLAZIONE): il certificato precedente resta valido fino ad
allora, al più per il periodo di sovrapposizione, poi è revocato.

Il Ministero dell'Interno non chiede mai credenziali, PIN, PUK o
password per telefono o per posta elettronica.

Messaggio automatico, non rispondere.
`, name, com.Name, com.ISTAT, body.String())
		return &store.Mail{ID: fmt.Sprintf("rinnovo/%s/%s/%x", istat, tag, who[:5]), Kind: store.MailAvviso,
			CF: u.CF, ISTAT: istat, To: u.Email, Subject: "ANPR - rinnovo automatico dei certificati", Text: text}
	})
	if err != nil || n > 0 {
		return n, err
	}
	codes := make([]string, len(ps))
	for i, p := range ps {
		codes[i] = p.Code
	}
	return 0, tx.Record(store.Source{Actor: ScadenzeActor}, "avviso.senza-destinatario", "comune", istat,
		fmt.Sprintf("rinnovo automatico di %s chiesto, ma nessun ALP attivo con e-mail a cui scriverlo", strings.Join(codes, ", ")))
}
