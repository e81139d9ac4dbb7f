package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// HistoryHead is the head of the history chain: the number, hash and time
// of its last entry. An empty history has number 0, the zero hash (the
// "previous hash" of entry 1) and no time.
type HistoryHead struct {
	Seq  uint64
	Hash []byte
	Time time.Time
}

// HistoryHead reads the head of the chain as committed: the stored head
// and the time of the entry it names. It does not recompute the chain
// (VerifyHistory does); it fails with ErrChainBroken when the last stored
// entry is not the one the head names.
func (s *Store) HistoryHead() (HistoryHead, error) {
	var head HistoryHead
	err := s.View(func(tx *Tx) error {
		var h histHead
		if err := tx.get(histHeadKey, &h); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if h.Seq == 0 {
			head = HistoryHead{Hash: make([]byte, sha256.Size)}
			return nil
		}
		block, err := tx.lastHistoryBlock()
		if err != nil {
			return err
		}
		var last []byte
		err = eachRecord(block, func(_, hash, body []byte) error {
			if bytes.Equal(hash, h.Hash) {
				last = body
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%w: ultimo blocco: %v", ErrChainBroken, err)
		}
		var e Entry
		if last == nil || json.Unmarshal(last, &e) != nil || e.Seq != h.Seq {
			return fmt.Errorf("%w: la testa indica la voce %d, che non è l'ultima registrata", ErrChainBroken, h.Seq)
		}
		head = HistoryHead{Seq: h.Seq, Hash: h.Hash, Time: e.Time}
		return nil
	})
	return head, err
}

// lastHistoryBlock returns the stored block of history entries with the
// highest first number.
func (tx *Tx) lastHistoryBlock() ([]byte, error) {
	if tx.pipe != nil {
		return nil, errors.New("store: scans are not available in a pipelined transaction")
	}
	opt := badger.DefaultIteratorOptions
	opt.Reverse = true
	opt.Prefix = []byte("h/")
	it := tx.txn.NewIterator(opt)
	defer it.Close()
	// Past every key "h/" + 8 bytes: the first key seen is the last block.
	it.Seek([]byte("h/\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
	if !it.Valid() {
		return nil, fmt.Errorf("%w: la testa indica delle voci ma nessuna è registrata", ErrChainBroken)
	}
	return it.Item().ValueCopy(nil)
}

// HistoryHashes recomputes the whole chain as VerifyHistory does and
// returns, with its result, the hash (hex) the chain holds at each number
// of seqs: 0 is the zero hash of the empty history; a number past the last
// entry is absent from the map. A broken chain is an error, as for
// VerifyHistory.
func (s *Store) HistoryHashes(seqs ...uint64) (VerifyResult, map[uint64]string, error) {
	want := map[uint64]bool{}
	for _, n := range seqs {
		want[n] = true
	}
	out := map[uint64]string{}
	if want[0] {
		out[0] = hex.EncodeToString(make([]byte, sha256.Size))
	}
	res, err := s.verifyHistory(func(seq uint64, hash []byte) {
		if want[seq] {
			out[seq] = hex.EncodeToString(hash)
		}
	})
	if err != nil {
		return res, nil, err
	}
	return res, out, nil
}
