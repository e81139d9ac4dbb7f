// Package store keeps anprsec's state in an embedded Badger database,
// encrypted at rest: typed records with secondary indexes, the
// tamper-evident history chain, input-file checkpoints and job runs. Every
// change goes through Update, which appends history entries in the same
// transaction as the records they describe.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/ristretto/v2/z"

	"anprsec/secret"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("non trovato")

// ErrLocked is returned when another process holds the store.
var ErrLocked = errors.New("l'archivio è in uso da un altro processo anprsec (`anprsec run` è attivo?)")

// Store is the open database.
type Store struct {
	db       *badger.DB
	mu       *sync.Mutex // serializes writers: the history chain is linear
	now      func() time.Time
	borrowed bool // a handle of Borrow: Close leaves the store open
	allocs   *z.AllocatorPool
	maps     *badgerMaps // nil in memory
	keeper   *keeper     // nil in memory and on a Borrow handle
}

// memTableSize is the size of Badger's memtables: 16 MB, two of them (the
// one written and the one being flushed), each taking some 20 MB of heap.
// Badger bounds a transaction at 15% of it (2.4 MB): the jobs commit in
// bounded chunks (census.chunk_rows, the chunks of a dropped file, the
// transactions of an order).
const memTableSize = 16 << 20

// Options of Open.
type Options struct {
	Dir      string
	Key      []byte // 32 bytes: encryption at rest
	InMemory bool   // tests only
	Now      func() time.Time
}

// Open opens (creating if needed) the store in opt.Dir.
func Open(opt Options) (*Store, error) {
	if len(opt.Key) != secret.KeySize {
		return nil, fmt.Errorf("store: encryption key must be %d bytes", secret.KeySize)
	}
	bo := badger.DefaultOptions(opt.Dir).
		WithEncryptionKey(opt.Key).
		WithIndexCacheSize(32 << 20).
		WithLogger(nil).
		WithInMemory(opt.InMemory).
		WithMemTableSize(memTableSize).
		WithNumMemtables(2).
		WithNumCompactors(2).
		WithBlockCacheSize(16 << 20).
		WithValueThreshold(1 << 10).
		WithValueLogFileSize(64 << 20).
		WithNumVersionsToKeep(1).
		WithVerifyValueChecksum(true).
		// Blocks are encrypted, not compressed: a compressing table
		// builder reserves room for each block's worst case next to the
		// block, and a compaction runs several builders at once (tens of
		// MB at Italy scale); the tables of a store written compressed
		// stay readable, Badger records each table's compression.
		WithCompression(options.None)
	// Every level's tables are as large as the base level's (2 MB):
	// a compaction's builders each hold a table, twice over with
	// encryption, and deeper levels would otherwise double it per level.
	bo.TableSizeMultiplier = 1
	// Level 0 is compacted from 2 tables on: the tables a compaction
	// writes are mapped, and resident, until it ends (docs/architecture.md,
	// "Memory"), and they are as large as what it merges. Closing does not
	// compact level 0: the next run's compactors do it, and a compaction at
	// close raised a job's resident set at its very end.
	bo = bo.WithNumLevelZeroTables(2)
	if opt.InMemory {
		// No value log in memory: every value must stay in the LSM tree
		// (a value over the threshold makes Badger 4.9.6 panic in writeToLSM).
		bo = bo.WithValueThreshold(badger.DefaultOptions("").ValueThreshold)
		bo.Dir, bo.ValueDir = "", ""
	}
	var lastLog string
	var lastSize int64
	if !opt.InMemory {
		if err := removeEmptyLogs(opt.Dir); err != nil {
			return nil, fmt.Errorf("archivio %s: %w", opt.Dir, err)
		}
		lastLog, lastSize = lastValueLog(opt.Dir)
	}
	db, err := badger.Open(bo)
	if err != nil {
		if errors.Is(err, badger.ErrEncryptionKeyMismatch) {
			return nil, fmt.Errorf("archivio %s: la chiave non apre questo archivio (keys/store.key sbagliata?)", opt.Dir)
		}
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("archivio %s: %w", opt.Dir, ErrLocked)
		}
		return nil, fmt.Errorf("archivio %s: %w", opt.Dir, err)
	}
	if err := checkValueLogCut(lastLog, lastSize, bo.ValueLogFileSize); err != nil {
		db.Close()
		return nil, fmt.Errorf("archivio %s: %w", opt.Dir, err)
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, mu: new(sync.Mutex), now: now, allocs: allocPoolOf(db)}
	if !opt.InMemory {
		s.maps = mapsOf(db)
	}
	// A migration of the history interrupted in its swap phase leaves the
	// chain mixed: it is finished before anything reads or writes.
	if err := s.finishSwap(); err != nil {
		db.Close()
		return nil, fmt.Errorf("archivio %s: completamento della migrazione della storia ai pseudonimi: %w", opt.Dir, err)
	}
	s.keeper = startKeeper(s)
	return s, nil
}

// lastValueLog returns the path and size of the newest value log file of
// dir ("" when none).
func lastValueLog(dir string) (string, int64) {
	names, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	var last string
	var fid uint64
	for _, n := range names {
		id, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), ".vlog"), 10, 32)
		if err == nil && (last == "" || id > fid) {
			last, fid = n, id
		}
	}
	if last == "" {
		return "", 0
	}
	fi, err := os.Stat(last)
	if err != nil {
		return "", 0
	}
	return last, fi.Size()
}

// checkValueLogCut tells a damaged value log from the tail of a crash.
// Opening the store, Badger reads the newest value log and cuts it at the
// first entry whose checksum fails, without a word. After a crash that is
// the half-written tail (the file is still at its preallocated size, twice
// the value log file size). A file closed cleanly was trimmed to its
// entries, so any cut of it means a damaged entry: it and every value
// written after it are lost.
func checkValueLogCut(path string, before, fileSize int64) error {
	if path == "" || before == 2*fileSize {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() >= before {
		return nil
	}
	return fmt.Errorf("%w: il value log %s, chiuso regolarmente, conteneva una voce danneggiata: all'apertura Badger lo ha accorciato da %d a %d byte e i valori scritti da lì in poi sono persi. "+
		"L'archivio ora si apre con ciò che resta: eseguire `anprsec history verify` per vedere cosa ha perso la storia, e ripristinare l'ultimo backup (`anprsec restore`) in una cartella dati vuota",
		ErrDamaged, filepath.Base(path), before, fi.Size())
}

// Unavailable reports whether err says that the store cannot take a
// transaction now (closed, writes blocked, a full disk or an I/O error
// under it) rather than that the transaction was wrong: a caller retries
// later.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, badger.ErrBlockedWrites) || errors.Is(err, badger.ErrDBClosed) {
		return true
	}
	// Badger flattens the errors it wraps into their text.
	msg := err.Error()
	for _, s := range []string{"no space left on device", "disk quota exceeded", "input/output error", "read-only file system"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Close closes the database.
func (s *Store) Close() error {
	if s.borrowed {
		return nil
	}
	s.keeper.close()
	s.maps.close()
	return s.db.Close()
}

// Borrow returns a handle on the same open store, sharing its writer lock
// (so the history chain stays linear), whose Close does nothing: for code
// that uses a store another part of the process owns, such as a command
// the daemon runs for the control socket.
func (s *Store) Borrow() *Store {
	return &Store{db: s.db, mu: s.mu, now: s.now, borrowed: true, allocs: s.allocs, maps: s.maps}
}

// Sync makes every committed transaction durable, before anything that
// announces them leaves the process.
func (s *Store) Sync() error { return s.db.Sync() }

// GC reclaims value-log space; call it periodically.
func (s *Store) GC() {
	for s.db.RunValueLogGC(0.5) == nil {
	}
}

// Tx is a read-write transaction. Records and history entries written
// through it commit together or not at all.
type Tx struct {
	txn       *badger.Txn
	s         *Store
	Now       time.Time
	head      *histHead // cached chain head, loaded on first append
	headDirty bool
	histBlock []byte // history entries of this transaction, written by flushHead
	histFirst uint64
	pipe      *pipeTx           // set in a pipelined transaction
	pseudo    map[string]string // value -> pseudonym, looked up or drawn in this transaction
	reads     *readCache        // values read, kept when CacheReads is on (readcache.go)
}

// Update runs fn in a read-write transaction and commits it. Writers are
// serialized; a conflict with a reader-writer is retried.
func (s *Store) Update(fn func(tx *Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(fn)
}

// updateLocked is Update for a caller that holds s.mu.
func (s *Store) updateLocked(fn func(tx *Tx) error) error {
	for attempt := 0; ; attempt++ {
		txn := s.db.NewTransaction(true)
		tx := &Tx{txn: txn, s: s, Now: s.now().UTC()}
		err := fn(tx)
		if err == nil {
			err = tx.flushHead()
		}
		if err == nil {
			err = txn.Commit()
		}
		txn.Discard()
		if errors.Is(err, badger.ErrConflict) && attempt < 5 {
			continue
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			return fmt.Errorf("archivio: transazione troppo grande (ridurre census.chunk_rows): %w", err)
		}
		return err
	}
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		return fn(&Tx{txn: txn, s: s, Now: s.now().UTC()})
	})
}

func (tx *Tx) getRaw(key string) ([]byte, error) {
	if tx.pipe != nil {
		if o, ok := tx.pipe.lookup(key); ok {
			if o.del {
				return nil, ErrNotFound
			}
			return o.val, nil
		}
		if tx.pipe.absent.lacks(key) {
			return nil, ErrNotFound
		}
	}
	if v, found, ok := tx.reads.lookup(key); ok {
		if !found {
			return nil, ErrNotFound
		}
		return v, nil
	}
	it, err := tx.txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		tx.reads.keep(key, nil, false)
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v, err := it.ValueCopy(nil)
	if err != nil {
		return nil, damaged(key, err)
	}
	tx.reads.keep(key, v, true)
	return v, nil
}

func (tx *Tx) get(key string, v any) error {
	b, err := tx.getRaw(key)
	if err != nil {
		return err
	}
	return decode(key, b, v)
}

func (tx *Tx) set(key string, v any) error {
	b, err := encodeRecord(v)
	if err != nil {
		return err
	}
	return tx.setRaw(key, b)
}

func (tx *Tx) setRaw(key string, val []byte) error {
	tx.reads.forget(key)
	if tx.pipe != nil {
		tx.pipe.record(key, val, false)
		return nil
	}
	return tx.txn.Set([]byte(key), val)
}

func (tx *Tx) del(key string) error {
	tx.reads.forget(key)
	if tx.pipe != nil {
		tx.pipe.record(key, nil, true)
		return nil
	}
	return tx.txn.Delete([]byte(key))
}

func (tx *Tx) exists(key string) (bool, error) {
	if tx.pipe != nil {
		_, err := tx.getRaw(key)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	_, err := tx.txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// scan calls fn for each key with prefix, in key order, until fn returns
// false or an error. Values are fetched only when wantValue is set.
func (tx *Tx) scan(prefix string, wantValue bool, fn func(key string, val []byte) (bool, error)) error {
	return tx.scanFrom(prefix, prefix, wantValue, fn)
}

// scanFrom is scan starting at key start (inside prefix).
func (tx *Tx) scanFrom(start, prefix string, wantValue bool, fn func(key string, val []byte) (bool, error)) error {
	if tx.pipe != nil {
		return errors.New("store: scans are not available in a pipelined transaction")
	}
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = wantValue
	opt.Prefix = []byte(prefix)
	it := tx.txn.NewIterator(opt)
	defer it.Close()
	for it.Seek([]byte(start)); it.Valid(); it.Next() {
		item := it.Item()
		var val []byte
		if wantValue {
			v, err := item.ValueCopy(nil)
			if err != nil {
				return damaged(string(item.Key()), err)
			}
			val = v
		}
		cont, err := fn(string(item.Key()), val)
		if err != nil || !cont {
			return err
		}
	}
	return nil
}

// setIndexes replaces the index keys of a record: old ones that are no
// longer wanted are deleted, new ones set (the value is empty).
func (tx *Tx) setIndexes(old, cur []string) error {
	want := make(map[string]bool, len(cur))
	for _, k := range cur {
		want[k] = true
	}
	for _, k := range old {
		if !want[k] {
			if err := tx.del(k); err != nil {
				return err
			}
		}
	}
	for _, k := range cur {
		if err := tx.setRaw(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// Sequence returns the next value of a gap-free counter kept in the
// transaction (unlike Badger's GetSequence).
func (tx *Tx) Sequence(name string) (uint64, error) {
	var n uint64
	err := tx.get("q/"+name, &n)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	n++
	return n, tx.set("q/"+name, n)
}

// RawScan calls fn with every key and value of the store as Badger holds
// them (after decryption at rest), for audits and tests that look for
// secrets stored in clear. fn must not keep the slices.
func (s *Store) RawScan(fn func(key, value []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			err := item.Value(func(v []byte) error { return fn(item.Key(), v) })
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// removeEmptyLogs deletes the memtable logs and value log files of length 0
// in dir. A process killed while Badger creates one (between creating the
// file and sizing it) leaves it behind, and Badger 4.9.6 then refuses to
// open: "while opening fid: N err: Create a new file" for a memtable, "Open
// existing file: N.vlog err: Create a new file" for the value log. An empty
// file holds no write (not even its log header), so removing it loses
// nothing; Badger goes on from the value log file before it. Found by the
// kill -9 campaigns.
func removeEmptyLogs(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); e.IsDir() || (ext != ".mem" && ext != ".vlog") {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
