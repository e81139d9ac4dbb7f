//go:build cgo

package hsm

import (
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Available reports whether this build can open PKCS#11 modules.
const Available = true

// contexts are the open tokens, one per module, token and PIN file: a
// module is initialized once per process and its sessions are pooled
// (crypto11), so the jobs that load the CA at each run reuse them.
var contexts struct {
	sync.Mutex
	m map[string]*crypto11.Context
}

func contextOf(u *URI) (*crypto11.Context, error) {
	if _, err := os.Stat(u.ModulePath); err != nil {
		return nil, fmt.Errorf("hsm: module-path: %w", err)
	}
	pin, err := u.PIN()
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%v\x00%s", u.ModulePath, u.Token, u.Serial, u.SlotID, u.PinFile)
	contexts.Lock()
	defer contexts.Unlock()
	if c, ok := contexts.m[key]; ok {
		return c, nil
	}
	cfg := &crypto11.Config{Path: u.ModulePath, TokenLabel: u.Token, TokenSerial: u.Serial, SlotNumber: u.SlotID, Pin: pin}
	if pin == "" {
		cfg.LoginNotSupported = true
	}
	c, err := crypto11.Configure(cfg)
	if err != nil {
		return nil, fmt.Errorf("hsm: %s: %w", u.ModulePath, err)
	}
	if contexts.m == nil {
		contexts.m = map[string]*crypto11.Context{}
	}
	contexts.m[key] = c
	return c, nil
}

// ErrNoKey is returned (wrapped) by Open when the token has no such key.
var ErrNoKey = errors.New("chiave non presente nel token")

func idLabel(u *URI) (id, label []byte) {
	if len(u.ID) > 0 {
		id = u.ID
	}
	if u.Object != "" {
		label = []byte(u.Object)
	}
	return id, label
}

// Open returns a signer for the private key named by u. The key stays in
// the token: every signature is a PKCS#11 call.
func Open(u *URI) (crypto.Signer, error) {
	c, err := contextOf(u)
	if err != nil {
		return nil, err
	}
	id, label := idLabel(u)
	found, err := c.FindKeyPairs(id, label)
	switch {
	case err != nil:
		return nil, fmt.Errorf("hsm: %s: %w", u, err)
	case len(found) == 0:
		return nil, fmt.Errorf("hsm: %s: %w (una chiave privata con la sua chiave pubblica)", u, ErrNoKey)
	case len(found) > 1:
		return nil, fmt.Errorf("hsm: %s: %d chiavi corrispondono: indicarne una con id=", u, len(found))
	}
	return found[0], nil
}

// Generate makes an RSA key pair of bits inside the token named by u,
// labelled with u's object and with u's id (16 random bytes when u has
// none): the private key is a token object, sensitive and not
// extractable, allowed to sign only (no decryption, no unwrapping), so it
// never exists outside the token. It refuses when a key with that label or id exists.
func Generate(u *URI, bits int) (crypto.Signer, error) {
	if _, err := Open(u); err == nil {
		return nil, fmt.Errorf("hsm: %s: il token ha già questa chiave", u)
	} else if !errors.Is(err, ErrNoKey) {
		return nil, err
	}
	c, err := contextOf(u)
	if err != nil {
		return nil, err
	}
	id, label := idLabel(u)
	if id == nil {
		id = make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
	}
	public, err := crypto11.NewAttributeSetWithID(id)
	if err != nil {
		return nil, err
	}
	if label != nil {
		if err := public.Set(crypto11.CkaLabel, label); err != nil {
			return nil, err
		}
	}
	private := public.Copy()
	public.AddIfNotPresent([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
	})
	private.AddIfNotPresent([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
	})
	s, err := c.GenerateRSAKeyPairWithAttributes(public, private, bits)
	if err != nil {
		return nil, fmt.Errorf("hsm: %s: generazione di una chiave RSA-%d: %w", u, bits, err)
	}
	return s, nil
}
