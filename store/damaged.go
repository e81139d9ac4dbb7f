package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ErrDamaged is wrapped by the error of a stored value that cannot be read
// back (docs/rules.md#history): a value the value log no longer holds
// whole, or that does not decode. The error names the record's kind and
// key and the commands that tell more, so that a job reading it fails
// naming it instead of reporting ok.
var ErrDamaged = errors.New("l'archivio è danneggiato")

// kinds names the records by the prefix of their keys.
var kinds = []struct{ prefix, kind string }{
	{"c/", "comune"}, {"p/", "persona"}, {"u/", "utenza"}, {"s/", "smart card"}, {"w/", "postazione"},
	{"h/", "history block"}, {"f/", "input file"}, {"r/", "job run"}, {"rl/", "last job run"},
	{"m/", "meta"}, {"k/", "pooled key"}, {"co/", "card order"}, {"b/", "certificate bundle"},
	{"o/", "outbox mail"}, {"q/", "sequence"}, {"sr/", "status report"}, {"i/", "index"}, {"ri/", "installation"},
	{"av/", "notice campaign"}, {"avc/", "comune of a notice campaign"}, {"avl/", "user list of a notice campaign"},
	{"pv/", "pseudonym"}, {"pt/", "pseudonym mapping"}, {"pl/", "pseudonym link"}, {"po/", "pseudonym link"}, {"hn/", "rewritten history block"}, {"hl/", "old history hashes"},
}

// describeKey returns a record key as an operator can read it, with its
// kind: "postazione 058091-PC-0001", "history block from entry 15".
func describeKey(key string) string {
	for _, k := range kinds {
		rest, ok := strings.CutPrefix(key, k.prefix)
		if !ok {
			continue
		}
		if k.prefix == "h/" && len(rest) == 8 {
			return fmt.Sprintf("%s from entry %d", k.kind, binary.BigEndian.Uint64([]byte(rest)))
		}
		return k.kind + " " + printable(rest)
	}
	return "record " + printable(key)
}

func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// damaged wraps err, met reading the value of key, with ErrDamaged.
func damaged(key string, err error) error {
	return fmt.Errorf("%w: %s non si può leggere (%v); eseguire `anprsec history verify` per verificare lo storico, e ripristinare l'ultimo backup (`anprsec restore`) in una cartella dati vuota",
		ErrDamaged, describeKey(key), err)
}

// decode unmarshals the stored value of key into v; a value that does not
// decode is ErrDamaged, naming the record.
func decode(key string, val []byte, v any) error {
	if decodeRecord(val, v) {
		return nil
	}
	if err := json.Unmarshal(val, v); err != nil {
		return damaged(key, err)
	}
	return nil
}
