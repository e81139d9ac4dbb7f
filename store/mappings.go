package store

import (
	"reflect"
	"sync"
	"unsafe"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/skl"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger memory-maps every file of the store: the tables of each level,
// the logs of the memtables and the value log files. The pages a scan
// reads or a commit writes through those mappings stay in the process's
// resident set until the file is unmapped (docs/architecture.md, "Memory").
// Dropping them (ReleaseMapped) needs the mappings' addresses, and needs
// them to stay mapped while they are dropped: an address Badger unmapped
// in between could hold other memory by then. Badger exports neither, so
// badgerMaps reaches its structures by reflection and holds each mapping
// the way Badger's own readers do:
//
//   - a table by a reference (table.Table.IncrRef), taken under its
//     level's read lock: a table in a level is referenced by the level, so
//     it is not unmapped before the reference is dropped;
//   - a memtable's log by a reference on its skiplist (skl.Skiplist.IncrRef),
//     taken under the DB's read lock: the log is deleted when the last
//     reference goes;
//   - a value log file under its own read lock, which Badger takes
//     exclusively to truncate, remap, unmap or delete it.
//
// A release that drops the last reference deletes the file, as the reader
// holding it would have.
type badgerMaps struct {
	mu     sync.RWMutex // held shared by each, exclusively by close
	closed bool         // the DB is closing: its files are Badger's to unmap

	levels    []levelRef
	dbLock    *sync.RWMutex
	memtables func() []reflect.Value // db.mt and db.imm, under dbLock
	vlogLock  *sync.RWMutex
	vlogFiles reflect.Value // map[uint32]*logFile, under vlogLock
}

type levelRef struct {
	mu     *sync.RWMutex
	tables reflect.Value // []*table.Table, under mu
}

// reach returns field name of struct v (addressable) as an addressable,
// readable value; ok false when there is no such field.
func reach(v reflect.Value, name string) (reflect.Value, bool) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.FieldByName(name)
	if !f.IsValid() || !f.CanAddr() {
		return reflect.Value{}, false
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), true
}

// lockOf returns the sync.RWMutex that struct v (addressable) embeds or
// holds in field name.
func lockOf(v reflect.Value, name string) (*sync.RWMutex, bool) {
	f, ok := reach(v, name)
	if !ok || f.Type() != reflect.TypeFor[sync.RWMutex]() {
		return nil, false
	}
	return (*sync.RWMutex)(unsafe.Pointer(f.UnsafeAddr())), true
}

// mapsOf finds db's mappings; nil when this version of Badger keeps them
// elsewhere (then nothing is released: TestBadgerMappingsAreFound fails
// on such an upgrade).
func mapsOf(db *badger.DB) *badgerMaps {
	d := reflect.ValueOf(db).Elem()
	m := &badgerMaps{}
	if !m.findLevels(d) || !m.findMemtables(d) || !m.findValueLog(d) {
		return nil
	}
	return m
}

// findLevels finds the levels' tables and locks (db.lc.levels).
func (m *badgerMaps) findLevels(d reflect.Value) bool {
	lc, ok := reach(d, "lc")
	if !ok || lc.Kind() != reflect.Pointer || lc.IsNil() {
		return false
	}
	levels, ok := reach(lc.Elem(), "levels")
	if !ok || levels.Kind() != reflect.Slice {
		return false
	}
	for i := range levels.Len() {
		h := levels.Index(i)
		if h.Kind() != reflect.Pointer || h.IsNil() {
			return false
		}
		mu, ok := lockOf(h.Elem(), "RWMutex")
		tables, ok2 := reach(h.Elem(), "tables")
		if !ok || !ok2 || tables.Type() != reflect.TypeFor[[]*table.Table]() {
			return false
		}
		m.levels = append(m.levels, levelRef{mu: mu, tables: tables})
	}
	return true
}

// findMemtables finds the memtables (db.mt, db.imm) and their lock.
func (m *badgerMaps) findMemtables(d reflect.Value) bool {
	var ok bool
	if m.dbLock, ok = lockOf(d, "lock"); !ok {
		return false
	}
	mt, ok := reach(d, "mt")
	imm, ok2 := reach(d, "imm")
	if !ok || !ok2 || mt.Kind() != reflect.Pointer || imm.Kind() != reflect.Slice {
		return false
	}
	m.memtables = func() []reflect.Value {
		out := make([]reflect.Value, 0, 1+imm.Len())
		if !mt.IsNil() {
			out = append(out, mt.Elem())
		}
		for i := range imm.Len() {
			if v := imm.Index(i); !v.IsNil() {
				out = append(out, v.Elem())
			}
		}
		return out
	}
	return true
}

// findValueLog finds the value log's files and their lock.
func (m *badgerMaps) findValueLog(d reflect.Value) bool {
	vlog, ok := reach(d, "vlog")
	if !ok {
		return false
	}
	if m.vlogLock, ok = lockOf(vlog, "filesLock"); !ok {
		return false
	}
	m.vlogFiles, ok = reach(vlog, "filesMap")
	return ok && m.vlogFiles.Kind() == reflect.Map
}

// mmapOf is the z.MmapFile a logFile (addressable struct) embeds.
func mmapOf(lf reflect.Value) *z.MmapFile {
	f, ok := reach(lf, "MmapFile")
	if !ok || f.Type() != reflect.TypeFor[*z.MmapFile]() {
		return nil
	}
	return f.Interface().(*z.MmapFile)
}

// each calls fn with every file mapping of the store, each held mapped
// while fn runs (see badgerMaps). Only mappings of an open file are
// passed: an in-memory store's tables are Go memory, never released.
func (m *badgerMaps) each(fn func(data []byte)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return
	}
	m.eachTable(fn)
	m.eachMemtableLog(fn)
	m.eachValueLogFile(fn)
}

// eachTable calls fn with the mapping of every table in a level, each
// held by a reference.
func (m *badgerMaps) eachTable(fn func(data []byte)) {
	var held []*table.Table
	for _, l := range m.levels {
		l.mu.RLock()
		for _, t := range l.tables.Interface().([]*table.Table) {
			t.IncrRef()
			held = append(held, t)
		}
		l.mu.RUnlock()
	}
	for _, t := range held {
		if t.MmapFile != nil && t.Fd != nil {
			fn(t.Data)
		}
		_ = t.DecrRef() // an error is Badger's own deletion failing, which it logs when it deletes
	}
}

// eachMemtableLog calls fn with the log of every memtable, each held by a
// reference on its skiplist.
func (m *badgerMaps) eachMemtableLog(fn func(data []byte)) {
	type memLog struct {
		sl  *skl.Skiplist
		log *z.MmapFile
	}
	var logs []memLog
	m.dbLock.RLock()
	for _, mt := range m.memtables() {
		sl, ok := reach(mt, "sl")
		wal, ok2 := reach(mt, "wal")
		if !ok || !ok2 || sl.Type() != reflect.TypeFor[*skl.Skiplist]() || sl.IsNil() || wal.Kind() != reflect.Pointer || wal.IsNil() {
			continue
		}
		s := sl.Interface().(*skl.Skiplist)
		s.IncrRef()
		logs = append(logs, memLog{sl: s, log: mmapOf(wal.Elem())})
	}
	m.dbLock.RUnlock()
	for _, l := range logs {
		if l.log != nil && l.log.Fd != nil {
			fn(l.log.Data)
		}
		l.sl.DecrRef()
	}
}

// eachValueLogFile calls fn with every value log file, each under its own
// read lock.
func (m *badgerMaps) eachValueLogFile(fn func(data []byte)) {
	m.vlogLock.RLock()
	files := make([]reflect.Value, 0, m.vlogFiles.Len())
	for it := m.vlogFiles.MapRange(); it.Next(); {
		if lf := it.Value(); lf.Kind() == reflect.Pointer && !lf.IsNil() {
			files = append(files, lf.Elem())
		}
	}
	m.vlogLock.RUnlock()
	for _, lf := range files {
		mu, ok := lockOf(lf, "lock")
		if !ok {
			continue
		}
		mu.RLock()
		if f := mmapOf(lf); f != nil && f.Fd != nil && f.Data != nil {
			fn(f.Data)
		}
		mu.RUnlock()
	}
}

// close ends the releases: it waits for one under way, and each does
// nothing afterwards. It is called before the DB closes, which unmaps
// every file without the holds each relies on (and keeps the value log
// files locked).
func (m *badgerMaps) close() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}
