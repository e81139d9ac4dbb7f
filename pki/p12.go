package pki

import (
	"crypto"
	"crypto/x509"
	"fmt"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// PKCS#12 encodings (config: pki encoding).
const (
	// EncodingLegacy is go-pkcs12's LegacyDES profile: key and certificates
	// encrypted with pbeWithSHAAnd3-KeyTripleDES-CBC (2048 iterations), MAC
	// HMAC-SHA-1 (2048 iterations, MACIterations). OpenSSL 3 opens it without -legacy (3DES is in its
	// default provider; RC2, used by go-pkcs12's LegacyRC2 and by OpenSSL
	// 1.x's default, is not), and so do NSS, Java and old Windows/macOS.
	EncodingLegacy = "legacy"
	// EncodingModern is go-pkcs12's Modern2023 profile: PBES2 with
	// PBKDF2-HMAC-SHA-256 and AES-256-CBC (2048 iterations), MAC
	// HMAC-SHA-256 (OpenSSL 1.1.1+, Java 12+, Windows Server 2019+).
	EncodingModern = "modern"

	DefaultEncoding = EncodingLegacy
)

// MACIterations is the iteration count of the MAC key's derivation, the
// same as the key bags' in both encodings (OpenSSL's default): go-pkcs12's
// LegacyDES derives the MAC key with 1 iteration, which makes a stolen
// .p12 a cheap oracle for a password search.
const MACIterations = 2048

// encoders are pinned to the named go-pkcs12 profiles, not to its aliases
// pkcs12.Legacy and pkcs12.Modern, which may change with the library, with
// MACIterations for the MAC and the bags alike.
var encoders = map[string]*pkcs12.Encoder{
	EncodingLegacy: pkcs12.LegacyDES.WithIterations(MACIterations),
	EncodingModern: pkcs12.Modern2023.WithIterations(MACIterations),
}

// EncodeP12 writes a password-protected PKCS#12 file holding key, its
// certificate cert and the CA certificates caCerts, in encoding "legacy"
// (the default, also for "") or "modern".
//
// The file is made by go-pkcs12, which writes no friendlyName; EncodeP12
// then adds friendlyName = friendlyName (cert's CN when empty) to the key
// bag and to cert's bag, keeps their localKeyId (adding one if missing),
// and recomputes the MAC: Java's keytool shows the friendlyName of the key
// bag as the alias, OpenSSL and NSS show the one of the certificate bag.
func EncodeP12(key crypto.PrivateKey, cert *x509.Certificate, caCerts []*x509.Certificate, password, encoding, friendlyName string) ([]byte, error) {
	if encoding == "" {
		encoding = DefaultEncoding
	}
	enc, ok := encoders[encoding]
	if !ok {
		return nil, fmt.Errorf("pki: codifica PKCS#12 %q: ammesse %s o %s", encoding, EncodingLegacy, EncodingModern)
	}
	if cert == nil {
		return nil, fmt.Errorf("pki: PKCS#12: manca il certificato")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: PKCS#12: chiave privata di tipo %T non supportata", key)
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: PKCS#12: la chiave privata non corrisponde al certificato %q", cert.Subject.CommonName)
	}
	if friendlyName == "" {
		friendlyName = cert.Subject.CommonName
	}
	pfx, err := enc.Encode(key, cert, caCerts, password)
	if err != nil {
		return nil, fmt.Errorf("pki: PKCS#12 %s: %w", cert.Subject.CommonName, err)
	}
	out, err := SetFriendlyName(pfx, password, cert.Raw, friendlyName)
	if err != nil {
		return nil, fmt.Errorf("pki: PKCS#12 %s: %w", cert.Subject.CommonName, err)
	}
	return out, nil
}
