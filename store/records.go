package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"anprsec/domain"
)

// Key layout (one letter per record kind, "i/" for indexes):
//
//	c/<istat>                 comune
//	p/<cf>                    person
//	u/<istat>/<cf>            utenza          i/u-cf/<cf>/<istat>
//	s/<serial>                smart card      i/s-cf/<cf>/<serial>, i/s-st/<state>/<serial>
//	w/<code>                  postazione      i/w-st/<state>/<code>, i/w-sn/<serial> (serials.go)
//	f/<sha256>                input file      (+ f/<sha256>/e/<chunk> esito lines of committed chunks)
//	r/<job>/<start>           job run         (+ rl/<job> last run)
//	h/<seq>                   history entry   (+ m/hist-head)
//	q/<name>                  counters

// Comune returns a comune by ISTAT code.
func (tx *Tx) Comune(istat string) (*domain.Comune, error) {
	var c domain.Comune
	return &c, tx.get("c/"+istat, &c)
}

// PutComune stores a comune.
func (tx *Tx) PutComune(c *domain.Comune) error { return tx.set("c/"+c.ISTAT, c) }

// DeleteComune removes the record of a comune (its utenze and workstations
// are not touched).
func (tx *Tx) DeleteComune(istat string) error { return tx.del("c/" + istat) }

// Comuni calls fn for each comune in ISTAT order.
func (tx *Tx) Comuni(fn func(*domain.Comune) error) error {
	return tx.scan("c/", true, func(k string, v []byte) (bool, error) {
		var c domain.Comune
		if err := decode(k, v, &c); err != nil {
			return false, err
		}
		return true, fn(&c)
	})
}

// Person returns a person by codice fiscale.
func (tx *Tx) Person(cf string) (*domain.Person, error) {
	var p domain.Person
	return &p, tx.get("p/"+cf, &p)
}

// PutPerson stores a person.
func (tx *Tx) PutPerson(p *domain.Person) error { return tx.set("p/"+p.CF, p) }

func utenzaKey(istat, cf string) string { return "u/" + istat + "/" + cf }

// Utenza returns the utenza of cf in comune istat.
func (tx *Tx) Utenza(istat, cf string) (*domain.Utenza, error) {
	var u domain.Utenza
	return &u, tx.get(utenzaKey(istat, cf), &u)
}

// PutUtenza stores an utenza and its by-CF index.
func (tx *Tx) PutUtenza(u *domain.Utenza) error {
	if err := tx.setRaw("i/u-cf/"+u.CF+"/"+u.ISTAT, nil); err != nil {
		return err
	}
	return tx.set(utenzaKey(u.ISTAT, u.CF), u)
}

// DeleteUtenza removes an utenza and its index, linking first its e-mail
// addresses to the person's pseudonym, so that erasing him later erases
// them too (docs/personal-data.md#pseudonyms).
func (tx *Tx) DeleteUtenza(istat, cf string) error {
	u, err := tx.Utenza(istat, cf)
	if err == nil {
		err = tx.linkEmails(cf, u.Email, u.PEC)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.markPurge(); err != nil {
		return err
	}
	if err := tx.del("i/u-cf/" + cf + "/" + istat); err != nil {
		return err
	}
	return tx.del(utenzaKey(istat, cf))
}

// UtenzeOfComune calls fn for each utenza of a comune, in CF order.
func (tx *Tx) UtenzeOfComune(istat string, fn func(*domain.Utenza) error) error {
	return tx.scan("u/"+istat+"/", true, func(k string, v []byte) (bool, error) {
		var u domain.Utenza
		if err := decode(k, v, &u); err != nil {
			return false, err
		}
		return true, fn(&u)
	})
}

// ComuniOfPerson returns the ISTAT codes where cf has an utenza.
func (tx *Tx) ComuniOfPerson(cf string) ([]string, error) {
	var out []string
	p := "i/u-cf/" + cf + "/"
	err := tx.scan(p, false, func(k string, _ []byte) (bool, error) {
		out = append(out, strings.TrimPrefix(k, p))
		return true, nil
	})
	return out, err
}

func cardIndexes(c *domain.SmartCard) []string {
	return []string{"i/s-cf/" + c.CF + "/" + c.Serial, "i/s-st/" + string(c.State) + "/" + c.Serial}
}

// Card returns a smart card by serial.
func (tx *Tx) Card(serial string) (*domain.SmartCard, error) {
	var c domain.SmartCard
	return &c, tx.get("s/"+serial, &c)
}

// PutCard stores a smart card and keeps its indexes.
func (tx *Tx) PutCard(c *domain.SmartCard) error {
	old, err := tx.storedCardIndexes(c.Serial)
	if err != nil {
		return err
	}
	if err := tx.setIndexes(old, cardIndexes(c)); err != nil {
		return err
	}
	return tx.set("s/"+c.Serial, c)
}

// InsertCard stores a card with a new serial (no previous version to
// unindex).
func (tx *Tx) InsertCard(c *domain.SmartCard) error {
	if ok, err := tx.exists("s/" + c.Serial); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("store: smart card %s exists already", c.Serial)
	}
	if err := tx.setIndexes(nil, cardIndexes(c)); err != nil {
		return err
	}
	return tx.set("s/"+c.Serial, c)
}

// CardsOfPerson returns the serials of every card of cf, oldest first.
func (tx *Tx) CardsOfPerson(cf string) ([]string, error) {
	return tx.indexTail("i/s-cf/" + cf + "/")
}

// CardsInState returns the serials of the cards in a state.
func (tx *Tx) CardsInState(st domain.CardState) ([]string, error) {
	return tx.indexTail("i/s-st/" + string(st) + "/")
}

func (tx *Tx) indexTail(prefix string) ([]string, error) {
	var out []string
	err := tx.scan(prefix, false, func(k string, _ []byte) (bool, error) {
		out = append(out, strings.TrimPrefix(k, prefix))
		return true, nil
	})
	return out, err
}

func postIndexes(p *domain.Postazione) []string {
	ix := []string{"i/w-st/" + string(p.State) + "/" + p.Code}
	if p.Renewal != nil {
		ix = append(ix, renewalIndex+p.Code)
	}
	if len(p.Predecessors) > 0 {
		ix = append(ix, predIndex+p.Code)
	}
	return ix
}

// Indexes of renewals (docs/rules.md#renewal): the postazioni with a
// pending renewal, and those with predecessors (certificates replaced by a
// renewal, in the CRL once superseded).
const (
	renewalIndex = "i/w-rin/"
	predIndex    = "i/w-pred/"
)

// PostazioniToRenew returns the codes of the postazioni with a pending
// renewal, in code order.
func (tx *Tx) PostazioniToRenew() ([]string, error) { return tx.indexTail(renewalIndex) }

// PostazioniWithPredecessors returns the codes of the postazioni that have
// certificates replaced by a renewal, in code order.
func (tx *Tx) PostazioniWithPredecessors() ([]string, error) { return tx.indexTail(predIndex) }

// Postazione returns a workstation by code.
func (tx *Tx) Postazione(code string) (*domain.Postazione, error) {
	var p domain.Postazione
	return &p, tx.get("w/"+code, &p)
}

// PutPostazione stores a workstation and keeps its state index and the
// index of its certificate's serial (PostazioneBySerial).
func (tx *Tx) PutPostazione(p *domain.Postazione) error {
	var old []string
	prev, err := tx.Postazione(p.Code)
	if err == nil {
		old = postIndexes(prev)
	} else if errors.Is(err, ErrNotFound) {
		prev = nil
	} else {
		return err
	}
	if err := tx.setIndexes(old, postIndexes(p)); err != nil {
		return err
	}
	if err := tx.putSerialIndex(prev, p); err != nil {
		return err
	}
	return tx.set("w/"+p.Code, p)
}

// PostazioniOfComune calls fn for each workstation of a comune, in code
// order: those coded under its ISTAT code and, for a comune that changed
// code, those still coded under its earlier ones (domain.Comune.PrevISTAT).
func (tx *Tx) PostazioniOfComune(istat string, fn func(*domain.Postazione) error) error {
	prefixes := []string{istat}
	if c, err := tx.Comune(istat); err == nil {
		prefixes = c.Codes()
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	var ws []*domain.Postazione
	for _, pre := range prefixes {
		if err := tx.scan("w/"+pre+"-", true, func(k string, v []byte) (bool, error) {
			var p domain.Postazione
			if err := decode(k, v, &p); err != nil {
				return false, err
			}
			if p.ISTAT == istat {
				ws = append(ws, &p)
			}
			return true, nil
		}); err != nil {
			return err
		}
	}
	slices.SortFunc(ws, func(a, b *domain.Postazione) int { return strings.Compare(a.Code, b.Code) })
	for _, p := range ws {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// PostazioniInState returns the codes of the workstations in a state.
func (tx *Tx) PostazioniInState(st domain.CertState) ([]string, error) {
	return tx.indexTail("i/w-st/" + string(st) + "/")
}

// EachPostazioneIn calls fn for each workstation in each of the states, in
// the order of the states and, within one, of the codes.
func (tx *Tx) EachPostazioneIn(states []domain.CertState, fn func(*domain.Postazione) error) error {
	for _, st := range states {
		codes, err := tx.PostazioniInState(st)
		if err != nil {
			return err
		}
		for _, code := range codes {
			p, err := tx.Postazione(code)
			if err != nil {
				return fmt.Errorf("postazione %s: %w", code, err)
			}
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// EachCardIn calls fn for each smart card in each of the states, in the
// order of the states and, within one, of the serials.
func (tx *Tx) EachCardIn(states []domain.CardState, fn func(*domain.SmartCard) error) error {
	for _, st := range states {
		serials, err := tx.CardsInState(st)
		if err != nil {
			return err
		}
		for _, s := range serials {
			c, err := tx.Card(s)
			if err != nil {
				return fmt.Errorf("smart card %s: %w", s, err)
			}
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// Count returns the number of keys under a record prefix ("c/", "u/", ...).
func (tx *Tx) Count(prefix string) (int, error) {
	n := 0
	err := tx.scan(prefix, false, func(string, []byte) (bool, error) { n++; return true, nil })
	return n, err
}
