package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/ingest/esito"
	"anprsec/store"
)

// ScadenzeActor is the history actor of the scadenze job.
const ScadenzeActor = "scadenze"

// ScadenzeWindow is how far ahead the scadenze report looks.
const ScadenzeWindow = 60 * 24 * time.Hour

// scadenzeChunk is the number of postazioni expired per transaction.
const scadenzeChunk = 500

// scadenzeJob (SPEC.md "scadenze", daily; issue 3):
//
//  1. every certificate past its NotAfter that is still ATTIVO or BLOCCATO
//     becomes SCADUTO, with a history entry (a BLOCCATO one leaves the CRL:
//     an expired certificate needs no revocation entry, RFC 5280 §3.3);
//  2. for each comune with something expiring in the next 60 days, it
//     writes comuni/<ISTAT>/report/scadenze-<YYYYMMDD>.csv: its
//     certificates (ATTIVO, BLOCCATO) and the smart cards requested through
//     it (any state but REVOCATA) whose expiry falls in the window. The file
//     of the same day is replaced, so a second run the same day is harmless.
var scadenzeJob = Job{
	Name:        "scadenze",
	Description: "marks expired certificates SCADUTO and writes, per comune, the report of certificates and cards expiring within 60 days",
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
	var now time.Time
	byComune := map[string][]scadenza{}
	err = env.Store.View(func(tx *store.Tx) error {
		now = tx.Now
		limit := now.Add(ScadenzeWindow)
		for _, st := range []domain.CertState{domain.CertAttivo, domain.CertBloccato} {
			codes, err := tx.PostazioniInState(st)
			if err != nil {
				return err
			}
			for _, code := range codes {
				p, err := tx.Postazione(code)
				if err != nil {
					return fmt.Errorf("postazione %s: %w", code, err)
				}
				if p.NotAfter.IsZero() || p.NotAfter.After(limit) {
					continue
				}
				what := p.Label
				if what == "" {
					what = "postazione"
				}
				if p.Server {
					what = "certificato server"
				}
				byComune[p.ISTAT] = append(byComune[p.ISTAT], scadenza{"certificato", p.Code, what, string(p.State), p.NotAfter})
			}
		}
		for _, st := range []domain.CardState{domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata} {
			serials, err := tx.CardsInState(st)
			if err != nil {
				return err
			}
			for _, s := range serials {
				c, err := tx.Card(s)
				if err != nil {
					return fmt.Errorf("smart card %s: %w", s, err)
				}
				if c.Expires.IsZero() || c.Expires.After(limit) {
					continue
				}
				who := c.CF
				if p, err := tx.Person(c.CF); err == nil {
					who = strings.TrimSpace(p.Surname+" "+p.Name) + " (" + c.CF + ")"
				}
				byComune[c.ISTAT] = append(byComune[c.ISTAT], scadenza{"smart card", c.Serial, who, string(c.State), c.Expires})
			}
		}
		return nil
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
	b.WriteString("Tipo;Codice;Postazione o titolare;Stato;Scadenza;Giorni\r\n")
	for _, l := range lines {
		days := int(math.Ceil(l.expires.Sub(now).Hours() / 24))
		if days < 0 {
			days = 0
		}
		for i, f := range []string{l.kind, l.code, l.what, l.state, l.expires.In(loc).Format("02/01/2006"), fmt.Sprint(days)} {
			if i > 0 {
				b.WriteByte(';')
			}
			f = esito.Neutralize(f)
			if strings.ContainsAny(f, ";\"\r\n") {
				f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
			}
			b.WriteString(f)
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// expireCertificates marks SCADUTO every ATTIVO or BLOCCATO certificate
// whose validity has ended, a chunk per transaction.
func expireCertificates(st *store.Store) (int, error) {
	total := 0
	for {
		n := 0
		err := st.Update(func(tx *store.Tx) error {
			n = 0
			src := store.Source{Actor: ScadenzeActor}
			for _, state := range []domain.CertState{domain.CertAttivo, domain.CertBloccato} {
				codes, err := tx.PostazioniInState(state)
				if err != nil {
					return err
				}
				for _, code := range codes {
					if n == scadenzeChunk {
						return nil
					}
					p, err := tx.Postazione(code)
					if err != nil {
						return fmt.Errorf("postazione %s: %w", code, err)
					}
					if p.NotAfter.IsZero() || p.NotAfter.After(tx.Now) {
						continue
					}
					prev := p.State
					p.State, p.PrevState, p.HoldSince, p.Updated = domain.CertScaduto, prev, time.Time{}, tx.Now
					if err := tx.PutPostazione(p); err != nil {
						return err
					}
					detail := fmt.Sprintf("%s → %s: validità terminata il %s", prev, domain.CertScaduto, p.NotAfter.UTC().Format(time.RFC3339))
					if err := tx.Record(src, "postazione.scade", "postazione", p.Code, detail); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
		total += n
		if err != nil || n < scadenzeChunk {
			return total, err
		}
	}
}
