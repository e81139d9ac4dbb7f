package store

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// A shared sync returns only after a sync that started after the call:
// callers that come while one runs wait for the next, and share it.
func TestSharedSyncWaitsForASyncStartedAfterTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g syncGroup
		var syncs atomic.Int32
		release := make(chan error)
		do := func() error {
			syncs.Add(1)
			return <-release
		}
		first := make(chan error, 1)
		go func() { first <- g.sync(do) }()
		synctest.Wait() // sync 1 runs
		later := make(chan error, 3)
		for range 3 {
			go func() { later <- g.sync(do) }()
		}
		synctest.Wait() // the three wait
		release <- nil  // sync 1 ends; sync 2 starts
		synctest.Wait()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if len(later) != 0 {
			t.Fatal("a caller returned with the sync that was running when it came")
		}
		boom := errors.New("boom")
		release <- boom // sync 2 ends, failing
		for range 3 {
			if err := <-later; !errors.Is(err, boom) {
				t.Errorf("caller of the failed sync: %v", err)
			}
		}
		if n := syncs.Load(); n != 2 {
			t.Errorf("%d syncs, want 2 (the three callers share one)", n)
		}
	})
}

func TestSharedSyncOfAStore(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	if err := s.Update(func(tx *Tx) error { return tx.SetMeta("x", 1) }); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncShared(); err != nil {
		t.Fatal(err)
	}
	if err := s.Borrow().SyncShared(); err != nil {
		t.Fatal(err)
	}
}
