package store

import (
	"testing"

	"anprsec/domain"
)

// The pool of table-builder allocators is reached by reflection: an
// upgrade of Badger that moves it must fail here, not silently keep the
// memory.
func TestBadgerAllocatorPoolIsFoundAndReleased(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	if s.allocs == nil {
		t.Fatal("Badger's allocator pool not found: ReleaseAllocators does nothing")
	}
	if s.Borrow().allocs != s.allocs {
		t.Fatal("a borrowed handle does not share the allocator pool")
	}
	for i := range 3 {
		must(t, s.Update(func(tx *Tx) error { return tx.PutPerson(&domain.Person{CF: string(rune('A' + i))}) }))
		s.ReleaseAllocators()
	}
	must(t, s.View(func(tx *Tx) error {
		_, err := tx.Person("B")
		return err
	}))
}
