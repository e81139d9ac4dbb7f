package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

// RevocationsSheet is the sheet of the national workbook listing what was
// revoked in the period.
const RevocationsSheet = "Revoche"

// CardRevokeAction is the history action of a card's revocation (final at
// once).
const CardRevokeAction = "smartcard.revoca"

// RevocationsName is the base name of the revocation list of month
// (YYYY-MM).
func RevocationsName(month string) string { return "revoche-" + month + ".csv" }

// Types of item of the revocation list.
const (
	RevokedCertificate = "certificato"
	RevokedCard        = "smart card"
)

var revocationCols = []column{
	{"Mese", 8, kText},
	{"Tipo", 12, kText},
	{"Codice ISTAT", 12, kText},
	{"Comune", 24, kText},
	{"Codice postazione o seriale", 24, kText},
	{"Seriale del certificato", 42, kText},
	{"Titolare (codice fiscale)", 20, kText},
	{"Titolare", 28, kText},
	{"Data di attivazione", 12, kDate},
	{"Data di scadenza", 12, kDate},
	{"Data di revoca", 18, kDateTime},
	{"Motivo", 40, kText},
	{"Richiesta da", 24, kText},
}

// revocation is one line of the revocation list: a certificate or a card
// whose revocation became final (a hold is not a revocation).
type revocation struct {
	kind, istat, code, serial, cf string
	holder                        string
	activated, expires, final     time.Time
	reason, by                    string
}

// postazioneRevocations adds the revocations of p that became final in the
// period (docs/rules.md#audit): its current certificate once REVOCATO (final
// at the batch that made it so, its last change), and each predecessor
// revoked, superseded at the end of its overlap or with its postazione.
func (n *national) postazioneRevocations(p *domain.Postazione) {
	if p.State == domain.CertRevocato && n.in(p.Updated) {
		n.revoked = append(n.revoked, revocation{kind: RevokedCertificate, istat: p.ISTAT, code: p.Code, serial: p.Serial,
			activated: issued(p), expires: p.NotAfter, final: p.Updated, reason: reasonText(p.RevocationReason, p.Reason), by: p.RevokedBy})
	}
	for i := range p.Predecessors {
		pc := &p.Predecessors[i]
		r, _ := lifecycle.PredecessorRevocation(p, pc, n.now)
		if !r.Revoked || r.Reason == pki.ReasonCertificateHold {
			continue
		}
		line := revocation{kind: RevokedCertificate, istat: p.ISTAT, code: p.Code, serial: pc.Serial,
			activated: pc.NotBefore, expires: pc.NotAfter, final: r.At, by: pc.By,
			reason: reasonText(pki.ReasonSuperseded, "rinnovo: "+pc.Motivo)}
		if r.Reason != pki.ReasonSuperseded { // revoked with its postazione
			line.final, line.by, line.reason = p.Updated, p.RevokedBy, reasonText(r.Reason, p.Reason)
		}
		if n.in(line.final) {
			n.revoked = append(n.revoked, line)
		}
	}
}

// cardRevocation adds the revocation of a card recorded by the history
// entry en (smartcard.revoca: final at once).
func (n *national) cardRevocation(en *store.Entry) error {
	c, err := n.tx.Card(en.Key)
	if errors.Is(err, store.ErrNotFound) {
		n.revoked = append(n.revoked, revocation{kind: RevokedCard, code: en.Key, final: en.Time, reason: en.Detail, by: en.Actor})
		return nil
	}
	if err != nil {
		return err
	}
	n.revoked = append(n.revoked, revocation{kind: RevokedCard, istat: c.ISTAT, code: c.Serial, cf: c.CF, holder: n.personName(c.CF),
		activated: c.Activated, expires: c.Expires, final: en.Time, reason: en.Detail, by: en.Actor})
	return nil
}

func reasonText(code int, motivo string) string {
	if motivo == "" {
		return pki.ReasonName(code)
	}
	return pki.ReasonName(code) + " (" + motivo + ")"
}

// sortRevocations orders the list by date, then comune, code and serial.
func (n *national) sortRevocations() {
	sort.SliceStable(n.revoked, func(i, j int) bool {
		a, b := n.revoked[i], n.revoked[j]
		if !a.final.Equal(b.final) {
			return a.final.Before(b.final)
		}
		if a.istat != b.istat {
			return a.istat < b.istat
		}
		if a.code != b.code {
			return a.code < b.code
		}
		return a.serial < b.serial
	})
}

func (n *national) revocationRow(t *table, r revocation) error {
	month := r.final.In(n.e.loc()).Format("2006-01")
	return t.data(month, r.kind, r.istat, n.names[r.istat], r.code, r.serial, r.cf, r.holder,
		r.activated, r.expires, r.final, r.reason, r.by)
}

// revocationsSheet writes the Revoche sheet: every revocation of the
// period.
func (n *national) revocationsSheet(f *excelize.File, st *styles) error {
	n.sortRevocations()
	t, err := n.streamed(f, st, revocationCols, RevocationsSheet)
	if err != nil {
		return err
	}
	for _, r := range n.revoked {
		if err := n.revocationRow(t, r); err != nil {
			return err
		}
	}
	return t.finish("Revoche")
}

// revocationCSVs writes revoche-<YYYY-MM>.csv for each month of the
// period: the revocations that became final in that month.
func (n *national) revocationCSVs(ctx context.Context) error {
	months := make([]string, 0, len(n.months))
	for m := range n.months {
		months = append(months, m)
	}
	sort.Strings(months)
	for _, m := range months {
		var buf bytes.Buffer
		t := newTable(revocationCols, n.e.loc())
		if err := t.csvTo(&buf); err != nil {
			return err
		}
		if err := t.header(); err != nil {
			return err
		}
		for _, r := range n.revoked {
			if r.final.In(n.e.loc()).Format("2006-01") != m {
				continue
			}
			if err := n.revocationRow(t, r); err != nil {
				return err
			}
		}
		if err := t.finish(""); err != nil {
			return err
		}
		name := n.e.place(NationalDir, RevocationsName(m))
		if err := n.e.Target.Write(ctx, name, &buf); err != nil {
			return fmt.Errorf("audit: scrittura di %s: %w", name, err)
		}
		n.res.Revocations = append(n.res.Revocations, name)
	}
	return nil
}
