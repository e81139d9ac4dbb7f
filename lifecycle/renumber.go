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
// it, its pending certificate bundles; its workstations keep their codes,
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
		return false, fmt.Errorf("comune %s: il nuovo codice %s è già di un comune censito: nessuno spostamento", from, to)
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	// Workstations are read under the old code before the record moves.
	var ws []*domain.Postazione
	if err := tx.PostazioniOfComune(from, func(p *domain.Postazione) error { ws = append(ws, p); return nil }); err != nil {
		return false, err
	}
	var us []*domain.Utenza
	if err := tx.UtenzeOfComune(from, func(u *domain.Utenza) error { us = append(us, u); return nil }); err != nil {
		return false, err
	}
	var cards []*domain.SmartCard
	if err := tx.AllCards(func(s *domain.SmartCard) error {
		if s.ISTAT == from || s.BlockedBy == from {
			cards = append(cards, s)
		}
		return nil
	}); err != nil {
		return false, err
	}
	bundles, err := tx.PendingBundles()
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
	for _, u := range us {
		if err := tx.DeleteUtenza(from, u.CF); err != nil {
			return false, err
		}
		u.ISTAT = to
		if err := tx.PutUtenza(u); err != nil {
			return false, err
		}
	}
	for _, p := range ws {
		p.ISTAT = to
		if err := tx.PutPostazione(p); err != nil {
			return false, err
		}
	}
	for _, s := range cards {
		if s.ISTAT == from {
			s.ISTAT = to
		}
		if s.BlockedBy == from {
			s.BlockedBy = to
		}
		if err := tx.PutCard(s); err != nil {
			return false, err
		}
	}
	for _, id := range bundles {
		if !strings.HasPrefix(id, from+"/") {
			continue
		}
		b, err := tx.Bundle(id)
		if err != nil {
			return false, err
		}
		if err := tx.DeleteBundle(id); err != nil {
			return false, err
		}
		b.ISTAT = to
		if err := tx.PutBundle(b); err != nil {
			return false, err
		}
	}
	detail := fmt.Sprintf("%s: codice ISTAT %s → %s", c.Name, from, to)
	if oldProvince != province {
		detail += fmt.Sprintf(", provincia %s → %s", oldProvince, province)
	}
	detail += fmt.Sprintf("; %d utenze, %d smart card, %d postazioni (codici invariati)", len(us), len(cards), len(ws))
	return true, tx.Record(src, "comune.codice", "comune", to, detail)
}
