package store

import (
	badger "github.com/dgraph-io/badger/v4"
)

// Version is the commit timestamp of the newest write in the store:
// RawScanSince(Version()) later yields what the commits after this call
// wrote.
func (s *Store) Version() uint64 { return s.db.MaxVersion() }

// RawScanSince calls fn with every key whose newest version was committed
// after version, and its value as Badger holds it (after decryption at
// rest). Keys deleted since are not reported. fn must not keep the slices.
func (s *Store) RawScanSince(version uint64, fn func(key, value []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if item.Version() <= version {
				continue
			}
			if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// RawWrite writes the key-values that next yields with one Badger
// WriteBatch, outside any transaction, history or index: the cheapest way
// Badger has to write the same bytes. The national benchmark measures a
// job's commits against it (README, "Performance"); nothing else writes
// through it.
func (s *Store) RawWrite(next func() (key, value []byte, ok bool)) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for {
		k, v, ok := next()
		if !ok {
			break
		}
		if err := wb.Set(k, v); err != nil {
			return err
		}
	}
	return wb.Flush()
}
