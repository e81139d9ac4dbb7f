package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"anprsec/internal/clip"
)

// Entry is one history entry: what changed, when, who did it, from which
// file and row. Entries form a hash chain: each stored entry carries the
// hash of the previous one, so any change, removal or reordering is found by
// Verify. As stored, every codice fiscale and e-mail address in Actor, Key
// and Detail is a pseudonym (docs/personal-data.md#pseudonyms); History
// and EachHistory give them resolved while the person exists.
type Entry struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`            // operator CF, or the dropping party (e.g. "censimento", "prefettura 058")
	Action string    `json:"action"`           // e.g. "utenza.crea", "smartcard.richiesta"
	Kind   string    `json:"kind"`             // record kind: comune, persona, utenza, smartcard, postazione, file
	Key    string    `json:"key"`              // record key, e.g. "058091/RSSMRA68A01H501Y"
	File   string    `json:"file,omitempty"`   // source file (drop path)
	Sheet  string    `json:"sheet,omitempty"`  // source sheet
	Row    int       `json:"row,omitempty"`    // source row (the spreadsheet's own number)
	Detail string    `json:"detail,omitempty"` // what changed, in words
}

// Source says where a change came from.
type Source struct {
	Actor string
	File  string
	Sheet string
	Row   int
}

type histHead struct {
	Seq  uint64 `json:"seq"`
	Hash []byte `json:"hash"`
}

const histHeadKey = "m/hist-head"

func histKey(seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return "h/" + string(b[:])
}

// Limits of the fields of a history entry, in bytes. A longer value is
// recorded cut, with its length and a short hash (clip.String), never
// whole: whatever an input file holds, one entry is at most about 5 KB of
// text (docs/rules.md#history). No key, actor or file name of the
// system's own is near these limits.
const (
	MaxEntryActor  = 128  // a CF, "prefettura 058", "comune 058091"
	MaxEntryName   = 64   // Action and Kind
	MaxEntryKey    = 256  // "058091/RSSMRA68A01H501Y"
	MaxEntryFile   = 512  // a drop path: folders and a name of at most 255 bytes
	MaxEntrySheet  = 128  // a sheet name (Excel allows 31 characters)
	MaxEntryDetail = 4096 // what changed, in words
)

// Record appends a history entry in the transaction. Time and Seq are set
// here; every codice fiscale and e-mail address in Actor, Key and Detail is
// replaced by its pseudonym (Pseudonymize), and every field is bounded (see
// MaxEntryDetail). Each entry is stored as prev-hash(32) | hash(32) | length(4) | JSON
// body, with hash = SHA-256(prev-hash | body); the entries of one
// transaction are stored together in one block, keyed by the first one's
// sequence number.
func (tx *Tx) Record(src Source, action, kind, key, detail string) error {
	if tx.head == nil {
		var h histHead
		if err := tx.get(histHeadKey, &h); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if h.Hash == nil {
			h.Hash = make([]byte, sha256.Size)
		}
		tx.head = &h
		if h.Seq == 0 {
			// A history that starts here needs no migration to pseudonyms.
			if err := tx.set(histPseudoKey, histPseudo{Phase: migDone}); err != nil {
				return err
			}
		}
	}
	// Persons are named by pseudonyms (docs/personal-data.md#pseudonyms).
	err := tx.linkByEntry(key, detail)
	if err != nil {
		return err
	}
	if src.Actor, err = tx.Pseudonymize(src.Actor); err != nil {
		return err
	}
	if key, err = tx.Pseudonymize(key); err != nil {
		return err
	}
	if detail, err = tx.Pseudonymize(detail); err != nil {
		return err
	}
	e := Entry{Seq: tx.head.Seq + 1, Time: tx.Now,
		Actor:  clip.String(src.Actor, MaxEntryActor),
		Action: clip.String(action, MaxEntryName),
		Kind:   clip.String(kind, MaxEntryName),
		Key:    clip.String(key, MaxEntryKey),
		File:   clip.String(src.File, MaxEntryFile),
		Sheet:  clip.String(src.Sheet, MaxEntrySheet),
		Row:    src.Row,
		Detail: clip.String(detail, MaxEntryDetail)}
	if len(tx.histBlock) == 0 {
		tx.histFirst = e.Seq
	}
	// The body is appended in place, its hash and length filled in after.
	off := len(tx.histBlock)
	var gap [36]byte
	tx.histBlock = appendEntryJSON(append(append(tx.histBlock, tx.head.Hash...), gap[:]...), &e)
	body := tx.histBlock[off+68:]
	hash := appendChainHash(make([]byte, 0, sha256.Size), tx.head.Hash, body)
	copy(tx.histBlock[off+32:], hash)
	binary.BigEndian.PutUint32(tx.histBlock[off+64:], uint32(len(body)))
	tx.head = &histHead{Seq: e.Seq, Hash: hash}
	tx.headDirty = true
	return nil
}

// errTruncatedBlock: a stored history block is empty or ends inside an
// entry. A block is never written empty; Badger gives an empty value for
// one it cannot read back whole (it does not return the error).
var errTruncatedBlock = errors.New("truncated block")

// eachRecord walks the entries of a stored block.
func eachRecord(block []byte, fn func(prev, hash, body []byte) error) error {
	if len(block) == 0 {
		return fmt.Errorf("%w: empty", errTruncatedBlock)
	}
	for len(block) > 0 {
		if len(block) < 68 {
			return errTruncatedBlock
		}
		n := int(binary.BigEndian.Uint32(block[64:68]))
		if len(block) < 68+n {
			return errTruncatedBlock
		}
		if err := fn(block[:32], block[32:64], block[68:68+n]); err != nil {
			return err
		}
		block = block[68+n:]
	}
	return nil
}

// flushHead writes the chain head once per transaction, before commit.
func (tx *Tx) flushHead() error {
	if !tx.headDirty {
		return nil
	}
	tx.headDirty = false
	if err := tx.setRaw(histKey(tx.histFirst), tx.histBlock); err != nil {
		return err
	}
	tx.histBlock = nil
	return tx.set(histHeadKey, tx.head)
}

func chainHash(prev, body []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(body)
	return h.Sum(nil)
}

// VerifyResult is the outcome of a chain check.
type VerifyResult struct {
	Entries uint64
	Head    string // hex hash of the last entry: anchor it elsewhere to detect a rewritten chain
}

// ErrChainBroken is wrapped by every chain error.
var ErrChainBroken = errors.New("catena dello storico spezzata")

// VerifyHistory recomputes the whole chain. It fails on a modified entry,
// a missing or reordered entry, or a head that does not match the last
// entry.
func (s *Store) VerifyHistory() (VerifyResult, error) { return s.verifyHistory(nil) }

// verifyHistory is VerifyHistory, calling visit with the number and hash
// of each entry once it is checked.
func (s *Store) verifyHistory(visit func(seq uint64, hash []byte)) (VerifyResult, error) {
	var res VerifyResult
	err := s.View(func(tx *Tx) error {
		var mig histPseudo
		if err := tx.get(histPseudoKey, &mig); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		var closing *Entry
		prev := make([]byte, sha256.Size)
		var want uint64 = 1
		err := tx.scan("h/", true, func(key string, val []byte) (bool, error) {
			first := binary.BigEndian.Uint64([]byte(key[2:]))
			if first != want {
				return false, fmt.Errorf("%w: manca la voce %d (la successiva trovata è la %d)", ErrChainBroken, want, first)
			}
			err := eachRecord(val, func(p, h, body []byte) error {
				seq := want
				if !bytes.Equal(p, prev) {
					return fmt.Errorf("%w: la voce %d non segue la voce %d", ErrChainBroken, seq, seq-1)
				}
				if !bytes.Equal(chainHash(prev, body), h) {
					return fmt.Errorf("%w: la voce %d è stata modificata", ErrChainBroken, seq)
				}
				var e Entry
				if err := json.Unmarshal(body, &e); err != nil || e.Seq != seq {
					return fmt.Errorf("%w: la voce %d ha un contenuto non valido", ErrChainBroken, seq)
				}
				if seq == mig.EntrySeq {
					closing = &e
				}
				if visit != nil {
					visit(seq, h)
				}
				prev = h
				want++
				return nil
			})
			if err != nil && !errors.Is(err, ErrChainBroken) {
				err = fmt.Errorf("%w: blocco della voce %d: %v", ErrChainBroken, first, err)
			}
			return err == nil, err
		})
		if err != nil {
			return err
		}
		res.Entries = want - 1
		var h histHead
		if err := tx.get(histHeadKey, &h); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if h.Seq != res.Entries || (h.Seq > 0 && !bytes.Equal(h.Hash, prev)) {
			return fmt.Errorf("%w: l'ultima voce dichiarata è la %d, la catena ne ha %d (voci tolte in fondo?)", ErrChainBroken, h.Seq, res.Entries)
		}
		res.Head = hex.EncodeToString(prev)
		return tx.checkMigration(mig, closing)
	})
	return res, err
}

// History returns entries with seq > after (all when 0), at most limit
// (0 = no limit), filtered by match when non-nil.
func (s *Store) History(after uint64, limit int, match func(*Entry) bool) ([]Entry, error) {
	var out []Entry
	errStop := errors.New("stop")
	err := s.scanHistory(after, nil, func(e *Entry) error {
		if match != nil && !match(e) {
			return nil
		}
		out = append(out, *e)
		if limit > 0 && len(out) >= limit {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

// scanHistory calls fn, in order, with each entry after seq after that
// keep takes (nil: all), its pseudonyms resolved. keep sees the entry as
// stored, before the resolution, which it spares the entries it leaves.
func (s *Store) scanHistory(after uint64, keep func(*Entry) bool, fn func(*Entry) error) error {
	return s.View(func(tx *Tx) error {
		r := tx.resolver()
		return tx.scan("h/", true, func(key string, val []byte) (bool, error) {
			err := eachRecord(val, func(_, _, body []byte) error {
				var e Entry
				if err := decode(key, body, &e); err != nil {
					return err
				}
				if e.Seq <= after || (keep != nil && !keep(&e)) {
					return nil
				}
				if err := r.resolveEntry(&e); err != nil {
					return err
				}
				return fn(&e)
			})
			if errors.Is(err, errTruncatedBlock) {
				err = damaged(key, err)
			}
			return err == nil, err
		})
	})
}
