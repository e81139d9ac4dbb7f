package store

// CacheReads makes tx keep the values it reads, so that a record read
// again in the same transaction (a check reads the card, the change that
// follows reads it again to update its indexes) is not looked up in the
// tables again. A transaction sees one snapshot plus its own writes, and a
// key it writes or deletes is dropped from what it keeps, so a read gives
// the same result with or without it. What it keeps is bounded
// (maxCachedReads keys: past that the oldest reads are forgotten all at
// once), for the long transactions of an import that reads many records.
func (tx *Tx) CacheReads() {
	if tx.reads == nil {
		tx.reads = &readCache{vals: make(map[string]cachedRead)}
	}
}

// maxCachedReads bounds the keys a transaction with CacheReads keeps.
const maxCachedReads = 2048

// readCache is what a transaction with CacheReads read: the value, or that
// the key was not there. A nil *readCache keeps nothing.
type readCache struct {
	vals map[string]cachedRead
}

type cachedRead struct {
	val   []byte
	found bool
}

// lookup returns the value read before for key (found false: the key was
// not there); ok is false when key was not read before.
func (c *readCache) lookup(key string) (val []byte, found, ok bool) {
	if c == nil {
		return nil, false, false
	}
	r, ok := c.vals[key]
	return r.val, r.found, ok
}

// keep records what a read of key gave. The value is the caller's copy:
// readers only decode it.
func (c *readCache) keep(key string, val []byte, found bool) {
	if c == nil {
		return
	}
	if len(c.vals) >= maxCachedReads {
		clear(c.vals)
	}
	c.vals[key] = cachedRead{val: val, found: found}
}

// forget drops key, written or deleted by the transaction.
func (c *readCache) forget(key string) {
	if c != nil {
		delete(c.vals, key)
	}
}
