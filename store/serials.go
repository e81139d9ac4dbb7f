package store

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"anprsec/domain"
)

// Certificate status by serial, for the OCSP responder
// (docs/rules.md#certificates):
//
//	i/w-sn/<SERIAL>             the status of the postazione whose current
//	                            certificate, or one of whose predecessors
//	                            (replaced by a renewal), has this serial
//	                            (hex, as Postazione.Serial)
//	m/serial-index              set once every postazione is indexed
//	m/ocsp-responder/<CA SKI>   the delegated OCSP responder of a CA
//
// PutPostazione keeps the index: the entry is written with the postazione
// and removed when its serial changes. It holds a copy of the fields that
// decide a certificate's status only (no certificate, key or PKCS#12), so
// that an OCSP request reads a few dozen bytes.

const serialPrefix = "i/w-sn/"

const serialIndexMeta = "serial-index"

func serialKey(serial string) string { return serialPrefix + strings.ToUpper(serial) }

// serialEntry is what the index keeps of a postazione: the fields that
// decide its status and its predecessors' (without their certificates).
func serialEntry(p *domain.Postazione) *domain.Postazione {
	e := &domain.Postazione{
		Code: p.Code, ISTAT: p.ISTAT, Server: p.Server, State: p.State, Serial: p.Serial, NotAfter: p.NotAfter, Issuer: p.Issuer,
		HoldSince: p.HoldSince, RevokedAt: p.RevokedAt, RevocationReason: p.RevocationReason,
		Created: p.Created, Updated: p.Updated,
	}
	for _, pc := range p.Predecessors {
		pc.CertDER = nil
		e.Predecessors = append(e.Predecessors, pc)
	}
	return e
}

// serialsOf lists the serials of p's certificates: the current one and
// its predecessors'.
func serialsOf(p *domain.Postazione) []string {
	var out []string
	if p.Serial != "" {
		out = append(out, strings.ToUpper(p.Serial))
	}
	for _, pc := range p.Predecessors {
		if pc.Serial != "" {
			out = append(out, strings.ToUpper(pc.Serial))
		}
	}
	return out
}

// putSerialIndex updates the index when p replaces prev (nil: new): every
// serial of p points to p's entry, a serial p no longer has is removed.
func (tx *Tx) putSerialIndex(prev, p *domain.Postazione) error {
	now := serialsOf(p)
	if prev != nil {
		for _, old := range serialsOf(prev) {
			if !slices.Contains(now, old) {
				if err := tx.del(serialKey(old)); err != nil {
					return err
				}
			}
		}
	}
	if len(now) == 0 {
		return nil
	}
	e := serialEntry(p)
	for _, sn := range now {
		if err := tx.set(serialKey(sn), e); err != nil {
			return err
		}
	}
	return nil
}

// PostazioneBySerial returns the status of the postazione whose current
// certificate (or a predecessor's, see domain.PrevCert) has serial (hexadecimal, any case): its code, comune, state,
// serial, expiry and the times and reason of a hold or revocation, but no
// certificate, key or PKCS#12. ErrNotFound when no current certificate has
// it (never issued, or replaced).
func (tx *Tx) PostazioneBySerial(serial string) (*domain.Postazione, error) {
	var p domain.Postazione
	if err := tx.get(serialKey(serial), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// SerialIndexRaw returns the stored bytes of the index entry of serial
// (ErrNotFound when absent): equal bytes mean an unchanged status, which a
// cache of OCSP responses compares without decoding.
func (tx *Tx) SerialIndexRaw(serial string) ([]byte, error) {
	return tx.getRaw(serialKey(serial))
}

// EachSerial calls fn with the serial of every current certificate, in
// the index's order.
func (tx *Tx) EachSerial(fn func(serial string) error) error {
	return tx.scan(serialPrefix, false, func(k string, _ []byte) (bool, error) {
		return true, fn(strings.TrimPrefix(k, serialPrefix))
	})
}

// EachSerialEntry calls fn with the index entry of every current
// certificate (the fields of a status, issuer and expiry: no certificate,
// key or PKCS#12), in the index's order.
func (tx *Tx) EachSerialEntry(fn func(p *domain.Postazione) error) error {
	return tx.scan(serialPrefix, true, func(_ string, v []byte) (bool, error) {
		var p domain.Postazione
		if err := json.Unmarshal(v, &p); err != nil {
			return false, err
		}
		return true, fn(&p)
	})
}

// SerialsIndexed reports whether every postazione is in the serial index
// (IndexSerials has completed it once).
func (tx *Tx) SerialsIndexed() (bool, error) {
	done := false
	err := tx.Meta(serialIndexMeta, &done)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return done, err
}

// IndexSerials makes sure every postazione with a certificate is in the
// serial index: a store written before the index existed gets it here,
// once, in transactions of batch postazioni, and the mark that it is done
// is set after the last. It returns how many postazioni it read (0 when the
// index was complete).
func (s *Store) IndexSerials(batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	done := false
	if err := s.View(func(tx *Tx) error {
		err := tx.Meta(serialIndexMeta, &done)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}); err != nil || done {
		return 0, err
	}
	seen, after := 0, ""
	for {
		n, last, err := s.indexSerialsFrom(after, batch)
		if err != nil {
			return seen, err
		}
		seen += n
		if last == "" {
			break
		}
		after = last
	}
	return seen, s.Update(func(tx *Tx) error { return tx.SetMeta(serialIndexMeta, true) })
}

// indexSerialsFrom indexes up to batch postazioni with codes after after,
// in one transaction; last is the last code seen ("" at the end).
func (s *Store) indexSerialsFrom(after string, batch int) (n int, last string, err error) {
	err = s.Update(func(tx *Tx) error {
		n, last = 0, ""
		opt := badger.DefaultIteratorOptions
		opt.Prefix = []byte("w/")
		it := tx.txn.NewIterator(opt)
		defer it.Close()
		start := "w/"
		if after != "" {
			start = "w/" + after + "\x00"
		}
		for it.Seek([]byte(start)); it.Valid() && n < batch; it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			var p domain.Postazione
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			n++
			last = p.Code
			for _, sn := range serialsOf(&p) {
				if err := tx.set(serialKey(sn), serialEntry(&p)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, last, err
}

// OCSPResponder is the delegated OCSP responder of one CA: its certificate
// (issued by the CA, id-kp-OCSPSigning) and its private key, PKCS#8 DER
// sealed with the context OCSPResponderSealContext(CAKeyID).
type OCSPResponder struct {
	CAKeyID   string    `json:"ca_key_id"` // the CA's Subject Key Identifier, hex
	CertDER   []byte    `json:"cert_der"`
	KeySealed []byte    `json:"key_sealed"`
	NotAfter  time.Time `json:"not_after"`
	Created   time.Time `json:"created"`
}

// OCSPResponderSealContext is the seal context of the responder key of the
// CA whose Subject Key Identifier is caKeyID (hex).
func OCSPResponderSealContext(caKeyID string) string { return "ocsp-responder/" + caKeyID + "/key" }

// OCSPResponder returns the responder of the CA caKeyID (ErrNotFound
// before the first).
func (tx *Tx) OCSPResponder(caKeyID string) (*OCSPResponder, error) {
	var r OCSPResponder
	if err := tx.Meta("ocsp-responder/"+caKeyID, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// PutOCSPResponder stores the responder of a CA, replacing the previous.
func (tx *Tx) PutOCSPResponder(r *OCSPResponder) error {
	return tx.SetMeta("ocsp-responder/"+r.CAKeyID, r)
}
