package lifecycle

import (
	"errors"
	"fmt"
	"strings"

	"anprsec/domain"
	"anprsec/store"
)

// RenumberComune moves a censused comune from ISTAT code from to code to
// (province the 3-digit code of its province now) in one transaction of
// tx, after an update of the table of comuni gave it a new code
// (docs/rules.md#comune-renumbering): its record (which keeps from among
// its earlier codes), its utenze, the cards requested or blocked through
// it, its pending certificate bundles and STATO reports; its workstations keep their codes,
// which their certificates carry, and belong to the comune's new code. A
// comune never censused under from is no error (moved false); a comune
// already censused under to is refused, nothing changed.
func RenumberComune(tx *store.Tx, src store.Source, from, to, province string) (moved bool, err error) {
	c, err := tx.Comune(from)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := tx.Comune(to); err == nil {
		return false, fmt.Errorf("comune %s: il nuovo codice %s è già di un comune censito: nessuna modifica", from, to)
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	// Everything is read under the old code before the record moves.
	m, err := readMove(tx, from)
	if err != nil {
		return false, err
	}
	oldProvince := c.Province
	c.PrevISTAT = append(c.PrevISTAT, from)
	c.ISTAT, c.Province, c.Updated = to, province, tx.Now
	if err := tx.DeleteComune(from); err != nil {
		return false, err
	}
	if err := tx.PutComune(c); err != nil {
		return false, err
	}
	if err := m.apply(tx, from, to); err != nil {
		return false, err
	}
	detail := fmt.Sprintf("%s: codice ISTAT %s → %s", c.Name, from, to)
	if oldProvince != province {
		detail += fmt.Sprintf(", provincia %s → %s", oldProvince, province)
	}
	detail += fmt.Sprintf("; %d utenze, %d smart card, %d postazioni (codici invariati)", len(m.utenze), len(m.cards), len(m.postazioni))
	return true, tx.Record(src, "comune.codice", "comune", to, detail)
}

// comuneMove is what moves with a comune that changes ISTAT code.
type comuneMove struct {
	utenze     []*domain.Utenza
	postazioni []*domain.Postazione
	cards      []*domain.SmartCard
	bundles    []*store.Bundle
	reports    []*store.StatusReport // pending STATO reports
}

// readMove reads the utenze, workstations, cards (requested or blocked
// through it), pending bundles and pending STATO reports of comune from.
func readMove(tx *store.Tx, from string) (*comuneMove, error) {
	m := &comuneMove{}
	if err := tx.PostazioniOfComune(from, func(p *domain.Postazione) error { m.postazioni = append(m.postazioni, p); return nil }); err != nil {
		return nil, err
	}
	if err := tx.UtenzeOfComune(from, func(u *domain.Utenza) error { m.utenze = append(m.utenze, u); return nil }); err != nil {
		return nil, err
	}
	if err := tx.AllCards(func(s *domain.SmartCard) error {
		if s.ISTAT == from || s.BlockedBy == from {
			m.cards = append(m.cards, s)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	ids, err := tx.PendingBundles()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, from+"/") {
			continue
		}
		b, err := tx.Bundle(id)
		if err != nil {
			return nil, err
		}
		m.bundles = append(m.bundles, b)
	}
	if ids, err = tx.PendingStatusReports(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, from+"/") {
			continue
		}
		r, err := tx.StatusReport(id)
		if err != nil {
			return nil, err
		}
		m.reports = append(m.reports, r)
	}
	return m, nil
}

// apply rewrites what m read under code to.
func (m *comuneMove) apply(tx *store.Tx, from, to string) error {
	for _, u := range m.utenze {
		if err := tx.DeleteUtenza(from, u.CF); err != nil {
			return err
		}
		u.ISTAT = to
		if err := tx.PutUtenza(u); err != nil {
			return err
		}
	}
	for _, p := range m.postazioni {
		p.ISTAT = to
		if err := tx.PutPostazione(p); err != nil {
			return err
		}
	}
	for _, s := range m.cards {
		if s.ISTAT == from {
			s.ISTAT = to
		}
		if s.BlockedBy == from {
			s.BlockedBy = to
		}
		if err := tx.PutCard(s); err != nil {
			return err
		}
	}
	for _, b := range m.bundles {
		if err := tx.DeleteBundle(b.ID()); err != nil {
			return err
		}
		b.ISTAT = to
		if err := tx.PutBundle(b); err != nil {
			return err
		}
	}
	for _, r := range m.reports {
		if err := tx.DeleteStatusReport(r.ID()); err != nil {
			return err
		}
		r.ISTAT = to
		if err := tx.PutStatusReport(r); err != nil {
			return err
		}
	}
	return nil
}
