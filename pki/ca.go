// Package pki holds the certificate building blocks of anprsec: the issuing
// CA (loaded from PEM files, or a development CA made by `anprsec init`),
// workstation and server certificates, their keys, the PKCS#12 files that
// carry them (with the friendlyName Java's keytool shows as the alias) and
// the passwords of those files.
//
// The CA signs through a crypto.Signer, so a key held by an HSM or a KMS can
// replace the file key without touching the callers.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Development CA parameters: `anprsec init` makes a development CA.
const (
	DevCACommonName   = "anprsec development CA"
	DevCAOrganization = "anprsec"
	DevCAYears        = 10
	DevCAKeyBits      = 4096
)

// CA is an issuing certificate authority: its certificate and a signer for
// its private key (a file key, or later an HSM or KMS).
type CA struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
}

// NewCA checks that cert is a CA certificate allowed to sign certificates,
// that signer holds the key of cert, and that the key is RSA (at least 2048
// bits) or ECDSA.
func NewCA(cert *x509.Certificate, signer crypto.Signer) (*CA, error) {
	if cert == nil || signer == nil {
		return nil, errors.New("pki: la CA richiede un certificato e una chiave di firma")
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("pki: il certificato %q non è di una CA (manca basicConstraints CA:TRUE)", cert.Subject.CommonName)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: il certificato della CA %q non ha il key usage keyCertSign", cert.Subject.CommonName)
	}
	switch k := signer.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("pki: chiave RSA della CA di %d bit, ne servono almeno 2048", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
	default:
		return nil, fmt.Errorf("pki: chiave della CA di tipo %T non supportata (ammesse RSA o ECDSA)", k)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: la chiave privata della CA non corrisponde al certificato %q", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, Signer: signer}, nil
}

// LoadCA reads the CA certificate (PEM) and its private key: a PEM file
// (PKCS#8 "PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE
// KEY"), refused when group or others may read it (secret.CheckFile), or
// an RFC 7512 PKCS#11 URI ("pkcs11:..."), a key that stays in its HSM and
// signs through it (package hsm).
func LoadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: certificato della CA: %w", err)
	}
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: certificato della CA %s: %w", certPath, err)
	}
	signer, err := LoadKey(keyPath)
	if err != nil {
		return nil, err
	}
	ca, err := NewCA(cert, signer)
	if err != nil {
		return nil, fmt.Errorf("%w (%s, %s)", err, certPath, keyPath)
	}
	return ca, nil
}

// ParseCertificatePEM returns the first CERTIFICATE block of data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("nessun blocco PEM CERTIFICATE")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// ParsePrivateKeyPEM returns the first private key of data: PKCS#8
// ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY",
// possibly after an "EC PARAMETERS" block as `openssl ecparam -genkey`
// writes). Encrypted keys are refused: the key file is protected by its
// permissions (and later by an HSM), not by a passphrase in the config.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("nessun blocco PEM di chiave privata (atteso PRIVATE KEY, RSA PRIVATE KEY o EC PRIVATE KEY)")
		}
		if _, enc := b.Headers["Proc-Type"]; enc || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("le chiavi private cifrate non sono supportate: conservare la chiave in chiaro con permessi 0600 (openssl pkey -in KEY -out KEY.plain)")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("la chiave privata di tipo %T non può firmare", key)
		}
		return s, nil
	}
}

// GenerateDevCA makes a development CA in memory: RSA-4096,
// CN "anprsec development CA", Subject Key Identifier, key usage
// keyCertSign+cRLSign, CA:TRUE with path length 0 (it signs only end
// entities), valid 10 years from now.
func GenerateDevCA(now time.Time) (*CA, error) {
	return generateDevCA(now, DevCAKeyBits)
}

func generateDevCA(now time.Time, bits int) (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	return newSelfSignedCA(key, DevCACommonName, now)
}

// newSelfSignedCA makes the certificate of a CA whose key is signer (a file
// key, or a key in an HSM): CN cn, O "anprsec", Subject Key Identifier,
// key usage keyCertSign+cRLSign, CA:TRUE with path length 0 (it signs only
// end entities), valid 10 years from now.
func newSelfSignedCA(signer crypto.Signer, cn string, now time.Time) (*CA, error) {
	tmpl, err := caTemplate(signer.Public(), now)
	if err != nil {
		return nil, err
	}
	tmpl.Subject = pkix.Name{CommonName: cn, Organization: []string{DevCAOrganization}}
	return selfSign(tmpl, signer)
}

// caTemplate is the profile of a CA certificate for pub: random serial,
// Subject Key Identifier, key usage keyCertSign+cRLSign, CA:TRUE with
// path length 0, valid DevCAYears from now (truncated to the second).
func caTemplate(pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	return &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now,
		NotAfter:              now.AddDate(DevCAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
		SignatureAlgorithm:    signatureAlgorithm(pub),
	}, nil
}

// selfSign signs CA certificate template tmpl with its own key signer.
func selfSign(tmpl *x509.Certificate, signer crypto.Signer) (*CA, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return NewCA(cert, signer)
}

// CreateDevCA writes a development CA (GenerateDevCA) to certPath (PEM, mode
// 0644) and keyPath (PKCS#8 PEM, mode 0600), creating their folders (0700).
// It is idempotent: when both files exist it does nothing and returns false;
// when only one exists it returns an error and touches nothing (a CA whose
// key is lost must not be silently replaced: every issued certificate
// chains to it). Both files are written under temporary names and renamed.
func CreateDevCA(certPath, keyPath string, now time.Time) (created bool, err error) {
	return CreateDevCABits(certPath, keyPath, now, DevCAKeyBits)
}

// CreateDevCABits is CreateDevCA with an RSA key of bits (2048, 3072 or
// 4096) instead of 4096. It exists for test suites that run `anprsec init`
// many times: an RSA-4096 key takes about half a second of CPU to make.
func CreateDevCABits(certPath, keyPath string, now time.Time, bits int) (created bool, err error) {
	if bits != 2048 && bits != 3072 && bits != 4096 {
		return false, fmt.Errorf("pki: chiave della CA di sviluppo di %d bit: ammessi 2048, 3072 o 4096", bits)
	}
	certExists, err := exists(certPath)
	if err != nil {
		return false, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return false, err
	}
	switch {
	case certExists && keyExists:
		return false, nil
	case certExists:
		return false, fmt.Errorf("pki: il certificato della CA %s esiste ma la sua chiave %s no: ripristinare la chiave, o rimuovere il certificato per creare una nuova CA di sviluppo", certPath, keyPath)
	case keyExists:
		return false, fmt.Errorf("pki: la chiave della CA %s esiste ma il suo certificato %s no: ripristinare il certificato, o rimuovere la chiave per creare una nuova CA di sviluppo", keyPath, certPath)
	}
	ca, err := generateDevCA(now, bits)
	if err != nil {
		return false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Signer)
	if err != nil {
		return false, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
	for _, p := range []string{certPath, keyPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return false, err
		}
	}
	keyTmp, err := writeTemp(keyPath, keyPEM, 0o600)
	if err != nil {
		return false, err
	}
	defer os.Remove(keyTmp)
	certTmp, err := writeTemp(certPath, certPEM, 0o644)
	if err != nil {
		return false, err
	}
	defer os.Remove(certTmp)
	if err := os.Rename(keyTmp, keyPath); err != nil {
		return false, err
	}
	if err := os.Rename(certTmp, certPath); err != nil {
		return false, err
	}
	return true, nil
}

func exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// writeTemp writes data to a new temporary file next to final, with mode
// exactly perm (whatever the umask), synced; it returns its name.
func writeTemp(final string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".*.tmp")
	if err != nil {
		return "", err
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// SubjectKeyID computes a key identifier as RFC 5280 section 4.2.1.2
// method (1): the SHA-1 of the subjectPublicKey BIT STRING.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// signatureAlgorithm is the algorithm the CA signs with: sha256WithRSA for
// an RSA key, ecdsa-with-SHA256 for P-256; other curves get Go's default
// for the curve (SHA-384 for P-384, SHA-512 for P-521).
func signatureAlgorithm(pub crypto.PublicKey) x509.SignatureAlgorithm {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return x509.SHA256WithRSA
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return x509.ECDSAWithSHA256
		}
	}
	return x509.UnknownSignatureAlgorithm
}
