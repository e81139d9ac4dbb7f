package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"anprsec/secret"
)

// Rotation of the store key (docs/rules.md#secrets). Badger changes the
// key of an encrypted store only while it is closed, and its own rotation
// only wraps the same data keys with a new master key; here the store is
// rebuilt instead, so that the old key opens nothing of the new one:
//
//  1. the new key is written to <store.key>.new (0600, never overwritten)
//     and a state file <data dir>.rotate is written beside the data dir;
//     from here on every command that opens the store refuses to start
//     (StoreRotationPending) until the rotation has finished;
//  2. a new store is built in <data dir>.new from a stream of the old one,
//     encrypted with the new key; the history gets `chiavi.rotazione` in
//     it, and it is verified: the history chain holds, and every record of
//     the old store is in it, the same;
//  3. the old data dir becomes <data dir>.<YYYYMMDDHHMMSS>.old and the new
//     one takes its place; the old key is archived as
//     <store.key>.<YYYYMMDDHHMMSS>.old and the new one renamed into place;
//  4. the state file goes.
//
// Every step is a rename or is redone from the start, so a rotation
// stopped anywhere (kill -9 included) resumes with the next run. The old
// store is held open while the new one is built: a daemon that holds it
// makes the rotation refuse to start.

// ErrStoreRotationPending is wrapped by StoreRotationPending's error.
var ErrStoreRotationPending = errors.New("una rotazione della chiave dell'archivio è a metà: rieseguire `anprsec keys rotate store` per completarla")

// storeRotation is the state file of a rotation in progress.
type storeRotation struct {
	Old   string `json:"old"` // fingerprints (KeyFingerprint)
	New   string `json:"new"`
	Stamp string `json:"stamp"` // YYYYMMDDHHMMSS (UTC): names the archives
	Built bool   `json:"built"` // <data dir>.new is complete and verified
}

func storeRotationFile(dir string) string { return filepath.Clean(dir) + ".rotate" }

// StoreRotationPending returns an error wrapping ErrStoreRotationPending
// when a rotation of the key of the store in dir is half done.
func StoreRotationPending(dir string) error {
	if _, err := os.Lstat(storeRotationFile(dir)); err == nil {
		return fmt.Errorf("store %s: %w (%s)", dir, ErrStoreRotationPending, storeRotationFile(dir))
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// StoreRotationOptions tune RotateStoreKey.
type StoreRotationOptions struct {
	Now func() time.Time
	// Stop, when set, is called after each step ("built", "moved-old",
	// "moved-new", "key-swapped"); an error stops the rotation there, as a
	// crash would (tests).
	Stop func(step string) error
}

// StoreRotationResult tells what RotateStoreKey did.
type StoreRotationResult struct {
	Resumed    bool
	Records    int    // records copied into the new store (this run)
	OldDir     string // the old store, kept
	KeyArchive string // the old key, archived
	Old, New   string // fingerprints
}

// RotateStoreKey rotates the key keyPath of the store in dir (see above),
// or resumes the rotation in progress. src is the actor of the history
// entry.
func RotateStoreKey(dir, keyPath string, src Source, opt StoreRotationOptions) (*StoreRotationResult, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	stop := func(step string) error {
		if opt.Stop == nil {
			return nil
		}
		return opt.Stop(step)
	}
	dir = filepath.Clean(dir)
	statePath, newDir := storeRotationFile(dir), dir+".new"
	cur, err := secret.ReadKey(keyPath)
	if err != nil {
		return nil, err
	}
	rot, resumed, err := storeRotationState(dir, keyPath, cur, opt.Now())
	if err != nil {
		return nil, err
	}
	stamp, err := time.Parse("20060102150405", rot.Stamp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", statePath, err)
	}
	oldDir := dir + "." + rot.Stamp + ".old"
	res := &StoreRotationResult{Resumed: resumed, Old: rot.Old, New: rot.New, OldDir: oldDir}
	switch KeyFingerprint(cur) {
	case rot.New: // stopped after the key swap
		res.KeyArchive = findArchive(keyPath, rot.Old)
		return res, removeState(statePath)
	case rot.Old:
	default:
		return nil, fmt.Errorf("%s is neither the old (%s) nor the new (%s) key of the rotation in progress (fingerprint %s)", keyPath, rot.Old, rot.New, KeyFingerprint(cur))
	}
	newKey, err := pendingNewKey(keyPath+".new", rot.New)
	if err != nil {
		return nil, err
	}
	if !rot.Built {
		if exists(oldDir) {
			return nil, fmt.Errorf("%s exists before the new store was built: move it away and run again", oldDir)
		}
		if err := os.RemoveAll(newDir); err != nil { // a build stopped half way
			return nil, err
		}
		detail := fmt.Sprintf("chiave dello store ruotata: impronta %s → %s; lo store precedente resta in %s, la sua chiave è archiviata in %s",
			rot.Old, rot.New, filepath.Base(oldDir), filepath.Base(keyPath)+"."+rot.Stamp+".old")
		if res.Records, err = buildRotated(dir, newDir, cur, newKey, src, detail); err != nil {
			return res, err
		}
		if err := syncDir(filepath.Dir(newDir)); err != nil {
			return res, err
		}
		rot.Built = true
		if err := writeState(statePath, &rot); err != nil {
			return res, err
		}
		if err := stop("built"); err != nil {
			return res, err
		}
	}
	if err := swapStoreDirs(dir, newDir, oldDir, stop); err != nil {
		return res, err
	}
	// The store in place must be the new one before the old key goes.
	st, err := Open(Options{Dir: dir, Key: newKey})
	if err != nil {
		return res, fmt.Errorf("the store in place after the swap: %w", err)
	}
	if err := st.Close(); err != nil {
		return res, err
	}
	if res.KeyArchive, err = swapKeyFiles(keyPath, cur, stamp); err != nil {
		return res, err
	}
	if err := stop("key-swapped"); err != nil {
		return res, err
	}
	return res, removeState(statePath)
}

// storeRotationState returns the rotation of the key of the store in dir
// in progress, beginning it when there is none (the store checked, the new
// key made, the state file written), and whether it was in progress.
func storeRotationState(dir, keyPath string, cur []byte, now time.Time) (rot storeRotation, resumed bool, err error) {
	statePath := storeRotationFile(dir)
	b, err := os.ReadFile(statePath)
	if err == nil {
		if err := json.Unmarshal(b, &rot); err != nil {
			return rot, true, fmt.Errorf("%s: %w", statePath, err)
		}
		return rot, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return rot, false, err
	}
	if exists(dir + ".new") {
		return rot, false, fmt.Errorf("%s.new exists and no rotation is in progress: move it away and run again", dir)
	}
	// The old store opens with the key, and no other process holds it.
	st, err := Open(Options{Dir: dir, Key: cur})
	if err != nil {
		return rot, false, err
	}
	if err := st.Close(); err != nil {
		return rot, false, err
	}
	newKey, err := newKeyFile(keyPath+".new", cur)
	if err != nil {
		return rot, false, err
	}
	rot = storeRotation{Old: KeyFingerprint(cur), New: KeyFingerprint(newKey), Stamp: now.UTC().Format("20060102150405")}
	return rot, false, writeState(statePath, &rot)
}

// swapStoreDirs renames dir to oldDir and newDir to dir, each step once:
// a run resumed after either finds it done.
func swapStoreDirs(dir, newDir, oldDir string, stop func(string) error) error {
	parent := filepath.Dir(dir)
	if exists(dir) && exists(newDir) {
		if exists(oldDir) {
			return fmt.Errorf("%s, %s and %s all exist: the rotation cannot tell which store is which; move %s away and run again", dir, newDir, oldDir, oldDir)
		}
		if err := os.Rename(dir, oldDir); err != nil {
			return err
		}
		if err := syncDir(parent); err != nil {
			return err
		}
	}
	if err := stop("moved-old"); err != nil {
		return err
	}
	if exists(newDir) {
		if err := os.Rename(newDir, dir); err != nil {
			return err
		}
		if err := syncDir(parent); err != nil {
			return err
		}
	}
	return stop("moved-new")
}

// buildRotated copies the store in dir (key oldKey) into a new store in
// newDir (key newKey), records the rotation in the new store's history
// and verifies the copy. It returns the number of records copied.
func buildRotated(dir, newDir string, oldKey, newKey []byte, src Source, detail string) (int, error) {
	from, err := Open(Options{Dir: dir, Key: oldKey})
	if err != nil {
		return 0, err
	}
	defer from.Close()
	before, err := from.VerifyHistory()
	if err != nil {
		return 0, fmt.Errorf("the store to rotate: %w", err)
	}
	if err := os.MkdirAll(newDir, 0o700); err != nil {
		return 0, err
	}
	to, err := Open(Options{Dir: newDir, Key: newKey})
	if err != nil {
		return 0, err
	}
	defer to.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := from.db.Backup(pw, 0)
		pw.CloseWithError(err)
		done <- err
	}()
	err = to.db.Load(pr, 256)
	pr.CloseWithError(errors.New("load stopped"))
	if berr := <-done; berr != nil && err == nil {
		err = berr
	}
	if err != nil {
		return 0, fmt.Errorf("copying the store into %s: %w", newDir, err)
	}
	if err := to.Update(func(tx *Tx) error { return tx.Record(src, "chiavi.rotazione", "chiave", "store", detail) }); err != nil {
		return 0, err
	}
	after, err := to.VerifyHistory()
	if err != nil {
		return 0, fmt.Errorf("the new store %s: %w", newDir, err)
	}
	if after.Entries != before.Entries+1 {
		return 0, fmt.Errorf("the new store %s: %d history entries, want %d", newDir, after.Entries, before.Entries+1)
	}
	n, err := sameRecords(from, to)
	if err != nil {
		return 0, fmt.Errorf("the new store %s: %w", newDir, err)
	}
	if err := to.Sync(); err != nil {
		return 0, err
	}
	return n, to.Close()
}

// sameRecords checks that every record of from is in to with the same
// value, and that to holds nothing else but one more history block and
// a new history head. It returns the number of records of from.
func sameRecords(from, to *Store) (int, error) {
	n, extra := 0, 0
	err := from.db.View(func(ftx *badger.Txn) error {
		if err := countKeys(ftx, &n); err != nil {
			return err
		}
		return to.db.View(func(ttx *badger.Txn) error {
			it := ttx.NewIterator(badger.DefaultIteratorOptions)
			defer it.Close()
			matched := 0
			for it.Rewind(); it.Valid(); it.Next() {
				item := it.Item()
				k := string(item.Key())
				v, err := item.ValueCopy(nil)
				if err != nil {
					return damaged(k, err)
				}
				old, err := ftx.Get(item.Key())
				if errors.Is(err, badger.ErrKeyNotFound) {
					// The rotation's history block, and the history head
					// (and the mark that its history needs no migration to
					// pseudonyms) when the old store had no history yet.
					if k == histHeadKey || k == histPseudoKey {
						continue
					}
					if !strings.HasPrefix(k, "h/") || extra > 0 {
						return fmt.Errorf("%s is not in the old store", describeKey(k))
					}
					extra++
					continue
				}
				if err != nil {
					return err
				}
				matched++
				if k == histHeadKey {
					continue
				}
				ov, err := old.ValueCopy(nil)
				if err != nil {
					return damaged(k, err)
				}
				if !bytes.Equal(ov, v) {
					return fmt.Errorf("%s differs from the old store's", describeKey(k))
				}
			}
			if matched != n {
				return fmt.Errorf("%d of the old store's %d records are missing", n-matched, n)
			}
			return nil
		})
	})
	return n, err
}

func countKeys(txn *badger.Txn, n *int) error {
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		*n++
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// writeState replaces the state file whole (a temporary file renamed).
func writeState(path string, rot *storeRotation) error {
	b, err := json.Marshal(rot)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func removeState(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}
