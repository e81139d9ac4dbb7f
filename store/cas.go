package store

import (
	"time"
)

// The CAs of anprsec after a rollover (docs/rules.md#ca-rollover):
//
//	m/ca-registry          the CAs in order of creation and which one issues
//	m/crl-last             the last CRL of the first CA (as before any rollover)
//	m/crl-last/<TAG>       the last CRL of a later CA
//
// A store without m/ca-registry has one CA, the one of pki.ca_cert and
// pki.ca_key: nothing changes until the first `anprsec ca rinnova`.

const caRegistryMeta = "ca-registry"

// CARegistry lists the CAs. Current switches from one CA to the next in
// the one transaction that ends a rollover, so exactly one CA issues.
type CARegistry struct {
	CAs []CARecord `json:"cas"`
	// Current is the KeyID of the CA that issues new certificates.
	Current string `json:"current"`
	// Pending is a rollover begun and not yet switched to: a rerun of
	// `anprsec ca rinnova` resumes it (its files, its HSM key) instead of
	// making another key.
	Pending *CARecord `json:"pending,omitempty"`
}

// CARecord is one CA. The first CA has an empty Tag: its files are
// pki.ca_cert and pki.ca_key, its CRL crl/anprsec.crl; a later CA's Tag
// is the date of its rollover (AAAAMMGG), which names its files, its key
// in an HSM, its CRL and its URLs.
type CARecord struct {
	Tag      string    `json:"tag"`
	KeyID    string    `json:"key_id"`          // Subject Key Identifier, hex upper case
	CertDER  []byte    `json:"cert_der"`        // the self-signed certificate
	CrossDER []byte    `json:"cross,omitempty"` // the cross certificate under the previous CA
	Created  time.Time `json:"created"`
	NotAfter time.Time `json:"not_after"`
	// Retired is when the CA stopped publishing a CRL and answering OCSP:
	// its last certificate had expired or been replaced.
	Retired time.Time `json:"retired,omitempty"`
}

// CARegistry returns the CAs (ErrNotFound before the first rollover).
func (tx *Tx) CARegistry() (*CARegistry, error) {
	var r CARegistry
	if err := tx.Meta(caRegistryMeta, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// PutCARegistry stores the CAs.
func (tx *Tx) PutCARegistry(r *CARegistry) error { return tx.SetMeta(caRegistryMeta, r) }

// LastCRLOf returns the last CRL of the CA tagged tag ("" the first CA:
// LastCRL).
func (tx *Tx) LastCRLOf(tag string) (*CRL, error) {
	var c CRL
	if err := tx.Meta(crlMetaKeyOf(tag), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// PutCRLOf stores the last CRL of the CA tagged tag.
func (tx *Tx) PutCRLOf(tag string, c *CRL) error { return tx.SetMeta(crlMetaKeyOf(tag), c) }

func crlMetaKeyOf(tag string) string {
	if tag == "" {
		return crlMetaKey
	}
	return crlMetaKey + "/" + tag
}
