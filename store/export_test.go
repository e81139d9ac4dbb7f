package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

// tamperForTest rewrites an entry's body without fixing the chain.
func (s *Store) tamperForTest(seq uint64, detail string) error {
	return s.db.Update(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.Prefix = []byte("h/")
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().KeyCopy(nil)
			val, _ := it.Item().ValueCopy(nil)
			n := binary.BigEndian.Uint64(key[2:])
			var out []byte
			found := false
			eachRecord(val, func(p, h, body []byte) error {
				if n == seq {
					var e Entry
					json.Unmarshal(body, &e)
					e.Detail = detail
					body, _ = json.Marshal(e)
					found = true
				}
				var l [4]byte
				binary.BigEndian.PutUint32(l[:], uint32(len(body)))
				out = append(append(append(append(out, p...), h...), l[:]...), body...)
				n++
				return nil
			})
			if found {
				return txn.Set(key, out)
			}
		}
		return errors.New("entry not found")
	})
}

// deleteBlockForTest removes the history block starting at entry first.
func (s *Store) deleteBlockForTest(first uint64) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(histKey(first))) })
}
