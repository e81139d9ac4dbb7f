package store

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// The memory Badger holds for an open store is kept bounded by a keeper
// goroutine (docs/architecture.md, "Memory"), which looks every keeperEvery
//
//   - at the process's resident pages backed by files: past
//     keeperMappedBudget above what remained after its last release (the
//     executable's pages, the libraries), it releases the store's mappings
//     (ReleaseMapped), which a bulk write fills at disk speed: the value
//     log and the memtable logs are written through them and every table
//     built is copied into one;
//   - at the Go heap: past three quarters of the memory limit
//     (memory_limit), it empties Badger's pool of table-builder
//     allocators (ReleaseAllocators), which keeps each allocator as large
//     as the largest table it built.
const (
	keeperEvery        = 50 * time.Millisecond
	keeperMappedBudget = 8 << 20
)

type keeper struct {
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// startKeeper starts s's keeper; nil when the process's resident pages
// cannot be read (not Linux) or Badger's mappings cannot be reached.
func startKeeper(s *Store) *keeper {
	if s.maps == nil || residentFileBytes() == 0 {
		return nil
	}
	k := &keeper{stop: make(chan struct{})}
	k.done.Go(func() { k.run(s) })
	return k
}

func (k *keeper) run(s *Store) {
	t := time.NewTicker(keeperEvery)
	defer t.Stop()
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	floor := residentFileBytes()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		if residentFileBytes() > floor+keeperMappedBudget {
			s.ReleaseMapped()
			floor = residentFileBytes()
		}
		if limit := debug.SetMemoryLimit(-1); limit > 0 && limit < 1<<62 {
			metrics.Read(heap)
			if heap[0].Value.Kind() == metrics.KindUint64 && heap[0].Value.Uint64() > uint64(limit)/4*3 {
				s.ReleaseAllocators()
			}
		}
	}
}

// close stops the keeper and waits for it; a nil or stopped keeper is a
// no-op.
func (k *keeper) close() {
	if k == nil {
		return
	}
	k.stopOnce.Do(func() { close(k.stop) })
	k.done.Wait()
}
