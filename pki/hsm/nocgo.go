//go:build !cgo

package hsm

import (
	"crypto"
	"errors"
)

// Available reports whether this build can open PKCS#11 modules: not
// without cgo.
const Available = false

// ErrNoKey is returned (wrapped) by Open when the token has no such key.
var ErrNoKey = errors.New("chiave non presente nel token")

// Open fails with ErrNoCgo: a PKCS#11 module is a C library.
func Open(u *URI) (crypto.Signer, error) { return nil, ErrNoCgo }

// Generate fails with ErrNoCgo: a PKCS#11 module is a C library.
func Generate(u *URI, bits int) (crypto.Signer, error) { return nil, ErrNoCgo }
