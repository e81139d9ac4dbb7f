package store

import (
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

// Pipeline runs a sequence of write transactions where transaction k+1 is
// prepared while transaction k is being written to disk, so a large import
// keeps both cores busy. Each transaction is still atomic and commits in
// order. Transaction k+1 reads a snapshot taken before k was submitted plus
// k's own writes, which is exactly the state after k. The pipeline holds
// the store's writer lock until Close: nothing else writes meanwhile.
//
// Update returns once a transaction is submitted; a failed commit is
// reported by the next Update or by Close, and nothing after it commits.
// Scans are not available inside a pipelined transaction.
type Pipeline struct {
	s        *Store
	read     *badger.Txn   // snapshot for the next transaction
	prev     map[string]op // writes of the transaction in flight
	inflight chan error    // result of the transaction in flight
	err      error
	closed   bool
	absent   *absentFilter // keys that may exist, when tracked (TrackAbsent)
	histSize int           // size of the last transaction's history block
	// nextW is the write transaction of the next Update, opened when the
	// previous one was submitted (a transaction opened while one is in
	// flight waits for it): the next Update fills it while the previous
	// one is written, and only submits it once that one is done. It only
	// writes, so its older read timestamp conflicts with nothing.
	nextW *badger.Txn
}

type op struct {
	val []byte
	del bool
}

type pipeTx struct {
	prev   map[string]op
	own    map[string]op
	keys   []string      // own keys in write order
	absent *absentFilter // the pipeline's, nil when not tracked
}

func (p *pipeTx) lookup(key string) (op, bool) {
	if o, ok := p.own[key]; ok {
		return o, true
	}
	o, ok := p.prev[key]
	return o, ok
}

func (p *pipeTx) record(key string, val []byte, del bool) {
	if _, ok := p.own[key]; !ok {
		p.keys = append(p.keys, key)
		p.absent.add(key)
	}
	p.own[key] = op{val: val, del: del}
}

// Pipeline starts a pipeline. Close it.
func (s *Store) Pipeline() *Pipeline {
	s.mu.Lock()
	return &Pipeline{s: s}
}

// wait waits for the transaction in flight.
func (p *Pipeline) wait() error {
	if p.inflight != nil {
		if err := <-p.inflight; err != nil && p.err == nil {
			p.err = err
		}
		p.inflight, p.prev = nil, nil
	}
	return p.err
}

// Update prepares a transaction with fn and submits it.
func (p *Pipeline) Update(fn func(tx *Tx) error) error {
	if p.closed {
		return errors.New("store: pipeline closed")
	}
	if p.err != nil {
		return p.err
	}
	if p.read == nil {
		p.read = p.s.db.NewTransaction(false)
	}
	pt := &pipeTx{prev: p.prev, own: make(map[string]op, len(p.prev)), absent: p.absent}
	tx := &Tx{txn: p.read, s: p.s, Now: p.s.now().UTC(), pipe: pt}
	if p.histSize > 0 {
		// Chunks of an import are alike: room for the last one's entries.
		tx.histBlock = make([]byte, 0, p.histSize+p.histSize/8)
	}
	err := fn(tx)
	p.histSize = len(tx.histBlock)
	if err == nil {
		err = tx.flushHead()
	}
	var wtx *badger.Txn
	var werr error
	if err == nil {
		wtx, werr = p.writes(pt)
	}
	// fn ran, and its writes were handed to Badger, while the previous
	// transaction was being written: wait for it before submitting this one.
	if err := p.wait(); err != nil {
		if wtx != nil {
			wtx.Discard()
		}
		return err
	}
	p.read.Discard()
	p.read = nil
	if err != nil {
		return err
	}
	if werr != nil {
		p.err = werr
		return werr
	}
	// The snapshot for the next transaction is taken before this one is
	// submitted; the next one sees this one's writes through prev.
	p.read = p.s.db.NewTransaction(false)
	p.nextW = p.s.db.NewTransaction(true)
	done := make(chan error, 1)
	wtx.CommitWith(func(err error) { done <- err })
	p.inflight, p.prev = done, pt.own
	return nil
}

// Close waits for the last transaction and releases the writer lock. It
// returns the first commit error, if any.
func (p *Pipeline) Close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	p.wait()
	if p.nextW != nil {
		p.nextW.Discard()
		p.nextW = nil
	}
	if p.read != nil {
		p.read.Discard()
		p.read = nil
	}
	p.s.mu.Unlock()
	return p.err
}
