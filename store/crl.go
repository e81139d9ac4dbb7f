package store

import (
	"errors"
	"time"
)

// CRLSequence is the name of the gap-free counter of CRL numbers
// (tx.Sequence(CRLSequence)).
const CRLSequence = "crl"

const crlMetaKey = "crl-last"

// CRL is the last CRL the crl job signed: kept so that an operator (and a
// later run) can see what was published and when.
type CRL struct {
	Number     uint64    `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Entries    int       `json:"entries"`
	DER        []byte    `json:"der"`
	Published  time.Time `json:"published,omitempty"` // zero until both files are in the drop
	Files      []string  `json:"files,omitempty"`
}

// LastCRL returns the last CRL signed by the current CA (ErrNotFound
// before the first); see LastCRLOf for the CRL of each CA.
func (tx *Tx) LastCRL() (*CRL, error) {
	tag := ""
	reg, err := tx.CARegistry()
	switch {
	case err == nil:
		for _, c := range reg.CAs {
			if c.KeyID == reg.Current {
				tag = c.Tag
			}
		}
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	return tx.LastCRLOf(tag)
}

// PutCRL stores the last CRL signed.
func (tx *Tx) PutCRL(c *CRL) error { return tx.SetMeta(crlMetaKey, c) }
