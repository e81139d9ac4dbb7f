package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"anprsec/pki/hsm"
)

// HSMCACommonName is the CN of a CA made inside an HSM by CreateHSMCA.
const HSMCACommonName = "anprsec CA"

// CreateHSMCA makes a CA whose key lives in the HSM named by uri: an
// RSA key of bits generated inside the token (sensitive, not extractable:
// it never exists outside), and its self-signed certificate (CN "anprsec
// CA", 10 years, as the development CA) written to certPath (PEM, 0644).
// When the token already holds the key (made by the HSM's own tools) only
// the certificate is made. It is idempotent: with the key and a matching
// certificate it does nothing and returns false; a certificate without
// its key in the token is an error and nothing is touched.
func CreateHSMCA(certPath, uri string, now time.Time, bits int) (keyCreated, certCreated bool, err error) {
	if bits != 2048 && bits != 3072 && bits != 4096 {
		return false, false, fmt.Errorf("pki: chiave della CA di %d bit: ammessi 2048, 3072 o 4096", bits)
	}
	u, err := hsm.ParseURI(uri)
	if err != nil {
		return false, false, err
	}
	certExists, err := exists(certPath)
	if err != nil {
		return false, false, err
	}
	signer, err := hsm.Open(u)
	switch {
	case err == nil && certExists:
		_, err := LoadCA(certPath, uri) // the certificate must be the key's
		return false, false, err
	case err == nil:
	case errors.Is(err, hsm.ErrNoKey) && certExists:
		return false, false, fmt.Errorf("pki: il certificato della CA %s esiste ma la sua chiave non è nel token (%s): ripristinare la chiave, o rimuovere il certificato per creare una nuova CA", certPath, uri)
	case errors.Is(err, hsm.ErrNoKey):
		if signer, err = hsm.Generate(u, bits); err != nil {
			return false, false, err
		}
		keyCreated = true
	default:
		return false, false, err
	}
	ca, err := newSelfSignedCA(signer, HSMCACommonName, now)
	if err != nil {
		return keyCreated, false, fmt.Errorf("pki: il certificato della CA, firmato nell'HSM: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return keyCreated, false, err
	}
	tmp, err := writeTemp(certPath, CertificatePEM(ca.Cert), 0o644)
	if err != nil {
		return keyCreated, false, err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, certPath); err != nil {
		return keyCreated, false, err
	}
	return keyCreated, true, nil
}

// CertificatePEM encodes a certificate as PEM ("CERTIFICATE").
func CertificatePEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
