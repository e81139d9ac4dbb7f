package store

import (
	"runtime"
	"sync"
	"weak"

	badger "github.com/dgraph-io/badger/v4"
)

// SyncShared is Sync for callers that run at once (the inboxes of many
// comuni, each publishing its receipts): it returns once a sync that
// started after the call has ended, so every transaction committed before
// the call is durable, as with Sync; but callers that come while a sync
// is running share the next one, instead of each syncing the same logs
// again.
func (s *Store) SyncShared() error {
	return syncGroupOf(s.db).sync(s.db.Sync)
}

// syncGroups holds the syncGroup of each open database (every handle of a
// store shares it), dropped when the database is garbage.
var syncGroups sync.Map // weak.Pointer[badger.DB] -> *syncGroup

func syncGroupOf(db *badger.DB) *syncGroup {
	key := weak.Make(db)
	if g, ok := syncGroups.Load(key); ok {
		return g.(*syncGroup)
	}
	g, loaded := syncGroups.LoadOrStore(key, &syncGroup{})
	if !loaded {
		runtime.AddCleanup(db, func(k weak.Pointer[badger.DB]) { syncGroups.Delete(k) }, key)
	}
	return g.(*syncGroup)
}

// syncGroup runs one sync at a time; the callers that come meanwhile wait
// for the next one, which starts only after they came.
type syncGroup struct {
	mu      sync.Mutex
	next    *syncRun // the sync not started yet, that the callers since the last start wait for
	running bool     // a goroutine is running syncs
}

type syncRun struct {
	done chan struct{}
	err  error
}

func (g *syncGroup) sync(do func() error) error {
	g.mu.Lock()
	if g.next == nil {
		g.next = &syncRun{done: make(chan struct{})}
	}
	r := g.next
	if !g.running {
		g.running = true
		go g.loop(do)
	}
	g.mu.Unlock()
	<-r.done
	return r.err
}

// loop runs the pending sync, taken under the lock (so it starts after
// every caller waiting for it came), until none is pending.
func (g *syncGroup) loop(do func() error) {
	for {
		g.mu.Lock()
		r := g.next
		g.next = nil
		if r == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		r.err = do()
		close(r.done)
	}
}
