package store

import (
	"reflect"
	"unsafe"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"
)

// allocPoolOf returns Badger's pool of table-builder allocators, nil when
// this version of Badger keeps it elsewhere. The pool keeps up to 8
// allocators for reuse, each as large as the largest table it built (a
// level-0 table is a whole memtable, twice over with encryption): under a
// bulk load they hold 60-180 MB of heap that no table is being built in.
// Badger has no option for it, so it is reached by reflection.
func allocPoolOf(db *badger.DB) *z.AllocatorPool {
	f := reflect.ValueOf(db).Elem().FieldByName("allocPool")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*z.AllocatorPool]() {
		return nil
	}
	return *(**z.AllocatorPool)(unsafe.Pointer(f.UnsafeAddr()))
}

// ReleaseAllocators empties Badger's pool of table-builder allocators, so
// that the garbage collector frees their memory; the next table built
// allocates afresh. The allocators taken out of the pool are no builder's:
// releasing them is safe at any time, and a no-op when the pool is empty
// (see allocPoolOf).
func (s *Store) ReleaseAllocators() {
	if s.allocs == nil {
		return
	}
	for range 8 { // the pool's capacity
		s.allocs.Get(1, "anprsec.release").Release()
	}
}
