package store

import "time"

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

// LastCRL returns the last CRL signed (ErrNotFound before the first).
func (tx *Tx) LastCRL() (*CRL, error) {
	var c CRL
	if err := tx.Meta(crlMetaKey, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// PutCRL stores the last CRL signed.
func (tx *Tx) PutCRL(c *CRL) error { return tx.SetMeta(crlMetaKey, c) }
