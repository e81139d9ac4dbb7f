package store

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Key pool (docs/rules.md#certificates): private keys generated ahead of the
// certificate batch, PKCS#8 DER sealed with the Sealer under the context
// PoolSealContext(seq). There is one pool per key algorithm:
//
//	k/<algorithm>/<8-byte big-endian seq>   sealed PKCS#8 DER
//	q/keypool                               the gap-free sequence
//
// A key leaves the pool through TakePoolKeys, which deletes what it returns
// in the same transaction: a key comes out once and only once (writers are
// serialized by Update, and a Badger conflict retries the whole function).

const poolPrefix = "k/"

// PoolSealContext is the seal context of the pooled key number seq.
func PoolSealContext(seq uint64) string { return "keypool/" + strconv.FormatUint(seq, 10) }

// PoolKey is a sealed key taken from the pool.
type PoolKey struct {
	Seq    uint64
	Alg    string
	Sealed []byte // open with Sealer.Open(Sealed, PoolSealContext(Seq))
}

func poolAlgPrefix(alg string) string { return poolPrefix + alg + "/" }

func poolKey(alg string, seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return poolAlgPrefix(alg) + string(b[:])
}

// PutPoolKey adds a key of algorithm alg to the pool. seal is called with
// the seal context of the key's sequence number and returns the sealed
// PKCS#8 DER. It returns the sequence number.
func (tx *Tx) PutPoolKey(alg string, seal func(context string) []byte) (uint64, error) {
	if alg == "" {
		return 0, fmt.Errorf("store: pool key without an algorithm")
	}
	seq, err := tx.Sequence("keypool")
	if err != nil {
		return 0, err
	}
	sealed := seal(PoolSealContext(seq))
	if len(sealed) == 0 {
		return 0, fmt.Errorf("store: empty sealed pool key")
	}
	return seq, tx.setRaw(poolKey(alg, seq), sealed)
}

// TakePoolKeys removes up to n keys of algorithm alg from the pool, oldest
// first, and returns them. Keys of other algorithms are left alone.
func (tx *Tx) TakePoolKeys(alg string, n int) ([]PoolKey, error) {
	if n <= 0 {
		return nil, nil
	}
	prefix := poolAlgPrefix(alg)
	var out []PoolKey
	err := tx.scan(prefix, true, func(k string, v []byte) (bool, error) {
		tail := k[len(prefix):]
		if len(tail) != 8 {
			return true, nil
		}
		out = append(out, PoolKey{Seq: binary.BigEndian.Uint64([]byte(tail)), Alg: alg, Sealed: v})
		return len(out) < n, nil
	})
	if err != nil {
		return nil, err
	}
	for _, pk := range out {
		if err := tx.del(poolKey(alg, pk.Seq)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PoolSize returns the number of pooled keys of algorithm alg.
func (tx *Tx) PoolSize(alg string) (int, error) { return tx.Count(poolAlgPrefix(alg)) }

// PurgePoolKeys deletes the pooled keys of every algorithm but keep (after a
// change of pki.key_algorithm) and returns how many it deleted.
func (tx *Tx) PurgePoolKeys(keep string) (int, error) {
	var dead []string
	keepPrefix := poolAlgPrefix(keep)
	err := tx.scan(poolPrefix, false, func(k string, _ []byte) (bool, error) {
		if len(k) < len(keepPrefix) || k[:len(keepPrefix)] != keepPrefix {
			dead = append(dead, k)
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range dead {
		if err := tx.del(k); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}
