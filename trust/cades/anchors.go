package cades

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Default limits of Verify (see Limits).
const (
	DefaultMaxSignature = 1 << 20  // 1 MiB: a detached signature, or an envelope less its content
	DefaultMaxContent   = 16 << 20 // 16 MiB: the signed file
)

// Limits bound the work Verify does on one file. A zero field takes its
// default. The signature limit applies to a detached .p7s; an enveloping
// .p7m may be as large as both limits together, since it carries the
// content. Both are checked before parsing; a PEM or base64 file may be half
// as large again before it is decoded.
type Limits struct {
	MaxSignature int // bytes of a detached signature
	MaxContent   int // bytes of the signed content
}

func (l Limits) withDefaults() Limits {
	if l.MaxSignature <= 0 {
		l.MaxSignature = DefaultMaxSignature
	}
	if l.MaxContent <= 0 {
		l.MaxContent = DefaultMaxContent
	}
	return l
}

// Anchors are the certification authorities whose card certificates are
// trusted, with the CRL of each CA that has one, and the limits of Verify.
// Every certificate of the anchors file is a trust anchor: a CA listed there
// ends a chain, whether self-signed or not.
type Anchors struct {
	Limits Limits

	cas  []*x509.Certificate
	pool *x509.CertPool
	crls map[string]*x509.RevocationList // by the Raw of the CA that signed it
}

// NewAnchors trusts the given CA certificates.
func NewAnchors(cas ...*x509.Certificate) (*Anchors, error) {
	if len(cas) == 0 {
		return nil, errors.New("cades: nessun certificato di CA di cui fidarsi")
	}
	a := &Anchors{pool: x509.NewCertPool(), crls: map[string]*x509.RevocationList{}}
	for _, c := range cas {
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("cades: il certificato %q non è di una CA (manca basicConstraints CA:TRUE)", c.Subject.String())
		}
		a.cas = append(a.cas, c)
		a.pool.AddCert(c)
	}
	return a, nil
}

// ParseAnchors reads the CA certificates of a PEM bundle. Blocks that are
// not certificates are refused, so a misplaced key or CSR is noticed.
func ParseAnchors(data []byte) (*Anchors, error) {
	var cas []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("cades: il blocco PEM %q non è un CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("cades: certificato di CA %d: %w", len(cas)+1, err)
		}
		cas = append(cas, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("cades: dati in eccesso dopo l'ultimo certificato PEM")
	}
	return NewAnchors(cas...)
}

// LoadAnchors reads the PEM file of the trusted CA certificates.
func LoadAnchors(path string) (*Anchors, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	a, err := ParseAnchors(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return a, nil
}

// CAs returns the trusted CA certificates.
func (a *Anchors) CAs() []*x509.Certificate { return append([]*x509.Certificate(nil), a.cas...) }

// AddCRL adds the CRL (DER or PEM "X509 CRL") of one of the anchors: its
// signature is checked against the anchor that issued it, and a CRL that no
// anchor signed is refused. A CA has one CRL: of two, the one issued later
// (thisUpdate) is kept. The CRL is used as it is: fetching a fresh one before
// nextUpdate is the caller's job.
func (a *Anchors) AddCRL(data []byte) error {
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "X509 CRL" {
			return fmt.Errorf("cades: il blocco PEM %q non è una X509 CRL", b.Type)
		}
		der = b.Bytes
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("cades: CRL: %w", err)
	}
	for _, ca := range a.cas {
		if !bytes.Equal(ca.RawSubject, crl.RawIssuer) || crl.CheckSignatureFrom(ca) != nil {
			continue
		}
		key := string(ca.Raw)
		if old := a.crls[key]; old == nil || crl.ThisUpdate.After(old.ThisUpdate) {
			a.crls[key] = crl
		}
		return nil
	}
	return fmt.Errorf("cades: la CRL di %q non è firmata da nessuna CA fidata", crl.Issuer.String())
}

// AddCRLFile reads a CRL file (DER or PEM) and adds it as AddCRL does.
func (a *Anchors) AddCRLFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cades: %w", err)
	}
	if err := a.AddCRL(data); err != nil {
		return fmt.Errorf("%w (%s)", err, path)
	}
	return nil
}

// crlOf returns the CRL configured for the CA ca, or nil.
func (a *Anchors) crlOf(ca *x509.Certificate) *x509.RevocationList {
	return a.crls[string(ca.Raw)]
}
