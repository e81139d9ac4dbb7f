package store

import (
	"encoding/json"

	badger "github.com/dgraph-io/badger/v4"
)

// tamperForTest rewrites an entry's body without fixing the chain.
func (s *Store) tamperForTest(seq uint64, detail string) error {
	return s.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(histKey(seq)))
		if err != nil {
			return err
		}
		val, _ := it.ValueCopy(nil)
		var e Entry
		json.Unmarshal(val[64:], &e)
		e.Detail = detail
		body, _ := json.Marshal(e)
		return txn.Set([]byte(histKey(seq)), append(val[:64:64], body...))
	})
}
