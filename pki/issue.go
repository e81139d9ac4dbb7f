package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
)

// Defaults of the certificates (docs/rules.md#certificates); the config
// keys that override them belong to the config package.
const (
	DefaultValidityDays = 1825 // workstation and server certificates
	DefaultKeyAlgorithm = KeyRSA2048
)

// Key algorithms of workstation and server keys (GenerateKey).
const (
	KeyRSA2048   = "rsa2048"
	KeyECDSAP256 = "ecdsa-p256"
)

// GenerateKey makes a workstation key: "rsa2048" (the default, also for "")
// or "ecdsa-p256".
func GenerateKey(alg string) (crypto.Signer, error) {
	switch strings.ToLower(strings.TrimSpace(alg)) {
	case "", KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("pki: algoritmo della chiave %q: ammessi %s o %s", alg, KeyRSA2048, KeyECDSAP256)
	}
}

// WorkstationRequest is what IssueWorkstation needs for one certificate.
type WorkstationRequest struct {
	// Code is the workstation code, the certificate's CN: <ISTAT>-PC-<NNNN>
	// (058091-PC-0001) or the comune's server <ISTAT>-CO-9999.
	Code string
	// Comune is the comune's name, the certificate's O (Roma).
	Comune string
	// PublicKey is the workstation's key: RSA (2048 bits or more) or ECDSA
	// P-256/P-384.
	PublicKey crypto.PublicKey
	// NotBefore is the start of validity; zero means now minus Backdate. It is truncated
	// to the second.
	NotBefore time.Time
	// ValidityDays is the length of validity; 0 means DefaultValidityDays.
	ValidityDays int
	// Discovery are the URLs where a relying party finds the CRL, the CA
	// certificate and the OCSP responder; an empty one is left out.
	Discovery Discovery
}

// Discovery are the revocation-discovery URLs written into a certificate
// (docs/rules.md#certificates): the CRL distribution point (RFC 5280
// 4.2.1.13) and the authority information access (4.2.2.1) with the CA
// issuers and OCSP access methods. Each empty URL is left out, and with
// all three empty the certificate carries neither extension.
type Discovery struct {
	CRL       string // pki.crl_url
	OCSP      string // pki.ocsp_url
	CAIssuers string // pki.ca_issuers_url
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// codeRE is a workstation code (domain.WorkstationCode) or a server code
// (domain.ServerCode).
var codeRE = regexp.MustCompile(`^[0-9]{6}-(PC-[0-9]{4,}|CO-9999)$`)

// ErrBeyondCA is returned when a certificate would outlive its CA.
var ErrBeyondCA = errors.New("pki: il certificato scadrebbe dopo il certificato della CA")

// IssueWorkstation signs the certificate of a workstation, or of a comune's
// server (<ISTAT>-CO-9999): both authenticate to ANPR as TLS clients, so
// they get the same profile, with extended key usage clientAuth only (the
// server certificate is the identity of the comune's batch client of ANPR's
// web services, not of a TLS server).
//
// Profile: v3, random positive 159-bit serial (20 octets), subject CN = the
// code and O = the comune, key usage digitalSignature+keyEncipherment, EKU
// clientAuth, basicConstraints CA:FALSE, Subject Key Identifier, Authority
// Key Identifier = the CA's Subject Key Identifier, signed sha256WithRSA by
// an RSA CA, ecdsa-with-SHA256 by a P-256 CA; the CRL distribution point
// and authority information access of req.Discovery. A certificate that would
// expire after the CA is refused (ErrBeyondCA) rather than shortened.
//
// It returns the parsed certificate and its DER. It is safe for concurrent
// use when ca.Signer is (the file keys of LoadCA are).
func (ca *CA) IssueWorkstation(req WorkstationRequest) (*x509.Certificate, []byte, error) {
	if !codeRE.MatchString(req.Code) {
		return nil, nil, fmt.Errorf("pki: codice %q: atteso <ISTAT>-PC-<NNNN> o <ISTAT>-CO-9999", req.Code)
	}
	comune := strings.TrimSpace(req.Comune)
	if comune == "" {
		return nil, nil, fmt.Errorf("pki: %s: il nome del comune (O) è vuoto", req.Code)
	}
	if err := checkLeafKey(req.PublicKey); err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", req.Code, err)
	}
	days := req.ValidityDays
	if days == 0 {
		days = DefaultValidityDays
	}
	if days < 0 {
		return nil, nil, fmt.Errorf("pki: %s: validità di %d giorni non ammessa", req.Code, days)
	}
	notBefore := req.NotBefore
	if notBefore.IsZero() {
		// Backdated a little, as CAs do: a workstation (or a verifier)
		// whose clock is a few minutes behind must not find a certificate
		// issued "in the future".
		notBefore = time.Now().Add(-Backdate)
	}
	notBefore = notBefore.UTC().Truncate(time.Second)
	notAfter := notBefore.AddDate(0, 0, days)
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, nil, fmt.Errorf("%w: %s fino al %s, CA %q fino al %s", ErrBeyondCA, req.Code,
			notAfter.Format("02/01/2006"), ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format("02/01/2006"))
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, nil, err
	}
	ski, err := SubjectKeyID(req.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.Code, Organization: []string{comune}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		AuthorityKeyId:        ca.Cert.SubjectKeyId,
		CRLDistributionPoints: nonEmpty(req.Discovery.CRL),
		OCSPServer:            nonEmpty(req.Discovery.OCSP),
		IssuingCertificateURL: nonEmpty(req.Discovery.CAIssuers),
		SignatureAlgorithm:    signatureAlgorithm(ca.Signer.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.PublicKey, ca.Signer)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", req.Code, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, der, nil
}

func checkLeafKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("chiave RSA di %d bit, ne servono almeno 2048", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("curva ECDSA %s non supportata (ammesse P-256 o P-384)", k.Curve.Params().Name)
		}
	case nil:
		return errors.New("manca la chiave pubblica")
	default:
		return fmt.Errorf("chiave pubblica di tipo %T non supportata (ammesse RSA o ECDSA)", pub)
	}
	return nil
}

// NewSerial returns a random certificate serial number from crypto/rand:
// 20 octets with the top bit cleared (so the DER INTEGER is positive and at
// most 20 octets, RFC 5280 4.1.2.2) and the next bit set (so it is never
// shorter): 158 random bits, always 159 bits long.
func NewSerial() (*big.Int, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] = b[0]&0x3f | 0x40
	return new(big.Int).SetBytes(b), nil
}

// Backdate is how far before the issuing time a certificate's validity
// starts when the request gives no NotBefore.
const Backdate = 5 * time.Minute
