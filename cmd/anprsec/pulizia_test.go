package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/rogpeppe/go-internal/testscript"

	"anprsec/secret"
	"anprsec/store"
)

// TestPuliziaScripts runs the stories of testdata/pulizia/*.txt: a
// cancelled utenza and its person erased by pulizia-persone, with the
// history and the checkpoints published before still verifying, on a store
// whose history was made before pseudonyms (storiainchiaro).
func TestPuliziaScripts(t *testing.T) {
	p := scriptParams("testdata/pulizia")
	p.Cmds["storiainchiaro"] = cmdClearHistory
	p.Cmds["cercadati"] = cmdFindPersonalData
	testscript.Run(t, p)
}

// openRawStore opens var/data with Badger alone, as whoever holds the
// store key can.
func openRawStore(ts *testscript.TestScript) *badger.DB {
	key, err := secret.ReadKey(ts.MkAbs("var/keys/store.key"))
	ts.Check(err)
	db, err := badger.Open(badger.DefaultOptions(ts.MkAbs("var/data")).WithEncryptionKey(key).WithIndexCacheSize(32 << 20).WithLogger(nil))
	ts.Check(err)
	return db
}

// storiainchiaro
//
// turns the store into one made before pseudonyms: every pseudonym in the
// history bodies is replaced by the value it stands for, the chain and
// head are recomputed as the store computes them, and the pseudonym
// records and the mark of a pseudonymised history are deleted.
func cmdClearHistory(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: storiainchiaro")
	}
	db := openRawStore(ts)
	defer func() { ts.Check(db.Close()) }()
	ts.Check(db.Update(func(txn *badger.Txn) error {
		values := map[string]string{}
		var drop [][]byte
		for _, pre := range []string{"pt/", "pv/"} {
			opt := badger.DefaultIteratorOptions
			opt.Prefix = []byte(pre)
			it := txn.NewIterator(opt)
			for it.Rewind(); it.Valid(); it.Next() {
				k := it.Item().KeyCopy(nil)
				drop = append(drop, k)
				if pre == "pt/" {
					v, err := it.Item().ValueCopy(nil)
					if err != nil {
						it.Close()
						return err
					}
					var m struct {
						V string `json:"v"`
					}
					if err := json.Unmarshal(v, &m); err != nil {
						it.Close()
						return err
					}
					values[strings.TrimPrefix(string(k), "pt/")] = m.V
				}
			}
			it.Close()
		}
		opt := badger.DefaultIteratorOptions
		opt.Prefix = []byte("h/")
		it := txn.NewIterator(opt)
		defer it.Close()
		prev := make([]byte, sha256.Size)
		var seq uint64
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			block, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			var out []byte
			for len(block) > 0 { // prev(32) | hash(32) | length(4) | body
				n := binary.BigEndian.Uint32(block[64:68])
				var e store.Entry
				if err := json.Unmarshal(block[68:68+n], &e); err != nil {
					return err
				}
				block = block[68+n:]
				for tok, v := range values {
					e.Actor = strings.ReplaceAll(e.Actor, tok, v)
					e.Key = strings.ReplaceAll(e.Key, tok, v)
					e.Detail = strings.ReplaceAll(e.Detail, tok, v)
				}
				body, err := json.Marshal(e)
				if err != nil {
					return err
				}
				seq++
				h := sha256.Sum256(append(append([]byte{}, prev...), body...))
				var l [4]byte
				binary.BigEndian.PutUint32(l[:], uint32(len(body)))
				out = append(append(append(append(out, prev...), h[:]...), l[:]...), body...)
				prev = h[:]
			}
			if err := txn.Set(k, out); err != nil {
				return err
			}
		}
		head, err := json.Marshal(struct {
			Seq  uint64 `json:"seq"`
			Hash []byte `json:"hash"`
		}{seq, prev})
		if err != nil {
			return err
		}
		if err := txn.Set([]byte("m/hist-head"), head); err != nil {
			return err
		}
		for _, k := range append(drop, []byte("m/hist-pseudo")) {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}))
}

// cercadati TEXT...
//
// looks for each TEXT (case-insensitive) in every key and value of every
// version the store holds, deleted and old ones included; it fails when
// one is found (with !, when none is).
func cmdFindPersonalData(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: cercadati TEXT...")
	}
	db := openRawStore(ts)
	defer func() { ts.Check(db.Close()) }()
	var found []string
	ts.Check(db.View(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.AllVersions = true
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var v []byte
			if !item.IsDeletedOrExpired() {
				var err error
				if v, err = item.ValueCopy(nil); err != nil {
					return err
				}
			}
			k := bytes.ToLower(item.Key())
			v = bytes.ToLower(v)
			for _, a := range args {
				if w := []byte(strings.ToLower(a)); bytes.Contains(k, w) || bytes.Contains(v, w) {
					found = append(found, a+" in "+string(item.Key()))
				}
			}
		}
		return nil
	}))
	switch {
	case len(found) > 0 && !neg:
		ts.Fatalf("personal data in the store:\n%s", strings.Join(found, "\n"))
	case len(found) == 0 && neg:
		ts.Fatalf("none of %v in the store", args)
	}
}
