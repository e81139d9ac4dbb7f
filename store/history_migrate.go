package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// Migrating the history to pseudonyms (docs/personal-data.md#migration).
// A store made before pseudonyms holds codici fiscali and e-mail addresses
// in clear inside the chained bodies, which cannot be erased without
// changing the hashes. MigrateHistory rewrites the chain once: every entry
// keeps its number, time and fields, with the pseudonyms in place of the
// personal data, and the hashes are recomputed; an entry
// storia.pseudonimizzata then closes the rewritten chain, naming the old
// head (number and hash) and the digest of the old hashes, which stay
// stored (hl/) so that a checkpoint published before the migration is
// still checked (LegacyHistoryHashes). It runs in three phases, each
// resumable after a crash:
//
//  1. build: with writers held off, the old chain is verified, then each
//     block is rewritten under hn/<first>, its old hashes under
//     hl/<first>, in transactions of about 1 MB with the progress in
//     m/hist-pseudo;
//  2. the closing entry is written, the phase becomes swap;
//  3. swap: each hn/ block replaces its h/ block, and the last transaction
//     sets the new head and the phase done. A crash here leaves the chain
//     mixed: Open finishes the swap before anything else.
//
// The old blocks' versions are removed by the Purge that follows.

const histPseudoKey = "m/hist-pseudo"

// Phases of the migration.
const (
	migBuild = "build"
	migSwap  = "swap"
	migDone  = "done"
)

// histPseudo is the state of the migration.
type histPseudo struct {
	Phase string `json:"phase"`
	Next  uint64 `json:"next,omitempty"` // build: first number of the next block to rewrite
	Prev  []byte `json:"prev,omitempty"` // build: hash of the rewritten chain so far
	// The old chain, once the closing entry is written.
	OldSeq   uint64 `json:"old_seq,omitempty"`
	OldHead  string `json:"old_head,omitempty"`  // hex
	Digest   string `json:"digest,omitempty"`    // hex SHA-256 of the old hashes, in order
	EntrySeq uint64 `json:"entry_seq,omitempty"` // number of storia.pseudonimizzata
}

// migrationCrash, set by tests, is called after each transaction of the
// build and swap phases: an error stops the migration there, as a crash
// would.
var migrationCrash func(phase string) error

// MigrationActor is the actor of the entry that closes the migration.
const MigrationActor = "anprsec"

// MigrationResult says what MigrateHistory did.
type MigrationResult struct {
	Entries uint64 // entries rewritten (0: nothing to do)
}

// migrationChunk bounds the bytes written by one transaction of the
// migration.
const migrationChunk = 1 << 20

func (s *Store) migrationState() (histPseudo, error) {
	var st histPseudo
	err := s.View(func(tx *Tx) error {
		err := tx.get(histPseudoKey, &st)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	return st, err
}

// MigrateHistory pseudonymises the history of a store made before
// pseudonyms, once (see above); on a store whose history is already
// pseudonymised it does nothing. A broken chain is not migrated: the
// error is ErrChainBroken.
func (s *Store) MigrateHistory() (MigrationResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.migrationState()
	if err != nil || st.Phase == migDone {
		return MigrationResult{}, err
	}
	if st.Phase == "" {
		res, err := s.verifyHistory(nil)
		if err != nil {
			return MigrationResult{}, err
		}
		if res.Entries == 0 {
			return MigrationResult{}, s.updateLocked(func(tx *Tx) error { return tx.set(histPseudoKey, histPseudo{Phase: migDone}) })
		}
		st = histPseudo{Phase: migBuild, Next: 1, Prev: make([]byte, sha256.Size)}
	}
	var n uint64
	if st.Phase == migBuild {
		if n, err = s.migrateBuild(&st); err != nil {
			return MigrationResult{}, err
		}
	}
	if err := s.finishSwap(); err != nil {
		return MigrationResult{}, err
	}
	return MigrationResult{Entries: n}, nil
}

// migrateBuild runs the build phase from st.Next, then writes the closing
// entry and enters the swap phase. It returns the entries rewritten.
func (s *Store) migrateBuild(st *histPseudo) (uint64, error) {
	var done uint64
	for {
		// One transaction: the blocks from st.Next, up to about 1 MB.
		var blocks []struct {
			first uint64
			val   []byte
		}
		size := 0
		err := s.View(func(tx *Tx) error {
			return tx.scanFrom(histKey(st.Next), "h/", true, func(key string, val []byte) (bool, error) {
				blocks = append(blocks, struct {
					first uint64
					val   []byte
				}{binary.BigEndian.Uint64([]byte(key[2:])), val})
				size += len(val)
				return size < migrationChunk, nil
			})
		})
		if err != nil {
			return done, err
		}
		if len(blocks) == 0 {
			break
		}
		err = s.updateLocked(func(tx *Tx) error {
			prev := st.Prev
			for _, b := range blocks {
				nb, legacy, next, h, err := tx.rewriteBlock(prev, b.first, b.val)
				if err != nil {
					return err
				}
				if err := tx.setRaw("hn/"+histKey(b.first)[2:], nb); err != nil {
					return err
				}
				if err := tx.setRaw("hl/"+histKey(b.first)[2:], legacy); err != nil {
					return err
				}
				done += next - b.first
				st.Next, prev = next, h
			}
			st.Prev = prev
			return tx.set(histPseudoKey, st)
		})
		if err != nil {
			return done, err
		}
		if migrationCrash != nil {
			if err := migrationCrash(migBuild); err != nil {
				return done, err
			}
		}
	}
	return done, s.writeClosing(st)
}

// writeClosing writes the entry that closes the rewritten chain, with the
// old chain's head and digest, and enters the swap phase.
func (s *Store) writeClosing(st *histPseudo) error {
	return s.updateLocked(func(tx *Tx) error {
		var h histHead
		if err := tx.get(histHeadKey, &h); err != nil {
			return err
		}
		if h.Seq != st.Next-1 {
			return fmt.Errorf("%w: head says %d entries, the migration rewrote %d", ErrChainBroken, h.Seq, st.Next-1)
		}
		digest, n, last, err := tx.legacyDigest()
		if err != nil {
			return err
		}
		if n != h.Seq || !bytes.Equal(last, h.Hash) {
			return fmt.Errorf("%w: the old hashes kept (%d) do not end at the old head", ErrChainBroken, n)
		}
		st.Phase, st.OldSeq, st.OldHead, st.Digest, st.EntrySeq = migSwap, h.Seq, hex.EncodeToString(h.Hash), digest, h.Seq+1
		st.Next = 0
		e := Entry{Seq: h.Seq + 1, Time: tx.Now, Actor: MigrationActor, Action: "storia.pseudonimizzata", Kind: "storia",
			Key:    fmt.Sprintf("1-%d", h.Seq),
			Detail: migrationDetail(st)}
		body, err := json.Marshal(e)
		if err != nil {
			return err
		}
		hash := chainHash(st.Prev, body)
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(body)))
		block := append(append(append(append([]byte{}, st.Prev...), hash...), l[:]...), body...)
		if err := tx.setRaw("hn/"+histKey(e.Seq)[2:], block); err != nil {
			return err
		}
		st.Prev = hash
		if err := tx.markPurge(); err != nil { // the old blocks' versions
			return err
		}
		return tx.set(histPseudoKey, st)
	})
}

// rewriteBlock rewrites the stored block of entries from first on with
// pseudonyms, chained from prev. It returns the new block, the old hashes
// of its entries, the number of the entry after it and the new hash of its
// last entry.
func (tx *Tx) rewriteBlock(prev []byte, first uint64, val []byte) (nb, legacy []byte, next uint64, last []byte, err error) {
	next = first
	err = eachRecord(val, func(_, oldHash, body []byte) error {
		var e Entry
		if err := json.Unmarshal(body, &e); err != nil || e.Seq != next {
			return fmt.Errorf("%w: entry %d has a bad body", ErrChainBroken, next)
		}
		if err := tx.linkByEntry(e.Key, e.Detail); err != nil {
			return err
		}
		for _, f := range []*string{&e.Actor, &e.Key, &e.Detail} {
			v, err := tx.Pseudonymize(*f)
			if err != nil {
				return err
			}
			*f = v
		}
		nbody, err := json.Marshal(e)
		if err != nil {
			return err
		}
		h := chainHash(prev, nbody)
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(nbody)))
		nb = append(append(append(append(nb, prev...), h...), l[:]...), nbody...)
		legacy = append(legacy, oldHash...)
		prev = h
		next++
		return nil
	})
	return nb, legacy, next, prev, err
}

// migrationDetail is the detail of the entry storia.pseudonimizzata: what
// a checkpoint of the old chain is checked against.
func migrationDetail(st *histPseudo) string {
	return fmt.Sprintf("storia pseudonimizzata: voci 1-%d riscritte con gli pseudonimi; testa precedente: sequenza %d hash %s; impronta degli hash precedenti %s",
		st.OldSeq, st.OldSeq, st.OldHead, st.Digest)
}

// legacyDigest reads the old hashes kept by the migration: the hex SHA-256
// of all of them in order, their number and the last one.
func (tx *Tx) legacyDigest() (string, uint64, []byte, error) {
	d := sha256.New()
	var n uint64
	var last []byte
	err := tx.each("hl/", func(_ string, val []byte) error {
		if len(val)%sha256.Size != 0 {
			return fmt.Errorf("%w: a block of old hashes has %d bytes", ErrChainBroken, len(val))
		}
		d.Write(val)
		n += uint64(len(val) / sha256.Size)
		if len(val) > 0 {
			last = append(last[:0], val[len(val)-sha256.Size:]...)
		}
		return nil
	})
	return hex.EncodeToString(d.Sum(nil)), n, last, err
}

// finishSwap runs the swap phase, if the migration is in it: each hn/
// block replaces its h/ block, and the last transaction sets the head.
// The caller holds s.mu (or is Open).
func (s *Store) finishSwap() error {
	st, err := s.migrationState()
	if err != nil || st.Phase != migSwap {
		return err
	}
	for {
		var keys []string
		var vals [][]byte
		size := 0
		err := s.View(func(tx *Tx) error {
			return tx.scan("hn/", true, func(key string, val []byte) (bool, error) {
				keys, vals = append(keys, key), append(vals, val)
				size += len(val)
				return size < migrationChunk, nil
			})
		})
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		err = s.updateLocked(func(tx *Tx) error {
			for i, k := range keys {
				if err := tx.setRaw("h/"+strings.TrimPrefix(k, "hn/"), vals[i]); err != nil {
					return err
				}
				if err := tx.del(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if migrationCrash != nil {
			if err := migrationCrash(migSwap); err != nil {
				return err
			}
		}
	}
	return s.updateLocked(func(tx *Tx) error {
		if err := tx.set(histHeadKey, histHead{Seq: st.EntrySeq, Hash: st.Prev}); err != nil {
			return err
		}
		st.Phase, st.Prev = migDone, nil
		return tx.set(histPseudoKey, st)
	})
}

// checkMigration checks, for VerifyHistory, what the migration left: the
// old hashes kept match the digest, number and head that the closing
// entry (body, at st.EntrySeq) names.
func (tx *Tx) checkMigration(st histPseudo, closing *Entry) error {
	if st.Phase != migDone || st.EntrySeq == 0 {
		return nil
	}
	if closing == nil || closing.Action != "storia.pseudonimizzata" || closing.Detail != migrationDetail(&st) {
		return fmt.Errorf("%w: entry %d does not close the migration to pseudonyms as recorded", ErrChainBroken, st.EntrySeq)
	}
	digest, n, last, err := tx.legacyDigest()
	if err != nil {
		return err
	}
	if digest != st.Digest || n != st.OldSeq || hex.EncodeToString(last) != st.OldHead {
		return fmt.Errorf("%w: the hashes of the history before pseudonyms were changed (entry %d names their digest)", ErrChainBroken, st.EntrySeq)
	}
	return nil
}

// LegacyHistoryHashes returns, for each number of seqs that the history
// had before its migration to pseudonyms, the hash (hex) the old chain
// held there, as recorded by the migration; the map is empty for a store
// that was never migrated.
func (s *Store) LegacyHistoryHashes(seqs ...uint64) (map[uint64]string, error) {
	out := map[uint64]string{}
	err := s.View(func(tx *Tx) error {
		for _, seq := range seqs {
			if seq == 0 {
				continue
			}
			opt := badger.DefaultIteratorOptions
			opt.Reverse = true
			opt.Prefix = []byte("hl/")
			it := tx.txn.NewIterator(opt)
			it.Seek([]byte("hl/" + histKey(seq)[2:]))
			if it.Valid() {
				first := binary.BigEndian.Uint64(it.Item().Key()[3:])
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				i := int(seq-first) * sha256.Size
				if i+sha256.Size <= len(v) {
					out[seq] = hex.EncodeToString(v[i : i+sha256.Size])
				}
			}
			it.Close()
		}
		return nil
	})
	return out, err
}
