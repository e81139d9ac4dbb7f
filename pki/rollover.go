package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"anprsec/pki/hsm"
	"anprsec/secret"
)

// CA rollover (docs/rules.md#ca-rollover): a new CA key gets a self-signed
// certificate with the old CA's subject name and a cross certificate, the
// new key certified by the old CA. Keeping the name makes the cross
// certificate self-issued (RFC 5280 6.1.4), so it does not count against
// the old CA's path length 0: a relying party that trusts only the old CA
// builds leaf -> cross certificate -> old CA. The two CAs are told apart by
// their keys (Subject and Authority Key Identifiers, OCSP issuerKeyHash).

// KeyID is the hexadecimal (upper case) Subject Key Identifier of a CA
// certificate: the name of a CA in the store (postazioni record their
// issuer by it).
func KeyID(c *x509.Certificate) string {
	return strings.ToUpper(hex.EncodeToString(c.SubjectKeyId))
}

// Fingerprint is the SHA-256 of a certificate's DER, hexadecimal with
// colons as `openssl x509 -fingerprint -sha256` prints it.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// NewRolloverCA makes the self-signed certificate of the CA that follows
// old: signer's key, old's subject, the profile of a new development CA
// (keyCertSign+cRLSign, CA:TRUE path length 0, 10 years from now). The key
// must differ from old's.
func NewRolloverCA(old *x509.Certificate, signer crypto.Signer, now time.Time) (*CA, error) {
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(old.PublicKey) {
		return nil, errors.New("pki: la chiave della nuova CA è quella della vecchia CA")
	}
	tmpl, err := caTemplate(signer.Public(), now)
	if err != nil {
		return nil, err
	}
	tmpl.RawSubject = old.RawSubject
	return selfSign(tmpl, signer)
}

// CrossSign issues the cross certificate of next under ca: next's
// subject, key and Subject Key Identifier, issued and signed by ca
// (Authority Key Identifier = ca's), the CA profile of next, valid from
// next's start until the earlier of the two CAs' ends (the cross
// certificate is of no use once ca has expired).
func (ca *CA) CrossSign(next *x509.Certificate) (*x509.Certificate, error) {
	if !next.IsCA || len(next.SubjectKeyId) == 0 {
		return nil, errors.New("pki: certificato incrociato: il nuovo certificato non è di una CA con Subject Key Identifier")
	}
	tmpl, err := caTemplate(next.PublicKey, next.NotBefore)
	if err != nil {
		return nil, err
	}
	tmpl.RawSubject = next.RawSubject
	tmpl.SubjectKeyId = next.SubjectKeyId
	tmpl.AuthorityKeyId = ca.Cert.SubjectKeyId
	tmpl.NotBefore = next.NotBefore
	tmpl.NotAfter = next.NotAfter
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.SignatureAlgorithm = signatureAlgorithm(ca.Signer.Public())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, next.PublicKey, ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("pki: certificato incrociato: %w", err)
	}
	return x509.ParseCertificate(der)
}

// CheckCross reports why cross is not the cross certificate of next under
// old (nil when it is): next's subject and key, signed by old.
func CheckCross(cross, next, old *x509.Certificate) error {
	if !bytes.Equal(cross.RawSubject, next.RawSubject) || !bytes.Equal(cross.RawSubjectPublicKeyInfo, next.RawSubjectPublicKeyInfo) {
		return errors.New("pki: il certificato incrociato non porta il nome e la chiave della nuova CA")
	}
	if err := cross.CheckSignatureFrom(old); err != nil {
		return fmt.Errorf("pki: il certificato incrociato non è firmato dalla vecchia CA: %w", err)
	}
	return nil
}

// NewFileKey makes the RSA key (bits) of a new CA and writes it (PKCS#8
// PEM, mode 0600) to keyPath, which must not exist: a CA key is never
// overwritten. The file appears complete or not at all (temporary name,
// synced, then linked to its name, which fails if the name was taken).
func NewFileKey(keyPath string, bits int) (crypto.Signer, error) {
	if bits != 2048 && bits != 3072 && bits != 4096 {
		return nil, fmt.Errorf("pki: chiave della CA di %d bit: ammessi 2048, 3072 o 4096", bits)
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := WriteNewFile(keyPath, pemEncode("PRIVATE KEY", der), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// WriteNewFile writes data to path (mode perm, folders 0700) only if path
// does not exist: it is written under a temporary name, synced, and
// hard-linked to path, which fails rather than replace an existing file.
func WriteNewFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("pki: %s esiste già: non viene sovrascritto", path)
		}
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// LoadCertFile reads the first certificate of a PEM file.
func LoadCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseCertificatePEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// LoadKey opens a CA key: a PEM file (refused when group or others may
// read it) or a PKCS#11 URI, as LoadCA does, without a certificate.
func LoadKey(keyRef string) (crypto.Signer, error) {
	if hsm.IsURI(keyRef) {
		u, err := hsm.ParseURI(keyRef)
		if err != nil {
			return nil, fmt.Errorf("pki: chiave della CA: %w", err)
		}
		s, err := hsm.Open(u)
		if err != nil {
			return nil, fmt.Errorf("pki: chiave della CA: %w", err)
		}
		return s, nil
	}
	if err := secret.CheckFile(keyRef); err != nil {
		return nil, fmt.Errorf("pki: chiave della CA: %w", err)
	}
	data, err := os.ReadFile(keyRef)
	if err != nil {
		return nil, fmt.Errorf("pki: chiave della CA: %w", err)
	}
	s, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("pki: chiave della CA %s: %w", keyRef, err)
	}
	return s, nil
}
