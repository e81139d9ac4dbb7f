package cades

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"

	_ "crypto/sha1"   // SHA-1 of signing-certificate (v1)
	_ "crypto/sha256" // SHA-224/256 of signing-certificate-v2
	_ "crypto/sha512" // SHA-384/512 of signing-certificate-v2
)

// Object identifiers of the attributes and names Verify reads.
var (
	oidSigningCertificate   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12} // RFC 2634 (SHA-1)
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47} // RFC 5035
	oidSerialNumber         = asn1.ObjectIdentifier{2, 5, 4, 5}

	oidSHA224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// essHashes are the hash algorithms accepted in an ESSCertIDv2.
var essHashes = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{oidSHA256, crypto.SHA256},
	{oidSHA384, crypto.SHA384},
	{oidSHA512, crypto.SHA512},
	{oidSHA224, crypto.SHA224},
}

// issuerSerial is the IssuerSerial of RFC 5035: the issuer as GeneralNames
// and the serial number of the certificate.
type issuerSerial struct {
	Issuer asn1.RawValue // GeneralNames: SEQUENCE OF GeneralName
	Serial *big.Int
}

// essCertIDv2 is the ESSCertIDv2 of RFC 5035, written with its hash
// algorithm left out when it is the default, SHA-256.
type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  issuerSerial `asn1:"optional"`
}

// signingCertificateV2 is the SigningCertificateV2 attribute value (policies
// left out).
type signingCertificateV2 struct {
	Certs []essCertIDv2
}

// checkESS checks the value (the bytes inside the attribute's SET) of a
// signing-certificate (v2 when v2 is true, else v1) attribute: a single
// value whose first ESSCertID names cert by hash and, when present, by
// issuer and serial number.
func checkESS(value []byte, v2 bool, cert *x509.Certificate) error {
	first, err := firstCertID(value)
	if err != nil {
		return err
	}
	elems, err := sequenceElements(first)
	if err != nil {
		return err
	}
	h, elems, err := essHash(elems, v2)
	if err != nil {
		return err
	}
	if len(elems) == 0 || len(elems) > 2 || elems[0].Tag != asn1.TagOctetString || elems[0].IsCompound {
		return errors.New("certHash missing")
	}
	d := h.New()
	d.Write(cert.Raw)
	if !bytes.Equal(d.Sum(nil), elems[0].Bytes) {
		return errors.New("certHash does not match the signer certificate")
	}
	if len(elems) == 2 && elems[1].FullBytes != nil {
		return checkIssuerSerial(elems[1].FullBytes, cert)
	}
	return nil
}

// firstCertID returns the content of the first ESSCertID(v2) of a
// SigningCertificate(V2) value: SEQUENCE { SEQUENCE OF ESSCertID, policies }.
func firstCertID(value []byte) ([]byte, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(value, &seq)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("more than one value")
	}
	if seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence {
		return nil, errors.New("not a SEQUENCE")
	}
	var certs asn1.RawValue // SEQUENCE OF ESSCertID(v2); policies may follow
	if _, err := asn1.Unmarshal(seq.Bytes, &certs); err != nil {
		return nil, err
	}
	if certs.Tag != asn1.TagSequence || !certs.IsCompound {
		return nil, errors.New("certs is not a SEQUENCE")
	}
	var first asn1.RawValue
	if _, err := asn1.Unmarshal(certs.Bytes, &first); err != nil {
		return nil, errors.New("no certificate identifier")
	}
	if first.Tag != asn1.TagSequence || !first.IsCompound {
		return nil, errors.New("certificate identifier is not a SEQUENCE")
	}
	return first.Bytes, nil
}

// essHash returns the hash of an ESSCertID(v2) and the elements after its
// algorithm: SHA-1 for v1; for v2 the optional leading AlgorithmIdentifier,
// SHA-256 when it is absent.
func essHash(elems []asn1.RawValue, v2 bool) (crypto.Hash, []asn1.RawValue, error) {
	if !v2 {
		return crypto.SHA1, elems, nil
	}
	if len(elems) == 0 || elems[0].Tag != asn1.TagSequence {
		return crypto.SHA256, elems, nil
	}
	var alg pkix.AlgorithmIdentifier
	if _, err := asn1.Unmarshal(elems[0].FullBytes, &alg); err != nil {
		return 0, nil, err
	}
	for _, e := range essHashes {
		if alg.Algorithm.Equal(e.oid) {
			return e.hash, elems[1:], nil
		}
	}
	return 0, nil, errors.New("unsupported hash algorithm " + alg.Algorithm.String())
}

// checkIssuerSerial checks that an IssuerSerial names cert: its serial number
// and, among the GeneralNames, a directoryName equal to cert's issuer.
func checkIssuerSerial(der []byte, cert *x509.Certificate) error {
	var is issuerSerial
	if rest, err := asn1.Unmarshal(der, &is); err != nil || len(rest) != 0 {
		return errors.New("malformed issuerSerial")
	}
	if is.Serial == nil || is.Serial.Cmp(cert.SerialNumber) != 0 {
		return errors.New("issuerSerial names another serial number")
	}
	names, err := sequenceElements(is.Issuer.Bytes)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n.Class == asn1.ClassContextSpecific && n.Tag == 4 && n.IsCompound && bytes.Equal(n.Bytes, cert.RawIssuer) {
			return nil
		}
	}
	return errors.New("issuerSerial names another issuer")
}

// sequenceElements splits the contents of a SEQUENCE into its elements.
func sequenceElements(b []byte) ([]asn1.RawValue, error) {
	var out []asn1.RawValue
	for len(b) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		b = rest
	}
	return out, nil
}
