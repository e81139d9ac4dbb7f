package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"
)

// CRL reason codes (RFC 5280 5.3.1) used by anprsec.
const (
	ReasonUnspecified          = 0 // written as no reasonCode extension (RFC 5280: SHOULD be absent)
	ReasonKeyCompromise        = 1
	ReasonSuperseded           = 4 // a certificate replaced by a renewal, after the overlap
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
)

// ReasonName is the RFC 5280 name of a reason code.
func ReasonName(code int) string {
	switch code {
	case ReasonUnspecified:
		return "unspecified"
	case ReasonKeyCompromise:
		return "keyCompromise"
	case ReasonSuperseded:
		return "superseded"
	case ReasonCessationOfOperation:
		return "cessationOfOperation"
	case ReasonCertificateHold:
		return "certificateHold"
	}
	return fmt.Sprintf("reason %d", code)
}

// RevocationReason maps the operator's motivo of a revocation to a reason
// code: keyCompromise when it speaks of theft, loss or compromise (furto,
// rubata, smarrimento, perso, compromessa), cessationOfOperation when the
// workstation is dismissed (dismessa, dismissione, cessata, sostituita);
// otherwise unspecified. A hold (BLOCCATO) is always certificateHold.
func RevocationReason(motivo string) int {
	words := strings.FieldsFunc(strings.ToLower(motivo), func(r rune) bool {
		return !unicode.IsLetter(r)
	})
	has := func(prefixes ...string) bool {
		for _, w := range words {
			for _, p := range prefixes {
				if strings.HasPrefix(w, p) {
					return true
				}
			}
		}
		return false
	}
	switch {
	case has("furt", "rubat", "smarri", "compromess", "compromission") ||
		slices.Contains(words, "perso") || slices.Contains(words, "persa"):
		return ReasonKeyCompromise
	case has("dismess", "dismission", "cessat", "cessazion", "sostituit", "rottamat"):
		return ReasonCessationOfOperation
	}
	return ReasonUnspecified
}

// CRLEntry is one revoked (or held) certificate.
type CRLEntry struct {
	Serial    *big.Int
	RevokedAt time.Time
	Reason    int // ReasonUnspecified, ReasonKeyCompromise, ReasonSuperseded, ReasonCessationOfOperation, ReasonCertificateHold
}

// ParseSerialHex parses a serial as the store keeps it (hexadecimal, as
// fmt's %X writes it).
func ParseSerialHex(s string) (*big.Int, error) {
	n, ok := new(big.Int).SetString(strings.TrimPrefix(strings.TrimSpace(s), "0x"), 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("pki: il numero di serie %q non è un numero esadecimale positivo", s)
	}
	return n, nil
}

// CreateCRL signs a CRL v2 (RFC 5280) with the CA's signer: issuer = the
// CA's subject, Authority Key Identifier = the CA's Subject Key Identifier,
// CRL number = number (positive, at most 20 octets), thisUpdate and
// nextUpdate truncated to the second, one entry per revoked certificate
// with its revocation date and reason code (no reasonCode extension for
// unspecified, as RFC 5280 recommends). It returns the DER.
func (ca *CA) CreateCRL(entries []CRLEntry, number *big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	if number == nil || number.Sign() <= 0 {
		return nil, errors.New("pki: il numero della CRL deve essere positivo")
	}
	if !nextUpdate.After(thisUpdate) {
		return nil, errors.New("pki: nextUpdate della CRL deve venire dopo thisUpdate")
	}
	if ca.Cert.KeyUsage != 0 && ca.Cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, fmt.Errorf("pki: il certificato della CA %q non ha il key usage cRLSign", ca.Cert.Subject.CommonName)
	}
	if len(ca.Cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("pki: il certificato della CA %q non ha Subject Key Identifier (serve per l'Authority Key Identifier della CRL)", ca.Cert.Subject.CommonName)
	}
	list := make([]x509.RevocationListEntry, 0, len(entries))
	for i, e := range entries {
		if e.Serial == nil || e.Serial.Sign() <= 0 {
			return nil, fmt.Errorf("pki: voce %d della CRL: manca il numero di serie", i)
		}
		switch e.Reason {
		case ReasonUnspecified, ReasonKeyCompromise, ReasonSuperseded, ReasonCessationOfOperation, ReasonCertificateHold:
		default:
			return nil, fmt.Errorf("pki: voce %X della CRL: codice di motivo %d non usato da anprsec", e.Serial, e.Reason)
		}
		at := e.RevokedAt
		if at.IsZero() {
			at = thisUpdate
		}
		list = append(list, x509.RevocationListEntry{
			SerialNumber:   e.Serial,
			RevocationTime: at.UTC().Truncate(time.Second),
			ReasonCode:     e.Reason,
		})
	}
	tmpl := &x509.RevocationList{
		SignatureAlgorithm:        signatureAlgorithm(ca.Signer.Public()),
		RevokedCertificateEntries: list,
		Number:                    number,
		ThisUpdate:                thisUpdate.UTC().Truncate(time.Second),
		NextUpdate:                nextUpdate.UTC().Truncate(time.Second),
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("pki: CRL: %w", err)
	}
	return der, nil
}

// CRLPEM encodes a DER CRL as PEM ("X509 CRL").
func CRLPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}
