// Package secret reads and creates the files that hold secrets (symmetric keys,
// private keys) and refuses them when group or others may read them.
package secret

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// KeySize is the size of every symmetric key file: 32 random bytes.
const KeySize = 32

// ErrPermissions is returned for a key file readable by group or others.
var ErrPermissions = errors.New("il file della chiave è leggibile dal gruppo o da altri")

// CheckFile refuses a secret file (key, private key) that group or
// others may read or write: an operator must fix it with chmod 600.
func CheckFile(path string) error {
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return fmt.Errorf("il file segreto %s non esiste", path)
	}
	if err != nil {
		return fmt.Errorf("file segreto: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s: %w (permessi %04o); eseguire: chmod 600 %s", path, ErrPermissions, fi.Mode().Perm(), path)
	}
	return nil
}

// ReadKey reads a 32-byte key file after checking its permissions.
func ReadKey(path string) ([]byte, error) {
	if err := CheckFile(path); err != nil {
		return nil, err
	}
	k, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("file della chiave %s: %d byte, attesi %d", path, len(k), KeySize)
	}
	return k, nil
}

// CreateKey writes a new random key to path with mode 0600, unless the file
// exists. It reports whether it created the file.
func CreateKey(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, err
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}
