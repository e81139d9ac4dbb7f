package pgp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// KeyDir is a folder of public keys (the holders' keys) read once, for a
// run that looks up many addresses: KeyForEmail reads the whole folder at
// each call.
type KeyDir struct {
	dir   string
	byKey map[string][]found // lower-case e-mail -> keys with that address
}

type found struct {
	e    *openpgp.Entity
	file string
}

// OpenKeyDir reads every *.asc file of dir with the rules of KeyForEmail
// (usable now for encryption; unusable files become warnings). A missing
// dir is empty.
func OpenKeyDir(dir string) (*KeyDir, []error, error) {
	k := &KeyDir{dir: dir, byKey: map[string][]found{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return k, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pgp: chiavi dei titolari: %w", err)
	}
	now := config.Now()
	var warnings []error
	for _, de := range entries {
		if de.IsDir() || !strings.EqualFold(filepath.Ext(de.Name()), ".asc") {
			continue
		}
		path := filepath.Join(dir, de.Name())
		data, err := readLimited(path)
		if err != nil {
			warnings = append(warnings, err)
			continue
		}
		el, err := parsePublic(data, checkEncryption, now)
		if err != nil {
			warnings = append(warnings, fmt.Errorf("pgp: %s: %w", path, err))
			continue
		}
		for _, e := range el {
			seen := map[string]bool{}
			for _, id := range e.Identities {
				if id.UserId == nil || id.Revoked(now) {
					continue
				}
				addr := strings.ToLower(strings.TrimSpace(id.UserId.Email))
				if addr == "" || seen[addr] {
					continue
				}
				seen[addr] = true
				k.byKey[addr] = append(k.byKey[addr], found{e, path})
			}
		}
	}
	return k, warnings, nil
}

// ForEmail returns the one key for email, nil when there is none, an error
// when two or more keys claim it (as KeyForEmail).
func (k *KeyDir) ForEmail(email string) (openpgp.EntityList, error) {
	fs := k.byKey[strings.ToLower(strings.TrimSpace(email))]
	switch len(fs) {
	case 0:
		return nil, nil
	case 1:
		return openpgp.EntityList{fs[0].e}, nil
	}
	files := make([]string, len(fs))
	for i, f := range fs {
		files[i] = f.file
	}
	return nil, fmt.Errorf("pgp: %d chiavi per %s in %s (%s): tenere solo la chiave attuale del titolare", len(fs), email, k.dir, strings.Join(files, ", "))
}
