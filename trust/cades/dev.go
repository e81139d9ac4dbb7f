package cades

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/smallstep/pkcs7"

	"anprsec/codfisc"
)

// Files of a development card CA in its folder.
const (
	DevCACertFile = "card-ca.pem"
	DevCAKeyFile  = "card-ca.key"
)

// DevCAYears is how long a development card CA is valid.
const DevCAYears = 10

// DevCA is a development card CA: it issues the card certificates that sign
// console requests in development and tests. It is no substitute for the
// qualified certification authorities of production.
type DevCA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Card is a smart card's signing certificate with its key, and the CA that
// issued it.
type Card struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	CA   *x509.Certificate
}

// NewDevCA makes a development card CA (ECDSA P-256, valid DevCAYears) and
// writes its certificate (DevCACertFile) and key (DevCAKeyFile, mode 0600)
// into dir, which it creates. It refuses to overwrite a CA already there.
func NewDevCA(dir string) (*DevCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	for _, f := range []string{DevCACertFile, DevCAKeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("cades: %s already exists: the development card CA is not replaced", filepath.Join(dir, f))
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Country: []string{"IT"}, Organization: []string{"anprsec"}, CommonName: "anprsec development card CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(DevCAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	keyPEM, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := writeExclusive(filepath.Join(dir, DevCAKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeExclusive(filepath.Join(dir, DevCACertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return &DevCA{Cert: cert, Key: key}, nil
}

// LoadDevCA reads the development card CA that NewDevCA wrote into dir.
func LoadDevCA(dir string) (*DevCA, error) {
	data, err := os.ReadFile(filepath.Join(dir, DevCACertFile))
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	cert, _, err := parsePEMPair(data, false)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, DevCACertFile)
	}
	data, err = os.ReadFile(filepath.Join(dir, DevCAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	_, key, err := parsePEMPair(data, true)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, DevCAKeyFile)
	}
	if err := matches(cert, key); err != nil {
		return nil, err
	}
	return &DevCA{Cert: cert, Key: key}, nil
}

// IssueCard issues a card signing certificate (ECDSA P-256) to the holder of
// codice fiscale cf, named name, valid from an hour ago until notAfter. Its
// subject carries serialNumber=TINIT-<CF>, as Italian qualified certificates
// do, and its key usage is digitalSignature and nonRepudiation.
func IssueCard(ca *DevCA, cf, name string, notAfter time.Time) (*Card, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("cades: no CA to issue the card")
	}
	cf = codfisc.Normalize(cf)
	if _, err := codfisc.Parse(cf); err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	now := time.Now()
	if !notAfter.After(now) {
		return nil, fmt.Errorf("cades: card expiry %s is not in the future", notAfter.Format(time.RFC3339))
	}
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			Country:      []string{"IT"},
			Organization: []string{"anprsec sviluppo"},
			CommonName:   name,
			SerialNumber: "TINIT-" + cf,
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	return &Card{Cert: cert, Key: key, CA: ca.Cert}, nil
}

// PEM returns the card certificate followed by its private key (PKCS#8), as
// one PEM file; keep it mode 0600.
func (c *Card) PEM() ([]byte, error) {
	k, err := keyPEM(c.Key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}), k...), nil
}

// ParseCardPEM reads a card written by Card.PEM (the CA is left nil).
func ParseCardPEM(data []byte) (*Card, error) {
	cert, key, err := parsePEMPair(data, true)
	if err != nil {
		return nil, err
	}
	if cert == nil {
		return nil, errors.New("cades: no CERTIFICATE in the card file")
	}
	if err := matches(cert, key); err != nil {
		return nil, err
	}
	return &Card{Cert: cert, Key: key}, nil
}

// Sign makes a CAdES-BES signature of content with cert and its key: SHA-256,
// signed attributes content-type, message-digest, signing-time (now) and ESS
// signing-certificate-v2 naming cert by hash, issuer and serial number; cert
// is the only certificate carried. With detached true the result is a .p7s
// without the content, else an enveloping .p7m; both DER.
func Sign(content []byte, cert *x509.Certificate, key crypto.Signer, detached bool) ([]byte, error) {
	if cert == nil || key == nil {
		return nil, errors.New("cades: Sign needs a certificate and its key")
	}
	if err := matches(cert, key); err != nil {
		return nil, err
	}
	ess, err := essFor(cert)
	if err != nil {
		return nil, err
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	cfg := pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{{Type: oidSigningCertificateV2, Value: ess}}}
	if err := sd.AddSigner(cert, key, cfg); err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	if detached {
		sd.Detach()
	}
	out, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	return out, nil
}

// essFor builds the SigningCertificateV2 value naming cert: SHA-256 hash
// (the default algorithm, so left out) and IssuerSerial.
func essFor(cert *x509.Certificate) (signingCertificateV2, error) {
	dirName, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawIssuer})
	if err != nil {
		return signingCertificateV2{}, fmt.Errorf("cades: %w", err)
	}
	h := sha256.Sum256(cert.Raw)
	return signingCertificateV2{Certs: []essCertIDv2{{
		CertHash: h[:],
		IssuerSerial: issuerSerial{
			Issuer: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: dirName},
			Serial: cert.SerialNumber,
		},
	}}}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1))
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cades: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parsePEMPair reads the first CERTIFICATE and, when wantKey, the first
// PRIVATE KEY (PKCS#8) of a PEM file.
func parsePEMPair(data []byte, wantKey bool) (*x509.Certificate, crypto.Signer, error) {
	var cert *x509.Certificate
	var key crypto.Signer
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE" && cert == nil:
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("cades: %w", err)
			}
			cert = c
		case b.Type == "PRIVATE KEY" && key == nil:
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("cades: %w", err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, nil, fmt.Errorf("cades: key of type %T cannot sign", k)
			}
			key = s
		}
	}
	if wantKey && key == nil {
		return nil, nil, errors.New("cades: no PRIVATE KEY in the file")
	}
	if !wantKey && cert == nil {
		return nil, nil, errors.New("cades: no CERTIFICATE in the file")
	}
	return cert, key, nil
}

// matches checks that key is the private key of cert.
func matches(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("cades: the private key does not match the certificate %q", cert.Subject.CommonName)
	}
	return nil
}

func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("cades: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cades: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cades: %w", err)
	}
	return nil
}
