package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"anprsec/domain"
)

// Erasing persons (docs/personal-data.md#erasure) has two steps:
//
//  1. ErasePersons, inside a transaction, deletes what names the persons:
//     their records, the indexes keyed by their codice fiscale, their
//     exceptions and messages, the mappings of their pseudonyms (and of
//     the e-mail addresses only they used); their cards stay, with the
//     pseudonym in place of the codice fiscale. The history is not
//     touched: it names them by pseudonym, now bare.
//  2. Purge removes the old versions that Badger still keeps of what was
//     deleted or rewritten (a deleted key keeps its older values under a
//     deletion marker until a compaction drops both).
//
// A crash between the two leaves the persons erased for every reader and
// their old versions on disk; the next Purge removes them.

// ErasePersons erases the persons cfs (step 1 above) and returns their
// pseudonyms, in the order of cfs. The caller has checked that they have
// no utenza and no card left but REVOCATA ones, and records the history
// entries that name them before calling it (the pseudonyms then still
// resolve).
func (tx *Tx) ErasePersons(cfs []string) ([]string, error) {
	if len(cfs) == 0 {
		return nil, nil
	}
	tokens := make([]string, len(cfs))
	// clear: what each erased value becomes in the records that stay.
	clear := map[string]string{}
	// addrs: the e-mail addresses (pseudonym -> value) of the persons that
	// no other person is linked to.
	addrs := map[string]string{}
	for i, cf := range cfs {
		t, err := tx.erasePerson(cf, addrs)
		if err != nil {
			return nil, err
		}
		tokens[i] = t
		clear[cf] = t
	}
	if err := tx.eraseAddresses(addrs, clear); err != nil {
		return nil, err
	}
	if err := tx.markPurge(); err != nil {
		return nil, err
	}
	if err := tx.pseudonymizeCards(clear); err != nil {
		return nil, err
	}
	if err := tx.eraseMails(clear); err != nil {
		return nil, err
	}
	if err := tx.scrubRest(clear); err != nil {
		return nil, err
	}
	return tokens, nil
}

// erasePerson deletes the person cf's own records and the mapping of his
// pseudonym, which it returns; it adds to addrs his e-mail addresses no
// other person is linked to.
func (tx *Tx) erasePerson(cf string, addrs map[string]string) (string, error) {
	t, err := tx.pseudonymOf(cf)
	if err != nil {
		return "", err
	}
	comuni, err := tx.ComuniOfPerson(cf)
	if err != nil {
		return "", err
	}
	for _, istat := range comuni {
		if err := tx.DeleteUtenza(istat, cf); err != nil { // links its addresses first
			return "", err
		}
	}
	for _, k := range []string{"p/" + cf, cfExceptionPrefix + cf} {
		if err := tx.del(k); err != nil {
			return "", err
		}
	}
	emails, err := tx.indexTail("pl/" + t + "/")
	if err != nil {
		return "", err
	}
	for _, et := range emails {
		if err := tx.del("pl/" + t + "/" + et); err != nil {
			return "", err
		}
		if err := tx.del("po/" + et + "/" + t); err != nil {
			return "", err
		}
		others, err := tx.indexTail("po/" + et + "/")
		if err != nil {
			return "", err
		}
		if len(others) > 0 {
			continue // an address someone else uses too stays
		}
		var em pseudonym
		if err := tx.get("pt/"+et, &em); err == nil {
			addrs[et] = em.Value
		} else if !errors.Is(err, ErrNotFound) {
			return "", err
		}
	}
	return t, tx.eraseMapping(t, cf)
}

// eraseAddresses erases the mappings of the addresses addrs that no
// utenza holds any more (utenze are linked to their addresses only when
// deleted), adding them to clear.
func (tx *Tx) eraseAddresses(addrs, clear map[string]string) error {
	if len(addrs) == 0 {
		return nil
	}
	used := map[string]bool{}
	err := tx.AllUtenze(func(u *domain.Utenza) error {
		used[pseudoKey(u.Email)], used[pseudoKey(u.PEC)] = true, true
		return nil
	})
	if err != nil {
		return err
	}
	for et, v := range addrs {
		if used[v] {
			continue
		}
		clear[v] = et
		if err := tx.eraseMapping(et, v); err != nil {
			return err
		}
	}
	return nil
}

// notScrubbed are the prefixes scrubRest leaves alone: the history (which
// holds pseudonyms only), what ErasePersons handles itself, and the
// records of the persons who stay.
var notScrubbed = []string{"h/", "hl/", "hn/", "pv/", "pt/", "pl/", "po/", "s/", "o/", "i/", "u/", "p/"}

// scrubRest puts the pseudonym in place of an erased codice fiscale or
// e-mail address in every other record that names one (the receipt lines
// of input files, a job's notes): one pass over the store.
func (tx *Tx) scrubRest(clear map[string]string) error {
	type fix struct {
		key string
		val []byte
	}
	var fixes []fix
	err := func() error {
		opt := badger.DefaultIteratorOptions
		opt.PrefetchValues = false // the history's values are not read
		it := tx.txn.NewIterator(opt)
		defer it.Close()
	next:
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := string(item.Key())
			for _, p := range notScrubbed {
				if strings.HasPrefix(k, p) {
					continue next
				}
			}
			err := item.Value(func(v []byte) error {
				if nv, ok := scrub(string(v), clear); ok {
					fixes = append(fixes, fix{k, []byte(nv)})
				}
				return nil
			})
			if err != nil {
				return damaged(k, err)
			}
		}
		return nil
	}()
	if err != nil {
		return err
	}
	for _, f := range fixes {
		if err := tx.setRaw(f.key, f.val); err != nil {
			return err
		}
	}
	return nil
}

// scrub replaces each codice fiscale or e-mail address of s found in clear
// by its pseudonym; ok tells whether it replaced any.
func scrub(s string, clear map[string]string) (string, bool) {
	var b strings.Builder
	last := 0
	for _, sp := range personalSpans(s) {
		t, found := clear[pseudoKey(s[sp[0]:sp[1]])]
		if !found {
			continue
		}
		b.WriteString(s[last:sp[0]])
		b.WriteString(t)
		last = sp[1]
	}
	if last == 0 {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// eraseMapping deletes both records of a pseudonym's mapping.
func (tx *Tx) eraseMapping(token, value string) error {
	delete(tx.pseudo, pseudoKey(value))
	if err := tx.del("pv/" + pseudoKey(value)); err != nil {
		return err
	}
	return tx.del("pt/" + token)
}

// replaceAll replaces each erased value in s by its pseudonym.
func replaceAll(s string, clear map[string]string) string {
	for v, t := range clear {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, t)
		} else if strings.Contains(v, "@") && strings.Contains(strings.ToLower(s), v) {
			s = replaceFold(s, v, t)
		}
	}
	return s
}

// replaceFold replaces every case-insensitive occurrence of lower (in
// lower case) in s by t.
func replaceFold(s, lower, t string) string {
	var b strings.Builder
	ls := strings.ToLower(s)
	for {
		i := strings.Index(ls, lower)
		if i < 0 || len(ls) != len(s) {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(t)
		s, ls = s[i+len(lower):], ls[i+len(lower):]
	}
	b.WriteString(s)
	return b.String()
}

// pseudonymizeCards puts the pseudonym in place of an erased codice fiscale
// in every card: the holder's and the one who took the delivery.
func (tx *Tx) pseudonymizeCards(clear map[string]string) error {
	var cards []*domain.SmartCard
	err := tx.scan("s/", true, func(k string, v []byte) (bool, error) {
		var c domain.SmartCard
		if err := decode(k, v, &c); err != nil {
			return false, err
		}
		_, a := clear[c.CF]
		_, b := clear[c.DeliveredTo]
		if a || b || c.Reason != replaceAll(c.Reason, clear) {
			cards = append(cards, &c)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, c := range cards {
		if t, ok := clear[c.CF]; ok {
			c.CF = t
		}
		if t, ok := clear[c.DeliveredTo]; ok {
			c.DeliveredTo = t
		}
		c.Reason = replaceAll(c.Reason, clear)
		if err := tx.PutCard(c); err != nil {
			return err
		}
	}
	return nil
}

// eraseMails deletes the messages about an erased person and puts
// pseudonyms in place of erased values in the others.
func (tx *Tx) eraseMails(clear map[string]string) error {
	type change struct {
		m   *Mail
		del bool
	}
	var changes []change
	err := tx.scan("o/", true, func(k string, v []byte) (bool, error) {
		var m Mail
		if err := decode(k, v, &m); err != nil {
			return false, err
		}
		if _, ok := clear[m.CF]; ok {
			changes = append(changes, change{&m, true})
			return true, nil
		}
		if replaceAll(string(v), clear) != string(v) {
			changes = append(changes, change{&m, false})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		m := c.m
		if c.del {
			if err := tx.setIndexes(mailIndexes(m), nil); err != nil {
				return err
			}
			if err := tx.del("o/" + m.ID); err != nil {
				return err
			}
			continue
		}
		if _, ok := clear[pseudoKey(m.To)]; ok && m.State == MailQueued {
			m.State, m.LastError = MailFailed, "destinatario cancellato" // no address to write to any more
		}
		m.To, m.Subject, m.Text, m.LastError = replaceAll(m.To, clear), replaceAll(m.Subject, clear), replaceAll(m.Text, clear), replaceAll(m.LastError, clear)
		if err := tx.PutMail(m); err != nil {
			return err
		}
	}
	return nil
}

// purgeMarker is a key written and dropped at once by Purge, so that
// DropPrefix has something to drop: dropping it flushes the memtables.
const purgeMarker = "m/purge-marker"

// purgeDueKey marks that records holding personal data were deleted or
// rewritten since the last complete Purge: set in the transaction that
// deletes them, cleared by the Purge that leaves no old version.
const purgeDueKey = "m/purge-due"

// markPurge sets purgeDueKey in the transaction.
func (tx *Tx) markPurge() error { return tx.setRaw(purgeDueKey, []byte(tx.Now.Format(time.RFC3339))) }

// purgeStep, set by the kill -9 tests, is called after each step of Purge.
var purgeStep func(step string)

// PurgeResult says what Purge left.
type PurgeResult struct {
	// Done is false when there was nothing to purge: no record holding
	// personal data was deleted or rewritten since the last complete
	// purge (the tree is not compacted then).
	Done bool
	// Left counts the old versions and deletion markers still stored after
	// the compaction (0 when it removed them all): Badger keeps a version a
	// reader open during the compaction could still see. The next Purge
	// removes them.
	Left int
}

// Purge physically removes the old versions of every record (step 2
// above): with writers held off, it flushes the memtables to disk and
// compacts the level-0 tables (DropPrefix of a marker key), compacts the
// tree into one level (Flatten), which drops the versions older than the
// newest and the deletions, and then rewrites the value-log files made
// mostly of dead values (RunValueLogGC). It counts what is left. It does
// all this only when a record holding personal data was deleted or
// rewritten since the last purge that left nothing (purgeDueKey): the
// compaction rewrites most of the tree.
func (s *Store) Purge() (PurgeResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	due := false
	if err := s.View(func(tx *Tx) error {
		var err error
		due, err = tx.exists(purgeDueKey)
		return err
	}); err != nil || !due {
		return PurgeResult{}, err
	}
	err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(purgeMarker), nil) })
	if err != nil {
		return PurgeResult{}, err
	}
	if err := s.db.DropPrefix([]byte(purgeMarker)); err != nil {
		return PurgeResult{}, fmt.Errorf("store: purge: %w", err)
	}
	if purgeStep != nil {
		purgeStep("flushed")
	}
	if err := s.db.Flatten(2); err != nil {
		return PurgeResult{}, fmt.Errorf("store: purge: %w", err)
	}
	if purgeStep != nil {
		purgeStep("flattened")
	}
	for s.db.RunValueLogGC(0.5) == nil {
	}
	n, err := s.deadVersions()
	if err != nil || n > 0 {
		return PurgeResult{Done: true, Left: n}, err
	}
	err = s.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(purgeDueKey)) })
	return PurgeResult{Done: true}, err
}

// deadVersions counts the stored versions that no reader sees any more:
// every version of a key but its newest, and a newest that is a deletion.
func (s *Store) deadVersions() (int, error) {
	n := 0
	err := s.EachVersion(func(key []byte, newest, deleted bool) error {
		if !newest || deleted {
			n++
		}
		return nil
	})
	return n, err
}

// EachVersion calls fn for every version Badger stores of every key,
// deleted ones included, newest first within a key: what an inspection of
// the files would find.
func (s *Store) EachVersion(fn func(key []byte, newest, deleted bool) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.AllVersions = true
		opt.PrefetchValues = false
		it := txn.NewIterator(opt)
		defer it.Close()
		var last []byte
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			newest := last == nil || string(k) != string(last)
			last = item.KeyCopy(last[:0])
			if err := fn(k, newest, item.IsDeletedOrExpired()); err != nil {
				return err
			}
		}
		return nil
	})
}

// RawScanAllVersions calls fn with every version of every key and its value
// (nil for a deletion), as Badger stores them: for tests that look for
// personal data left in old versions. fn must not keep the slices.
func (s *Store) RawScanAllVersions(fn func(key, value []byte, deleted bool) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.AllVersions = true
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if item.IsDeletedOrExpired() {
				if err := fn(item.Key(), nil, true); err != nil {
					return err
				}
				continue
			}
			err := item.Value(func(v []byte) error { return fn(item.Key(), v, false) })
			if err != nil {
				return err
			}
		}
		return nil
	})
}
