package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"

	"anprsec/codfisc"
)

// Pseudonyms of the history (docs/personal-data.md#pseudonyms). The chained
// body of a history entry never holds a codice fiscale or an e-mail
// address: Record replaces each with a pseudonym, "P:" and 16 base32
// letters, the first 80 bits of HMAC-SHA256(salt, value) under a random
// salt drawn for that value. The pseudonym's mapping lives apart from the
// chain, in two records that may be erased without touching it:
//
//	pv/<value>                 the pseudonym and salt of a value (Record's lookup)
//	pt/<pseudonym>             the value and salt (the read path's lookup)
//	pl/<person>/<address>      a person uses an e-mail address (pseudonyms)
//	po/<address>/<person>      the same link, by address
//
// Reading the history resolves a pseudonym while its mapping exists and
// shows it bare once the person is erased (ErasePersons). A mapping is
// checked against its own HMAC, so a mapping edited to name someone else
// is not believed.

// PseudonymPrefix starts every pseudonym.
const PseudonymPrefix = "P:"

// pseudonymLen is the length of a pseudonym: "P:" and 16 base32 letters.
const pseudonymLen = len(PseudonymPrefix) + 16

var pseudoEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// pseudonym is the stored mapping of one value.
type pseudonym struct {
	Token string `json:"t,omitempty"` // in pv/ only
	Value string `json:"v,omitempty"` // in pt/ only
	Salt  []byte `json:"s"`
}

func pseudoToken(salt []byte, value string) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(value))
	return PseudonymPrefix + pseudoEnc.EncodeToString(m.Sum(nil)[:10])
}

// pseudoKey is the normal form of a value in the pv/ key: a codice fiscale
// as it is, an e-mail address in lower case.
func pseudoKey(value string) string {
	if strings.Contains(value, "@") {
		return strings.ToLower(value)
	}
	return value
}

// pseudonymOf returns the pseudonym of value, drawing one (and storing its
// mapping) the first time.
func (tx *Tx) pseudonymOf(value string) (string, error) {
	k := pseudoKey(value)
	if t, ok := tx.pseudo[k]; ok {
		return t, nil
	}
	var p pseudonym
	err := tx.get("pv/"+k, &p)
	if err == nil {
		tx.cachePseudo(k, p.Token)
		return p.Token, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	// 80 bits: two values of one store share a pseudonym with a chance of
	// about n²/2⁸¹ (10⁻¹² for a million values), not worth a lookup per
	// new value.
	t := drawnToken(salt, k)
	if err := tx.setRaw("pv/"+k, pseudonymJSON(&pseudonym{Token: t, Salt: salt})); err != nil {
		return "", err
	}
	if err := tx.setRaw("pt/"+t, pseudonymJSON(&pseudonym{Value: k, Salt: salt})); err != nil {
		return "", err
	}
	tx.cachePseudo(k, t)
	return t, nil
}

func (tx *Tx) cachePseudo(k, t string) {
	if tx.pseudo == nil {
		tx.pseudo = map[string]string{}
	}
	tx.pseudo[k] = t
}

// linkEmails records that the person cf uses the e-mail addresses emails,
// so that erasing him erases the mappings of the addresses no one else
// uses. The links are keys only (pl/, po/): nothing is read.
func (tx *Tx) linkEmails(cf string, emails ...string) error {
	var pt string
	for _, e := range emails {
		e = strings.TrimSpace(e)
		if e == "" || !strings.Contains(e, "@") {
			continue
		}
		if pt == "" {
			var err error
			if pt, err = tx.pseudonymOf(cf); err != nil {
				return err
			}
		}
		et, err := tx.pseudonymOf(e)
		if err != nil {
			return err
		}
		if err := tx.setRaw("pl/"+pt+"/"+et, nil); err != nil {
			return err
		}
		if err := tx.setRaw("po/"+et+"/"+pt, nil); err != nil {
			return err
		}
	}
	return nil
}

// linkByEntry links the e-mail addresses of a history entry to the person
// its key names, when it names exactly one: "058091/<cf>" with "e-mail
// <address>" in the detail.
func (tx *Tx) linkByEntry(key, detail string) error {
	if !strings.Contains(detail, "@") && !strings.Contains(key, "@") {
		return nil
	}
	var cfs, emails []string
	for _, sp := range personalSpans(key + " " + detail) {
		v := (key + " " + detail)[sp[0]:sp[1]]
		if strings.Contains(v, "@") {
			emails = append(emails, v)
		} else if sp[1] <= len(key) {
			cfs = append(cfs, v)
		}
	}
	if len(cfs) != 1 || len(emails) == 0 {
		return nil
	}
	return tx.linkEmails(cfs[0], emails...)
}

// Pseudonymize replaces every codice fiscale and e-mail address in s by its
// pseudonym, as Record does with the fields of an entry.
func (tx *Tx) Pseudonymize(s string) (string, error) {
	spans := personalSpans(s)
	if len(spans) == 0 {
		return s, nil
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		t, err := tx.pseudonymOf(s[sp[0]:sp[1]])
		if err != nil {
			return "", err
		}
		b.WriteString(s[last:sp[0]])
		b.WriteString(t)
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

func isLocalChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("._%+-'", c) >= 0
}

func isDomainChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// personalSpans returns the byte ranges of s that hold a codice fiscale (16
// letters and digits standing alone that codfisc.Parse accepts) or an
// e-mail address (local@domain with a dot in the domain), in order.
func personalSpans(s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); {
		c := s[i]
		if c == '@' {
			out = emailSpan(s, i, out)
			i++
			continue
		}
		if !isAlnum(c) {
			i++
			continue
		}
		j := i
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		if j-i == codfisc.Length && (j == len(s) || s[j] != '@') && (i < 2 || s[i-2:i] != PseudonymPrefix) {
			if _, err := codfisc.Parse(s[i:j]); err == nil {
				out = append(out, [2]int{i, j})
			}
		}
		i = j
	}
	return out
}

// emailSpan appends the e-mail address around the '@' at at, if there is
// one, dropping a codice fiscale found inside its local part.
func emailSpan(s string, at int, out [][2]int) [][2]int {
	a := at
	for a > 0 && isLocalChar(s[a-1]) {
		a--
	}
	z := at + 1
	for z < len(s) && isDomainChar(s[z]) {
		z++
	}
	for z > at+1 && (s[z-1] == '.' || s[z-1] == '-') {
		z--
	}
	for a < at && (s[a] == '.' || s[a] == '\'') {
		a++
	}
	if a == at || z == at+1 || !strings.Contains(s[at+1:z], ".") {
		return out
	}
	for len(out) > 0 && out[len(out)-1][1] > a {
		out = out[:len(out)-1]
	}
	return append(out, [2]int{a, z})
}

// resolver turns the pseudonyms of history entries back into what they
// stand for, with a cache: one lookup per pseudonym per reading. Past
// bulkAfter distinct pseudonyms (a reading of a large history) it reads
// every mapping in one sequential pass instead, much faster than as many
// random lookups.
type resolver struct {
	tx    *Tx
	cache map[string]string
	all   map[string]pseudonym // every mapping, once loaded
}

// bulkAfter is the number of lookups after which a reading loads every
// mapping.
const bulkAfter = 2048

func (tx *Tx) resolver() *resolver {
	return &resolver{tx: tx, cache: map[string]string{}}
}

// loadAll reads every mapping (pt/).
func (r *resolver) loadAll() error {
	r.all = map[string]pseudonym{}
	return r.tx.each("pt/", func(k string, v []byte) error {
		var p pseudonym
		if err := decode(k, v, &p); err != nil {
			return err
		}
		r.all[strings.TrimPrefix(k, "pt/")] = p
		return nil
	})
}

// resolve returns s with each pseudonym replaced by its value while its
// mapping exists (and holds: its HMAC matches); an erased one stays bare.
func (r *resolver) resolve(s string) (string, error) {
	i := strings.Index(s, PseudonymPrefix)
	if i < 0 {
		return s, nil
	}
	var b strings.Builder
	last := 0
	for i >= 0 {
		if i+pseudonymLen > len(s) {
			break
		}
		t := s[i : i+pseudonymLen]
		v, err := r.lookup(t)
		if err != nil {
			return "", err
		}
		if v != "" {
			b.WriteString(s[last:i])
			b.WriteString(v)
			last = i + pseudonymLen
		}
		n := strings.Index(s[i+len(PseudonymPrefix):], PseudonymPrefix)
		if n < 0 {
			break
		}
		i += len(PseudonymPrefix) + n
	}
	if last == 0 {
		return s, nil
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

func (r *resolver) lookup(t string) (string, error) {
	if v, ok := r.cache[t]; ok {
		return v, nil
	}
	if r.all == nil && len(r.cache) >= bulkAfter && r.tx.pipe == nil {
		if err := r.loadAll(); err != nil {
			return "", err
		}
	}
	var p pseudonym
	found := false
	if r.all != nil {
		p, found = r.all[t]
	} else {
		raw, err := r.tx.getRaw("pt/" + t)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return "", err
		default:
			found = decode("pt/"+t, raw, &p) == nil
		}
	}
	v := ""
	if found && p.Value != "" && pseudoToken(p.Salt, p.Value) == t {
		v = p.Value
	}
	r.cache[t] = v
	return v, nil
}

// resolveEntry resolves the fields of e that may carry pseudonyms.
func (r *resolver) resolveEntry(e *Entry) error {
	for _, f := range []*string{&e.Actor, &e.Key, &e.Detail} {
		v, err := r.resolve(*f)
		if err != nil {
			return err
		}
		*f = v
	}
	return nil
}

// PseudonymOf returns the pseudonym the history uses for a codice fiscale
// or e-mail address, "" when it has none (never recorded, or erased).
func (tx *Tx) PseudonymOf(value string) (string, error) {
	var p pseudonym
	err := tx.get("pv/"+pseudoKey(value), &p)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return p.Token, err
}
