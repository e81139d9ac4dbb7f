package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"anprsec/domain"
	"anprsec/secret"
)

// Rotation of the seal key (docs/rules.md#secrets). Every sealed value is
// sealed again with a new key, batch by batch, each batch one transaction;
// a value that the new key opens is already done, so a rotation stopped at
// any point (kill -9 included) resumes where it stopped and loses nothing:
//
//  1. the new key is written to <seal>.new (0600, never overwritten) and
//     the rotation is recorded in the store's meta (both fingerprints);
//     from here on every command that uses the seal key refuses to start
//     (CheckSealKey) until the rotation has finished;
//  2. every sealed value (pooled keys, smart-card secret halves, the
//     PKCS#12 and password of postazioni, the OCSP responder keys, and last
//     the seal check value) is sealed again with the new key;
//  3. the old key is archived as <seal>.<YYYYMMDDHHMMSS>.old (0600) and the
//     new one renamed into place;
//  4. the rotation leaves the meta and the history gets `chiavi.rotazione`
//     (fingerprints only, no key material) in the same transaction.

const sealRotationMeta = "seal-rotation"

// ErrSealRotationPending is wrapped by CheckSealKey's error while a
// rotation of the seal key is half done.
var ErrSealRotationPending = errors.New("una rotazione della chiave di sigillo è a metà: rieseguire `anprsec keys rotate seal` per completarla")

// SealRotationPending returns an error wrapping ErrSealRotationPending
// while a rotation of the seal key is half done.
func (st *Store) SealRotationPending() error {
	var rot sealRotation
	switch err := st.View(func(tx *Tx) error { return tx.Meta(sealRotationMeta, &rot) }); {
	case err == nil:
		return fmt.Errorf("%w (iniziata %s)", ErrSealRotationPending, rot.Started.UTC().Format("02/01/2006 15:04 UTC"))
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("seal rotation: %w", err)
	}
	return nil
}

// sealRotation is the meta record of a rotation in progress.
type sealRotation struct {
	Old     string    `json:"old"` // fingerprints (KeyFingerprint)
	New     string    `json:"new"`
	Started time.Time `json:"started"`
}

// KeyFingerprint names a key without revealing it: the first 8 bytes of
// SHA-256 over "anprsec key fingerprint" and the key, in hex.
func KeyFingerprint(key []byte) string {
	h := sha256.New()
	h.Write([]byte("anprsec key fingerprint\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// SealRotationOptions tune RotateSealKey.
type SealRotationOptions struct {
	Batch int // records looked at per transaction (default 128)
	// AfterBatch, when set, is called after each committed batch; an error
	// stops the rotation there, as a crash would (tests).
	AfterBatch func(batch int) error
	// AfterSwap, when set, is called once the key files are swapped,
	// before the rotation leaves the meta; an error stops it there.
	AfterSwap func() error
}

// SealRotationResult tells what RotateSealKey did.
type SealRotationResult struct {
	Resumed  bool   // a rotation was already in progress
	Resealed int    // values sealed again by this run
	Archive  string // where the old key was archived
	Old, New string // fingerprints
}

// sealedPrefixes are the key ranges that hold sealed values, the seal
// check value last: it opens with the new key only once all others do.
var sealedPrefixes = []string{poolPrefix, "s/", "w/", "m/ocsp-responder/", "m/" + sealCheckMeta}

// RotateSealKey rotates the seal key whose file is sealPath (see above),
// or resumes the rotation in progress. src is the actor of the history
// entry.
func (st *Store) RotateSealKey(sealPath string, src Source, opt SealRotationOptions) (*SealRotationResult, error) {
	if opt.Batch <= 0 {
		opt.Batch = 128
	}
	rot, oldKey, newKey, resumed, err := st.sealRotationKeys(sealPath)
	if err != nil {
		return nil, err
	}
	res := &SealRotationResult{Resumed: resumed, Old: rot.Old, New: rot.New}
	newS, err := NewSealer(newKey)
	if err != nil {
		return nil, err
	}
	var oldS *Sealer
	if oldKey != nil {
		if oldS, err = NewSealer(oldKey); err != nil {
			return nil, err
		}
	}
	if res.Resealed, err = st.resealAll(oldS, newS, opt); err != nil {
		return res, err
	}
	if oldKey != nil {
		// Every value sealed again is durable before the old key leaves
		// its place.
		if err := st.Sync(); err != nil {
			return res, err
		}
		if res.Archive, err = swapKeyFiles(sealPath, oldKey, st.now().UTC()); err != nil {
			return res, err
		}
		if opt.AfterSwap != nil {
			if err := opt.AfterSwap(); err != nil {
				return res, err
			}
		}
	} else {
		res.Archive = findArchive(sealPath, rot.Old)
	}
	detail := fmt.Sprintf("chiave di sigillo ruotata: impronta %s → %s; la precedente è archiviata in %s", rot.Old, rot.New, filepath.Base(res.Archive))
	err = st.Update(func(tx *Tx) error {
		if err := tx.DeleteMeta(sealRotationMeta); err != nil {
			return err
		}
		return tx.Record(src, "chiavi.rotazione", "chiave", "seal", detail)
	})
	if err != nil {
		return res, err
	}
	return res, st.Sync()
}

// sealRotationKeys returns the rotation of the seal key in progress,
// beginning it when there is none (the new key made, the rotation recorded
// in the meta), with its old key (nil once the key files are swapped) and
// its new key, and whether it was in progress already.
func (st *Store) sealRotationKeys(sealPath string) (rot sealRotation, oldKey, newKey []byte, resumed bool, err error) {
	newPath := sealPath + ".new"
	cur, err := secret.ReadKey(sealPath)
	if err != nil {
		return rot, nil, nil, false, err
	}
	switch err := st.View(func(tx *Tx) error { return tx.Meta(sealRotationMeta, &rot) }); {
	case errors.Is(err, ErrNotFound):
		oldS, err := NewSealer(cur)
		if err != nil {
			return rot, nil, nil, false, err
		}
		if _, err := st.CheckSealKey(oldS); err != nil {
			return rot, nil, nil, false, err
		}
		if newKey, err = newKeyFile(newPath, cur); err != nil {
			return rot, nil, nil, false, err
		}
		rot = sealRotation{Old: KeyFingerprint(cur), New: KeyFingerprint(newKey), Started: st.now().UTC()}
		if err := st.Update(func(tx *Tx) error { return tx.SetMeta(sealRotationMeta, rot) }); err != nil {
			return rot, nil, nil, false, err
		}
		return rot, cur, newKey, false, nil
	case err != nil:
		return rot, nil, nil, false, err
	}
	switch KeyFingerprint(cur) {
	case rot.New: // stopped after the swap: every value is sealed with the new key
		return rot, nil, cur, true, nil
	case rot.Old:
		newKey, err = pendingNewKey(newPath, rot.New)
		return rot, cur, newKey, true, err
	}
	return rot, nil, nil, true, fmt.Errorf("%s is neither the old (%s) nor the new (%s) key of the rotation in progress (fingerprint %s)", sealPath, rot.Old, rot.New, KeyFingerprint(cur))
}

// newKeyFile returns the new key of a rotation that begins: the key in
// newPath, made there when absent. A newPath already there was written by
// a run stopped before it recorded the rotation: nothing was encrypted or
// sealed with it yet, so it is taken as the new key.
func newKeyFile(newPath string, cur []byte) ([]byte, error) {
	if _, err := os.Lstat(newPath); errors.Is(err, os.ErrNotExist) {
		if err := createKeyFile(newPath); err != nil {
			return nil, err
		}
	}
	k, err := secret.ReadKey(newPath)
	if err != nil {
		return nil, fmt.Errorf("%w (left by a rotation stopped before it began: remove it and run again)", err)
	}
	if bytes.Equal(k, cur) {
		return nil, fmt.Errorf("%s holds the current key itself: remove it and run again", newPath)
	}
	return k, nil
}

// pendingNewKey reads the new key of the rotation in progress, whose
// fingerprint is fp.
func pendingNewKey(newPath, fp string) ([]byte, error) {
	k, err := secret.ReadKey(newPath)
	if err != nil {
		return nil, fmt.Errorf("the rotation in progress needs its new key: %w", err)
	}
	if KeyFingerprint(k) != fp {
		return nil, fmt.Errorf("%s is not the new key of the rotation in progress (fingerprint %s, want %s)", newPath, KeyFingerprint(k), fp)
	}
	return k, nil
}

// swapKeyFiles archives old, the key in path (archiveKey), and renames
// <path>.new into its place. It returns the archive.
func swapKeyFiles(path string, old []byte, now time.Time) (string, error) {
	archive, err := archiveKey(path, old, now)
	if err != nil {
		return "", err
	}
	if err := os.Rename(path+".new", path); err != nil {
		return archive, err
	}
	return archive, syncDir(filepath.Dir(path))
}

// resealAll seals again with newS every value that newS does not open
// yet, opening it with oldS; with oldS nil it only checks that newS opens
// every value. Each batch is one transaction.
func (st *Store) resealAll(oldS, newS *Sealer, opt SealRotationOptions) (int, error) {
	total, batch := 0, 0
	for _, prefix := range sealedPrefixes {
		after := ""
		for {
			var n int
			var next string
			err := st.Update(func(tx *Tx) error {
				var err error
				n, next, err = tx.resealBatch(prefix, after, opt.Batch, oldS, newS)
				return err
			})
			if err != nil {
				return total, err
			}
			total += n
			batch++
			if opt.AfterBatch != nil {
				if err := opt.AfterBatch(batch); err != nil {
					return total, err
				}
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	return total, nil
}

// resealBatch handles up to limit records of prefix after the key after
// ("" from the first); it returns how many values it sealed again and the
// last key it looked at ("" when the prefix is done).
func (tx *Tx) resealBatch(prefix, after string, limit int, oldS, newS *Sealer) (int, string, error) {
	type change struct {
		key string
		val []byte
	}
	var changes []change
	resealed, seen, last := 0, 0, ""
	opt := badger.DefaultIteratorOptions
	opt.Prefix = []byte(prefix)
	it := tx.txn.NewIterator(opt)
	start := []byte(prefix)
	if after != "" {
		start = append([]byte(after), 0)
	}
	for it.Seek(start); it.Valid(); it.Next() {
		if seen == limit {
			break
		}
		item := it.Item()
		key := string(item.Key())
		v, err := item.ValueCopy(nil)
		if err != nil {
			it.Close()
			return 0, "", damaged(key, err)
		}
		seen++
		last = key
		nv, n, err := resealRecord(key, v, oldS, newS)
		if err != nil {
			it.Close()
			return 0, "", err
		}
		if n > 0 {
			resealed += n
			changes = append(changes, change{key, nv})
		}
	}
	more := it.Valid()
	it.Close()
	for _, c := range changes {
		if err := tx.setRaw(c.key, c.val); err != nil {
			return 0, "", err
		}
	}
	if !more {
		last = ""
	}
	return resealed, last, nil
}

// resealRecord returns the record key=val with its sealed values sealed
// again by newS, and how many it changed.
func resealRecord(key string, val []byte, oldS, newS *Sealer) ([]byte, int, error) {
	return resealRecordWith(key, val, func(sealed []byte, context string) ([]byte, bool, error) {
		if _, err := newS.Open(sealed, context); err == nil {
			return sealed, false, nil
		}
		if oldS == nil {
			return nil, false, fmt.Errorf("%w: the new seal key does not open %s (%s)", ErrSealKey, describeKey(key), context)
		}
		plain, err := oldS.Open(sealed, context)
		if err != nil {
			return nil, false, fmt.Errorf("%w: neither the old nor the new seal key opens %s (%s)", ErrSealKey, describeKey(key), context)
		}
		return newS.Seal(plain, context), true, nil
	})
}

// resealRecordWith calls re with each sealed value of the record key=val
// and its context, and returns the record with the values re returned and
// how many re changed.
func resealRecordWith(key string, val []byte, re func(sealed []byte, context string) ([]byte, bool, error)) ([]byte, int, error) {
	n := 0
	var err error
	field := func(p *[]byte, context string) {
		if err != nil || len(*p) == 0 {
			return
		}
		v, changed, e := re(*p, context)
		if e != nil {
			err = e
			return
		}
		if changed {
			*p = v
			n++
		}
	}
	var rec any
	switch {
	case strings.HasPrefix(key, poolPrefix):
		if len(key) < len(poolPrefix)+8 {
			return val, 0, nil
		}
		seq := binary.BigEndian.Uint64([]byte(key[len(key)-8:]))
		out := val
		field(&out, PoolSealContext(seq))
		return out, n, err
	case strings.HasPrefix(key, "s/"):
		var c domain.SmartCard
		if err := decode(key, val, &c); err != nil {
			return nil, 0, err
		}
		field(&c.FirstSealed, domain.CardSecretsSealContext(c.Serial, "prima"))
		field(&c.SecondSealed, domain.CardSecretsSealContext(c.Serial, "seconda"))
		rec = &c
	case strings.HasPrefix(key, "w/"):
		var p domain.Postazione
		if err := decode(key, val, &p); err != nil {
			return nil, 0, err
		}
		field(&p.P12Sealed, domain.P12SealContext(p.Code))
		field(&p.PasswordSealed, domain.PasswordSealContext(p.Code))
		rec = &p
	case strings.HasPrefix(key, "m/ocsp-responder/"):
		var r OCSPResponder
		if err := decode(key, val, &r); err != nil {
			return nil, 0, err
		}
		field(&r.KeySealed, OCSPResponderSealContext(r.CAKeyID))
		rec = &r
	case key == "m/"+sealCheckMeta:
		var check []byte
		if err := decode(key, val, &check); err != nil {
			return nil, 0, err
		}
		field(&check, sealCheckContext)
		rec = check
	default:
		return val, 0, nil
	}
	if err != nil || n == 0 {
		return val, 0, err
	}
	b, err := json.Marshal(rec)
	return b, n, err
}

// createKeyFile writes a new random key to path (0600) whole or not at
// all: it is written and synced under a temporary name, then linked to
// path, which fails when path exists (a key file is never overwritten).
func createKeyFile(path string) error {
	k := make([]byte, secret.KeySize)
	if _, err := rand.Read(k); err != nil {
		return err
	}
	return writeKeyFile(path, k)
}

func writeKeyFile(path string, k []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// archiveKey keeps a copy of key, the key file path held before a
// rotation, as <path>.<YYYYMMDDHHMMSS>.old (0600); an archive of the same
// key already there (a rotation resumed after it archived) is kept.
func archiveKey(path string, key []byte, now time.Time) (string, error) {
	if a := findArchive(path, KeyFingerprint(key)); a != "" {
		return a, nil
	}
	a := path + "." + now.Format("20060102150405") + ".old"
	for i := 1; ; i++ {
		if _, err := os.Lstat(a); errors.Is(err, os.ErrNotExist) {
			break
		}
		a = fmt.Sprintf("%s.%s-%d.old", path, now.Format("20060102150405"), i)
	}
	return a, writeKeyFile(a, key)
}

// findArchive returns the archived key of path (<path>.*.old) whose
// fingerprint is fp, "" when there is none.
func findArchive(path, fp string) string {
	names, _ := filepath.Glob(path + ".*.old")
	for _, n := range names {
		if k, err := os.ReadFile(n); err == nil && len(k) == secret.KeySize && KeyFingerprint(k) == fp {
			return n
		}
	}
	return ""
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
