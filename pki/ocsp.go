package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP (RFC 6960) building blocks (docs/rules.md#certificates): the
// certificate of the delegated responder that signs the answers, so that
// the CA key is not used per request, the parsing of requests and the
// signing of responses. Responses are encoded here rather than by
// golang.org/x/crypto/ocsp.CreateResponse because a nonce belongs in the
// responseExtensions, which CreateResponse cannot write; the statuses and
// the error responses are x/crypto/ocsp's.

// Delegated responder certificates: short-lived, so that they can carry
// id-pkix-ocsp-nocheck (a relying party does not check the responder's
// own revocation), and renewed well before they expire.
const (
	OCSPResponderValidity    = 30 * 24 * time.Hour
	OCSPResponderRenewBefore = 10 * 24 * time.Hour
	OCSPResponderCommonName  = "anprsec OCSP responder"
)

var (
	oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	oidOCSPNonce   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidOCSPBasic   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}

	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}

	hashOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
)

// MaxOCSPNonce is the longest nonce accepted (RFC 8954: 1 to 32 octets).
const MaxOCSPNonce = 32

// NewOCSPResponderKey makes the key of a delegated responder, of the CA's
// family: RSA-2048 under an RSA CA, ECDSA P-256 under an ECDSA CA.
func (ca *CA) NewOCSPResponderKey() (crypto.Signer, error) {
	if _, ok := ca.Signer.Public().(*ecdsa.PublicKey); ok {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

// IssueOCSPResponder signs the certificate of a delegated OCSP responder
// for pub (RFC 6960 4.2.2.2): CN "anprsec OCSP responder", O = the CA's
// organization, key usage digitalSignature, extended key usage
// id-kp-OCSPSigning only, id-pkix-ocsp-nocheck, CA:FALSE, Subject and
// Authority Key Identifiers, valid OCSPResponderValidity from 5 minutes
// before now but never beyond the CA.
func (ca *CA) IssueOCSPResponder(pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	if err := checkLeafKey(pub); err != nil {
		return nil, fmt.Errorf("pki: risponditore OCSP: %w", err)
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-Backdate).UTC().Truncate(time.Second)
	notAfter := notBefore.Add(OCSPResponderValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("%w: risponditore OCSP, CA %q fino al %s", ErrBeyondCA, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format("02/01/2006"))
	}
	noCheck, _ := asn1.Marshal(asn1.NullRawValue)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: OCSPResponderCommonName, Organization: ca.Cert.Subject.Organization},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		AuthorityKeyId:        ca.Cert.SubjectKeyId,
		ExtraExtensions:       []pkix.Extension{{Id: oidOCSPNoCheck, Value: noCheck}},
		SignatureAlgorithm:    signatureAlgorithm(ca.Signer.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("pki: risponditore OCSP: %w", err)
	}
	return x509.ParseCertificate(der)
}

// OCSPRequest is a request for the status of one certificate.
type OCSPRequest struct {
	Hash           crypto.Hash // of the issuer's name and key hashes
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	Serial         *big.Int
	// CertID is the DER of the request's CertID, echoed in the response
	// (a client compares it with what it sent).
	CertID []byte
	// Nonce is the DER value of the nonce extension (RFC 8954), echoed
	// in the response; nil when the request has none.
	Nonce []byte
}

type ocspCertID struct {
	Raw           asn1.RawContent
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	SerialNumber  *big.Int
}

type ocspSingleRequest struct {
	CertID     ocspCertID
	Extensions []pkix.Extension `asn1:"explicit,tag:0,optional"`
}

type ocspTBSRequest struct {
	Version       int           `asn1:"explicit,tag:0,default:0,optional"`
	RequestorName asn1.RawValue `asn1:"explicit,tag:1,optional"`
	RequestList   []ocspSingleRequest
	Extensions    []pkix.Extension `asn1:"explicit,tag:2,optional"`
}

type ocspRequestASN1 struct {
	TBSRequest ocspTBSRequest
	Signature  asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

// ErrOCSPMalformed is returned (wrapped) for a request to answer with
// malformedRequest.
var ErrOCSPMalformed = errors.New("malformed OCSP request")

// ParseOCSPRequest parses a DER OCSP request for exactly one certificate,
// hashed with SHA-1, SHA-256, SHA-384 or SHA-512, with at most a nonce of
// MaxOCSPNonce octets; a request signature is not checked (anprsec answers
// anyone). Anything else is ErrOCSPMalformed.
func ParseOCSPRequest(der []byte) (*OCSPRequest, error) {
	var req ocspRequestASN1
	rest, err := asn1.Unmarshal(der, &req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOCSPMalformed, err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: trailing data", ErrOCSPMalformed)
	}
	if n := len(req.TBSRequest.RequestList); n != 1 {
		return nil, fmt.Errorf("%w: %d certificates in one request, want 1", ErrOCSPMalformed, n)
	}
	id := req.TBSRequest.RequestList[0].CertID
	out := &OCSPRequest{IssuerNameHash: id.NameHash, IssuerKeyHash: id.IssuerKeyHash, Serial: id.SerialNumber, CertID: id.Raw}
	for h, oid := range hashOIDs {
		if id.HashAlgorithm.Algorithm.Equal(oid) {
			out.Hash = h
		}
	}
	if out.Hash == 0 {
		return nil, fmt.Errorf("%w: hash algorithm %v", ErrOCSPMalformed, id.HashAlgorithm.Algorithm)
	}
	if len(id.NameHash) != out.Hash.Size() || len(id.IssuerKeyHash) != out.Hash.Size() || id.SerialNumber == nil {
		return nil, fmt.Errorf("%w: CertID", ErrOCSPMalformed)
	}
	for _, e := range req.TBSRequest.Extensions {
		if !e.Id.Equal(oidOCSPNonce) {
			continue
		}
		var inner []byte
		if rest, err := asn1.Unmarshal(e.Value, &inner); err == nil && len(rest) == 0 {
			if len(inner) == 0 || len(inner) > MaxOCSPNonce {
				return nil, fmt.Errorf("%w: nonce of %d octets (RFC 8954: 1 to %d)", ErrOCSPMalformed, len(inner), MaxOCSPNonce)
			}
		} else if len(e.Value) == 0 || len(e.Value) > MaxOCSPNonce {
			// an older client's nonce: the octets themselves
			return nil, fmt.Errorf("%w: nonce of %d octets", ErrOCSPMalformed, len(e.Value))
		}
		out.Nonce = e.Value
	}
	return out, nil
}

// OCSPStatus is the answer about one certificate.
type OCSPStatus struct {
	Status    int // ocsp.Good, ocsp.Revoked or ocsp.Unknown
	RevokedAt time.Time
	Reason    int // a CRL reason code (ReasonCertificateHold...), for ocsp.Revoked
}

// OCSPSigner signs OCSP responses for the certificates of one CA with a
// delegated responder's key. It is safe for concurrent use when the key is
// (software keys are).
type OCSPSigner struct {
	Issuer *x509.Certificate
	Cert   *x509.Certificate // the responder's, included in every response
	Key    crypto.Signer

	responderID []byte
	sigAlg      pkix.AlgorithmIdentifier
	hash        crypto.Hash
	issuerHash  map[crypto.Hash][2][]byte // name hash, key hash
}

// NewOCSPSigner checks that cert is a responder certificate issued by
// issuer (signature, id-kp-OCSPSigning) whose key is key, and returns its
// signer. The responder is named by its key hash (ResponderID byKey).
func NewOCSPSigner(issuer, cert *x509.Certificate, key crypto.Signer) (*OCSPSigner, error) {
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("pki: il certificato del risponditore OCSP non è della CA: %w", err)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return nil, errors.New("pki: il certificato del risponditore OCSP non ha id-kp-OCSPSigning")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("pki: la chiave del risponditore OCSP non corrisponde al suo certificato")
	}
	s := &OCSPSigner{Issuer: issuer, Cert: cert, Key: key, issuerHash: map[crypto.Hash][2][]byte{}}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		s.sigAlg, s.hash = pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue}, crypto.SHA256
	case *ecdsa.PublicKey:
		s.sigAlg, s.hash = pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, crypto.SHA256
		if k.Curve == elliptic.P384() {
			s.sigAlg, s.hash = pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA384}, crypto.SHA384
		}
	default:
		return nil, fmt.Errorf("pki: chiave del risponditore OCSP di tipo %T non supportata", k)
	}
	keyBits, err := subjectPublicKeyBits(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	kh := sha1.Sum(keyBits)
	if s.responderID, err = asn1.Marshal(kh[:]); err != nil {
		return nil, err
	}
	issuerKey, err := subjectPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	for h := range hashOIDs {
		nh, ih := h.New(), h.New()
		nh.Write(issuer.RawSubject)
		ih.Write(issuerKey)
		s.issuerHash[h] = [2][]byte{nh.Sum(nil), ih.Sum(nil)}
	}
	return s, nil
}

func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	return info.PublicKey.RightAlign(), nil
}

// Issued reports whether req asks about a certificate of the signer's CA
// (its issuer name and key hashes are the CA's).
func (s *OCSPSigner) Issued(req *OCSPRequest) bool {
	h, ok := s.issuerHash[req.Hash]
	return ok && bytes.Equal(h[0], req.IssuerNameHash) && bytes.Equal(h[1], req.IssuerKeyHash)
}

// CertID returns the DER CertID of serial with hash (SHA-1 is what
// OpenSSL and most clients send), with NULL hash parameters as they write
// them: the key under which a response can be computed before any request.
func (s *OCSPSigner) CertID(hash crypto.Hash, serial *big.Int) ([]byte, error) {
	h, ok := s.issuerHash[hash]
	if !ok {
		return nil, fmt.Errorf("pki: hash %v not supported for OCSP", hash)
	}
	return asn1.Marshal(struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		IssuerKeyHash []byte
		SerialNumber  *big.Int
	}{pkix.AlgorithmIdentifier{Algorithm: hashOIDs[hash], Parameters: asn1.NullRawValue}, h[0], h[1], serial})
}

type ocspRevokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}

type ocspSingleResponse struct {
	CertID     asn1.RawValue
	Good       asn1.Flag       `asn1:"tag:0,optional"`
	Revoked    ocspRevokedInfo `asn1:"tag:1,optional"`
	Unknown    asn1.Flag       `asn1:"tag:2,optional"`
	ThisUpdate time.Time       `asn1:"generalized"`
	NextUpdate time.Time       `asn1:"generalized,explicit,tag:0,optional"`
}

type ocspResponseData struct {
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []ocspSingleResponse
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type ocspBasicResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type ocspResponseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type ocspResponseASN1 struct {
	Status   asn1.Enumerated
	Response ocspResponseBytes `asn1:"explicit,tag:0,optional"`
}

// Sign signs a successful basic OCSP response about the certificate of
// certID (a request's CertID, or one of CertID): status st, thisUpdate
// and producedAt = now, nextUpdate = now + validity (all to the second),
// the nonce extension nonce when not nil, the responder's certificate
// included and the responder named by key hash.
func (s *OCSPSigner) Sign(certID []byte, st OCSPStatus, now time.Time, validity time.Duration, nonce []byte) ([]byte, error) {
	now = now.UTC().Truncate(time.Second)
	single := ocspSingleResponse{CertID: asn1.RawValue{FullBytes: certID}, ThisUpdate: now}
	if validity > 0 {
		single.NextUpdate = now.Add(validity)
	}
	switch st.Status {
	case ocsp.Good:
		single.Good = true
	case ocsp.Unknown:
		single.Unknown = true
	case ocsp.Revoked:
		at := st.RevokedAt.UTC().Truncate(time.Second)
		if at.IsZero() {
			at = now
		}
		single.Revoked = ocspRevokedInfo{RevocationTime: at, Reason: asn1.Enumerated(st.Reason)}
	default:
		return nil, fmt.Errorf("pki: OCSP status %d", st.Status)
	}
	data := ocspResponseData{
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: s.responderID},
		ProducedAt:  now,
		Responses:   []ocspSingleResponse{single},
	}
	if nonce != nil {
		data.Extensions = []pkix.Extension{{Id: oidOCSPNonce, Value: nonce}}
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("pki: OCSP response: %w", err)
	}
	h := s.hash.New()
	h.Write(tbs)
	sig, err := s.Key.Sign(rand.Reader, h.Sum(nil), s.hash)
	if err != nil {
		return nil, fmt.Errorf("pki: firma di una risposta OCSP: %w", err)
	}
	basic, err := asn1.Marshal(ocspBasicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: s.sigAlg,
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
		Certificates:       []asn1.RawValue{{FullBytes: s.Cert.Raw}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(ocspResponseASN1{Status: asn1.Enumerated(ocsp.Success), Response: ocspResponseBytes{ResponseType: oidOCSPBasic, Response: basic}})
}

// IssuedBy reports whether req asks about a certificate of issuer: the
// request's issuer name and key hashes are issuer's. After a CA rollover
// the CAs share their name, and the key hash tells them apart.
func (req *OCSPRequest) IssuedBy(issuer *x509.Certificate) bool {
	if _, ok := hashOIDs[req.Hash]; !ok || !req.Hash.Available() {
		return false
	}
	key, err := subjectPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return false
	}
	nh, kh := req.Hash.New(), req.Hash.New()
	nh.Write(issuer.RawSubject)
	kh.Write(key)
	return bytes.Equal(kh.Sum(nil), req.IssuerKeyHash) && bytes.Equal(nh.Sum(nil), req.IssuerNameHash)
}
