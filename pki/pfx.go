package pki

// The PFX rewriter: go-pkcs12 writes no friendlyName attribute, but Java's
// keytool shows the friendlyName of the key bag as the alias, and OpenSSL
// and NSS show the one of the certificate bag. The rewriter parses the
// library's output (RFC 7292), adds the attributes, re-encrypts the
// SafeContents it had to decrypt, and recomputes the MAC.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
)

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}

	oidFriendlyName = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	oidX509Cert     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}

	oidKeyBag         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedKeyBag = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidPBEWithSHAAnd3KeyTripleDESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBES2                         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2                        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA1                  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA256                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA512                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// maxIterations bounds every iteration count read from a PFX (ours use
// 2048), so that a hostile file cannot make the rewriter spin.
const maxIterations = 100_000

// ErrWrongPassword is returned when the MAC of a PFX does not verify.
var ErrWrongPassword = errors.New("pki: il MAC del PKCS#12 non torna: password sbagliata o file danneggiato")

// PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData MacData OPTIONAL }
type pfxPDU struct {
	Version  int
	AuthSafe contentInfo
	MacData  macData `asn1:"optional"`
}

// ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY OPTIONAL }
// Content holds the [0] wrapper: Content.Bytes is the inner element.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

// MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
type macData struct {
	Mac        digestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

// EncryptedData ::= SEQUENCE { version INTEGER, encryptedContentInfo EncryptedContentInfo }
type encryptedData struct {
	Version              int
	EncryptedContentInfo encryptedContentInfo
}

type encryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           []byte `asn1:"tag:0,optional"`
}

// SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF PKCS12Attribute OPTIONAL }
type safeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []bagAttribute `asn1:"set,optional"`
}

// PKCS12Attribute ::= SEQUENCE { attrId OID, attrValues SET OF ANY }
type bagAttribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

// CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT OCTET STRING }
type certBag struct {
	ID   asn1.ObjectIdentifier
	Data []byte `asn1:"tag:0,explicit"`
}

type pbeParams struct {
	Salt       []byte
	Iterations int
}

type pbes2Params struct {
	KDF              pkix.AlgorithmIdentifier
	EncryptionScheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       asn1.RawValue
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// unmarshalAll is asn1.Unmarshal refusing trailing bytes.
func unmarshalAll(der []byte, out any) error {
	rest, err := asn1.Unmarshal(der, out)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data after ASN.1 element")
	}
	return nil
}

// explicit0 wraps an encoded element as [0] EXPLICIT.
func explicit0(inner []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}
}

// bmpString encodes s as UCS-2 big-endian, as go-pkcs12 does.
func bmpString(s string) ([]byte, error) {
	out := make([]byte, 0, 2*len(s)+2)
	for _, r := range s {
		if t, _ := utf16.EncodeRune(r); t != 0xfffd {
			return nil, fmt.Errorf("%q has characters outside the Basic Multilingual Plane", s)
		}
		out = append(out, byte(r>>8), byte(r))
	}
	return out, nil
}

// safeContents is one element of the AuthenticatedSafe, decoded.
type safeContents struct {
	bags      []safeBag
	encrypted *encryptedData // nil for a plain data SafeContents
	block     cipher.Block   // with iv: the cipher that decrypted it
	iv        []byte
}

// SetFriendlyName rewrites a PFX (DER) made with password so that its key
// bag and the certificate bag of leafDER carry friendlyName = name and a
// common localKeyId (kept when present, else the SHA-1 of the
// certificate), re-encrypting what it decrypted and recomputing the MAC
// with the existing digest, salt and iteration count. When leafDER is nil,
// the certificate bag is the one whose localKeyId matches the key bag's,
// else the first one. Applied twice, it replaces the friendlyName.
//
// A SafeContents it decrypts (in go-pkcs12's files, the one of the
// certificates; the key stays shrouded in its own bag and is never
// decrypted) is re-encrypted with the same derived key and IV, so its
// algorithm parameters do not change: deriving a key and IV costs thousands
// of hash iterations (3 x 2048 SHA-1 for 3DES), and fresh ones would add
// half again to the cost of EncodeP12. Reusing them exposes nothing: EncodeP12 never writes the
// library's ciphertext anywhere, and what is re-encrypted is certificates,
// public anyway.
//
// It understands what go-pkcs12's LegacyDES and Modern2023 write (and
// OpenSSL 3's defaults and -descert): MAC HMAC-SHA-1/256/512 with the
// PKCS#12 KDF; pbeWithSHAAnd3-KeyTripleDES-CBC or PBES2 (PBKDF2 with
// HMAC-SHA-1/256/512, AES-CBC). Other algorithms (RC2, PBMAC1) are refused
// with an error, and so is any iteration count above 100,000.
func SetFriendlyName(pfxDER []byte, password string, leafDER []byte, name string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("empty friendlyName")
	}
	nameBMP, err := bmpString(name)
	if err != nil {
		return nil, fmt.Errorf("friendlyName: %w", err)
	}
	pwBMP, err := bmpString(password)
	if err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	pwBMP = append(pwBMP, 0, 0)

	pfx, authSafeDER, err := parsePFX(pfxDER)
	if err != nil {
		return nil, err
	}
	// The MAC keeps its digest, salt and iteration count: one key serves
	// to verify the old MAC and to compute the new one.
	macHash, macK, err := macKey(&pfx.MacData, pwBMP)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(hmacSum(macHash, macK, authSafeDER), pfx.MacData.Mac.Digest) {
		return nil, ErrWrongPassword
	}
	safes, parts, err := openSafes(authSafeDER, password, pwBMP)
	if err != nil {
		return nil, err
	}
	if err := labelBags(parts, leafDER, nameBMP); err != nil {
		return nil, err
	}
	if authSafeDER, err = sealSafes(safes, parts); err != nil {
		return nil, err
	}
	pfx.MacData.Mac.Digest = hmacSum(macHash, macK, authSafeDER)
	octets, err := asn1.Marshal(authSafeDER)
	if err != nil {
		return nil, err
	}
	pfx.AuthSafe.Content = explicit0(octets)
	return asn1.Marshal(pfx)
}

// parsePFX decodes a PFX of version 3 with password integrity and a MAC,
// and returns it with its AuthenticatedSafe (DER), the content the MAC
// covers.
func parsePFX(pfxDER []byte) (pfxPDU, []byte, error) {
	var pfx pfxPDU
	if err := unmarshalAll(pfxDER, &pfx); err != nil {
		return pfx, nil, fmt.Errorf("not a PKCS#12 PFX: %w", err)
	}
	if pfx.Version != 3 {
		return pfx, nil, fmt.Errorf("PFX version %d, want 3", pfx.Version)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidData) {
		return pfx, nil, fmt.Errorf("PFX authSafe of type %s: only password integrity (data) is supported", pfx.AuthSafe.ContentType)
	}
	var authSafeDER []byte
	if err := unmarshalAll(pfx.AuthSafe.Content.Bytes, &authSafeDER); err != nil {
		return pfx, nil, fmt.Errorf("PFX authSafe: %w", err)
	}
	if len(pfx.MacData.Mac.Algorithm.Algorithm) == 0 {
		return pfx, nil, errors.New("PFX has no MAC")
	}
	return pfx, authSafeDER, nil
}

// openSafes decodes the AuthenticatedSafe: its ContentInfos, and each one's
// SafeContents, decrypted when encrypted.
func openSafes(authSafeDER []byte, password string, pwBMP []byte) ([]contentInfo, []safeContents, error) {
	var safes []contentInfo
	if err := unmarshalAll(authSafeDER, &safes); err != nil {
		return nil, nil, fmt.Errorf("AuthenticatedSafe: %w", err)
	}
	parts := make([]safeContents, len(safes))
	for i, ci := range safes {
		if err := openSafe(i, ci, password, pwBMP, &parts[i]); err != nil {
			return nil, nil, err
		}
	}
	return safes, parts, nil
}

// openSafe decodes SafeContents i, plain data or encrypted data, into part.
func openSafe(i int, ci contentInfo, password string, pwBMP []byte, part *safeContents) error {
	var plain []byte
	switch {
	case ci.ContentType.Equal(oidData):
		if err := unmarshalAll(ci.Content.Bytes, &plain); err != nil {
			return fmt.Errorf("SafeContents %d: %w", i, err)
		}
	case ci.ContentType.Equal(oidEncryptedData):
		var err error
		if plain, err = part.decrypt(ci, password, pwBMP); err != nil {
			return fmt.Errorf("SafeContents %d: %w", i, err)
		}
	default:
		return fmt.Errorf("SafeContents %d of type %s not supported", i, ci.ContentType)
	}
	if err := unmarshalAll(plain, &part.bags); err != nil {
		return fmt.Errorf("SafeContents %d: %w", i, err)
	}
	return nil
}

// decrypt returns the plaintext of an EncryptedData SafeContents, and keeps
// the EncryptedData, cipher and IV in part to re-encrypt it.
func (part *safeContents) decrypt(ci contentInfo, password string, pwBMP []byte) ([]byte, error) {
	var ed encryptedData
	if err := unmarshalAll(ci.Content.Bytes, &ed); err != nil {
		return nil, err
	}
	if ed.Version != 0 {
		return nil, fmt.Errorf("EncryptedData version %d, want 0", ed.Version)
	}
	block, iv, err := pbeCipher(ed.EncryptedContentInfo.ContentEncryptionAlgorithm, password, pwBMP)
	if err != nil {
		return nil, err
	}
	plain, err := cbcDecrypt(block, iv, ed.EncryptedContentInfo.EncryptedContent)
	if err != nil {
		return nil, err
	}
	part.encrypted, part.block, part.iv = &ed, block, iv
	return plain, nil
}

// sealSafes encodes each SafeContents back into its ContentInfo, encrypted
// again when it was, and returns the AuthenticatedSafe (DER).
func sealSafes(safes []contentInfo, parts []safeContents) ([]byte, error) {
	for i := range safes {
		inner, err := parts[i].seal()
		if err != nil {
			return nil, err
		}
		safes[i].Content = explicit0(inner)
	}
	return asn1.Marshal(safes)
}

// seal encodes the bags as the content of a ContentInfo: an OCTET STRING
// for plain data, else the EncryptedData with the bags encrypted by the
// cipher and IV that decrypted them.
func (part *safeContents) seal() ([]byte, error) {
	sc, err := asn1.Marshal(part.bags)
	if err != nil {
		return nil, err
	}
	if part.encrypted == nil {
		return asn1.Marshal(sc)
	}
	part.encrypted.EncryptedContentInfo.EncryptedContent = cbcEncrypt(part.block, part.iv, sc)
	return asn1.Marshal(*part.encrypted)
}

// labelBags finds the only key bag and the leaf certificate bag and sets
// their localKeyId and friendlyName.
func labelBags(parts []safeContents, leafDER, nameBMP []byte) error {
	key, certs, err := findBags(parts)
	if err != nil {
		return err
	}
	if key == nil {
		return errors.New("PFX has no key bag")
	}
	keyID, err := attrOctets(key, oidLocalKeyID)
	if err != nil {
		return err
	}
	leaf, err := leafBag(certs, leafDER, keyID)
	if err != nil {
		return err
	}
	if leaf.bag == nil {
		return errors.New("PFX has no bag for the certificate")
	}
	certID, err := attrOctets(leaf.bag, oidLocalKeyID)
	if err != nil {
		return err
	}
	if keyID, err = commonKeyID(keyID, certID, leaf.der); err != nil {
		return err
	}
	idDER, err := asn1.Marshal(keyID)
	if err != nil {
		return err
	}
	nameDER, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagBMPString, Bytes: nameBMP})
	if err != nil {
		return err
	}
	for _, b := range []*safeBag{key, leaf.bag} {
		setAttr(b, oidLocalKeyID, idDER)
		setAttr(b, oidFriendlyName, nameDER)
	}
	return nil
}

// x509Bag is a certificate bag holding an X.509 certificate, and the
// certificate (DER).
type x509Bag struct {
	bag *safeBag
	der []byte
}

// findBags returns the key bag (nil when there is none; a second one is an
// error) and the X.509 certificate bags, in order. Other bags are left
// alone.
func findBags(parts []safeContents) (key *safeBag, certs []x509Bag, err error) {
	for i := range parts {
		for j := range parts[i].bags {
			b := &parts[i].bags[j]
			switch {
			case b.ID.Equal(oidKeyBag), b.ID.Equal(oidShroudedKeyBag):
				if key != nil {
					return nil, nil, errors.New("PFX has more than one key bag")
				}
				key = b
			case b.ID.Equal(oidCertBag):
				var cb certBag
				if err := unmarshalAll(b.Value.Bytes, &cb); err != nil {
					return nil, nil, fmt.Errorf("certificate bag: %w", err)
				}
				if cb.ID.Equal(oidX509Cert) {
					certs = append(certs, x509Bag{b, cb.Data})
				}
			}
		}
	}
	return key, certs, nil
}

// leafBag returns the bag of the leaf certificate: the one of leafDER when
// given, else the one whose localKeyId is keyID, else the first one. Its
// bag is nil when there is none.
func leafBag(certs []x509Bag, leafDER, keyID []byte) (x509Bag, error) {
	if leafDER != nil {
		for _, c := range certs {
			if bytes.Equal(c.der, leafDER) {
				return c, nil
			}
		}
		return x509Bag{}, nil
	}
	for _, c := range certs {
		id, err := attrOctets(c.bag, oidLocalKeyID)
		if err != nil {
			return x509Bag{}, err
		}
		if keyID != nil && bytes.Equal(id, keyID) {
			return c, nil
		}
	}
	if len(certs) > 0 {
		return certs[0], nil
	}
	return x509Bag{}, nil
}

// commonKeyID returns the localKeyId the key and leaf bags share: the
// key's, else the certificate's, else the SHA-1 of the certificate. Two
// different ones are an error.
func commonKeyID(keyID, certID, leafCert []byte) ([]byte, error) {
	switch {
	case keyID != nil && certID != nil && !bytes.Equal(keyID, certID):
		return nil, errors.New("PFX key and certificate bags have different localKeyId")
	case keyID == nil && certID != nil:
		return certID, nil
	case keyID == nil:
		sum := sha1.Sum(leafCert)
		return sum[:], nil
	}
	return keyID, nil
}

// attrOctets returns the OCTET STRING value of attribute id of b, nil when
// b has no such attribute.
func attrOctets(b *safeBag, id asn1.ObjectIdentifier) ([]byte, error) {
	for _, a := range b.Attributes {
		if !a.ID.Equal(id) {
			continue
		}
		var v []byte
		if err := unmarshalAll(a.Value.Bytes, &v); err != nil {
			return nil, fmt.Errorf("bag attribute %s: %w", id, err)
		}
		return v, nil
	}
	return nil, nil
}

// setAttr replaces every attribute id of b with one holding the single
// encoded value valueDER.
func setAttr(b *safeBag, id asn1.ObjectIdentifier, valueDER []byte) {
	attrs := b.Attributes[:0:0]
	for _, a := range b.Attributes {
		if !a.ID.Equal(id) {
			attrs = append(attrs, a)
		}
	}
	b.Attributes = append(attrs, bagAttribute{
		ID:    id,
		Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: valueDER},
	})
}

// pfxMAC computes the PKCS#12 MAC of message (RFC 7292 appendix B): HMAC
// keyed with the PKCS#12 KDF (ID 3) of the BMPString password, the MAC
// salt and iteration count, with the MAC's digest.
func pfxMAC(md *macData, message, pwBMP []byte) ([]byte, error) {
	h, key, err := macKey(md, pwBMP)
	if err != nil {
		return nil, err
	}
	return hmacSum(h, key, message), nil
}

// macKey returns the digest and the HMAC key of a MacData.
func macKey(md *macData, pwBMP []byte) (func() hash.Hash, []byte, error) {
	alg := md.Mac.Algorithm.Algorithm
	var h func() hash.Hash
	var v int
	switch {
	case alg.Equal(oidSHA1):
		h, v = sha1.New, 64
	case alg.Equal(oidSHA256):
		h, v = sha256.New, 64
	case alg.Equal(oidSHA512):
		h, v = sha512.New, 128
	default:
		return nil, nil, fmt.Errorf("PFX MAC algorithm %s not supported", alg)
	}
	if md.Iterations < 1 || md.Iterations > maxIterations {
		return nil, nil, fmt.Errorf("PFX MAC iteration count %d out of range", md.Iterations)
	}
	return h, pkcs12KDF(h, v, pwBMP, md.MacSalt, md.Iterations, 3, h().Size()), nil
}

func hmacSum(h func() hash.Hash, key, message []byte) []byte {
	m := hmac.New(h, key)
	m.Write(message)
	return m.Sum(nil)
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2: hash h with
// block size v bytes, password (BMPString with its two-zero terminator),
// salt, r iterations, purpose id (1 key, 2 IV, 3 MAC key), n bytes out.
func pkcs12KDF(h func() hash.Hash, v int, password, salt []byte, r int, id byte, n int) []byte {
	u := h().Size()
	D := bytes.Repeat([]byte{id}, v)
	I := append(fillBlocks(salt, v), fillBlocks(password, v)...)
	c := (n + u - 1) / u
	out := make([]byte, 0, c*u)
	hh := h()
	B := make([]byte, v)
	for i := 0; i < c; i++ {
		hh.Reset()
		hh.Write(D)
		hh.Write(I)
		A := hh.Sum(nil)
		for j := 1; j < r; j++ {
			hh.Reset()
			hh.Write(A)
			A = hh.Sum(A[:0])
		}
		out = append(out, A...)
		if i == c-1 {
			break
		}
		for k := range B {
			B[k] = A[k%u]
		}
		// I_j = (I_j + B + 1) mod 2^v for each v-byte block I_j of I.
		for j := 0; j < len(I); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				s := int(I[j+k]) + int(B[k]) + carry
				I[j+k] = byte(s)
				carry = s >> 8
			}
		}
	}
	return out[:n]
}

// fillBlocks repeats p to v*ceil(len(p)/v) bytes (empty for empty p).
func fillBlocks(p []byte, v int) []byte {
	if len(p) == 0 {
		return nil
	}
	n := v * ((len(p) + v - 1) / v)
	out := make([]byte, n)
	for i := range out {
		out[i] = p[i%len(p)]
	}
	return out
}

// pbeCipher returns the block cipher and IV of a password-based encryption
// algorithm: pbeWithSHAAnd3-KeyTripleDES-CBC (PKCS#12 KDF on the BMPString
// password) or PBES2 with PBKDF2 and AES-CBC (on the UTF-8 password, as
// OpenSSL, Windows and go-pkcs12 do).
func pbeCipher(alg pkix.AlgorithmIdentifier, password string, pwBMP []byte) (cipher.Block, []byte, error) {
	switch {
	case alg.Algorithm.Equal(oidPBEWithSHAAnd3KeyTripleDESCBC):
		var p pbeParams
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return nil, nil, fmt.Errorf("PBE parameters: %w", err)
		}
		if p.Iterations < 1 || p.Iterations > maxIterations {
			return nil, nil, fmt.Errorf("PBE iteration count %d out of range", p.Iterations)
		}
		key := pkcs12KDF(sha1.New, 64, pwBMP, p.Salt, p.Iterations, 1, 24)
		iv := pkcs12KDF(sha1.New, 64, pwBMP, p.Salt, p.Iterations, 2, 8)
		block, err := des.NewTripleDESCipher(key)
		return block, iv, err
	case alg.Algorithm.Equal(oidPBES2):
		p, kp, err := parsePBES2(alg)
		if err != nil {
			return nil, nil, err
		}
		var prf func() hash.Hash
		switch {
		case len(kp.PRF.Algorithm) == 0, kp.PRF.Algorithm.Equal(oidHMACWithSHA1):
			prf = sha1.New
		case kp.PRF.Algorithm.Equal(oidHMACWithSHA256):
			prf = sha256.New
		case kp.PRF.Algorithm.Equal(oidHMACWithSHA512):
			prf = sha512.New
		default:
			return nil, nil, fmt.Errorf("PBKDF2 PRF %s not supported", kp.PRF.Algorithm)
		}
		var keyLen int
		switch {
		case p.EncryptionScheme.Algorithm.Equal(oidAES128CBC):
			keyLen = 16
		case p.EncryptionScheme.Algorithm.Equal(oidAES192CBC):
			keyLen = 24
		case p.EncryptionScheme.Algorithm.Equal(oidAES256CBC):
			keyLen = 32
		default:
			return nil, nil, fmt.Errorf("PBES2 cipher %s not supported", p.EncryptionScheme.Algorithm)
		}
		if kp.KeyLength != 0 && kp.KeyLength != keyLen {
			return nil, nil, fmt.Errorf("PBKDF2 key length %d, want %d", kp.KeyLength, keyLen)
		}
		var iv []byte
		if err := unmarshalAll(p.EncryptionScheme.Parameters.FullBytes, &iv); err != nil {
			return nil, nil, fmt.Errorf("PBES2 IV: %w", err)
		}
		if len(iv) != aes.BlockSize {
			return nil, nil, fmt.Errorf("PBES2 IV of %d bytes, want %d", len(iv), aes.BlockSize)
		}
		key, err := pbkdf2.Key(prf, password, kp.Salt.Bytes, kp.Iterations, keyLen)
		if err != nil {
			return nil, nil, err
		}
		block, err := aes.NewCipher(key)
		return block, iv, err
	default:
		return nil, nil, fmt.Errorf("encryption algorithm %s not supported", alg.Algorithm)
	}
}

func parsePBES2(alg pkix.AlgorithmIdentifier) (pbes2Params, pbkdf2Params, error) {
	var p pbes2Params
	var kp pbkdf2Params
	if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
		return p, kp, fmt.Errorf("PBES2 parameters: %w", err)
	}
	if !p.KDF.Algorithm.Equal(oidPBKDF2) {
		return p, kp, fmt.Errorf("PBES2 KDF %s not supported", p.KDF.Algorithm)
	}
	if err := unmarshalAll(p.KDF.Parameters.FullBytes, &kp); err != nil {
		return p, kp, fmt.Errorf("PBKDF2 parameters: %w", err)
	}
	if kp.Salt.Class != asn1.ClassUniversal || kp.Salt.Tag != asn1.TagOctetString || kp.Salt.IsCompound {
		return p, kp, errors.New("PBKDF2 salt is not an OCTET STRING")
	}
	if kp.Iterations < 1 || kp.Iterations > maxIterations {
		return p, kp, fmt.Errorf("PBKDF2 iteration count %d out of range", kp.Iterations)
	}
	return p, kp, nil
}

// pbeDecrypt decrypts ct with the password-based algorithm alg.
func pbeDecrypt(alg pkix.AlgorithmIdentifier, ct []byte, password string, pwBMP []byte) ([]byte, error) {
	block, iv, err := pbeCipher(alg, password, pwBMP)
	if err != nil {
		return nil, err
	}
	return cbcDecrypt(block, iv, ct)
}

// cbcDecrypt decrypts ct in CBC mode and removes its PKCS#7 padding.
func cbcDecrypt(block cipher.Block, iv, ct []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, fmt.Errorf("encrypted content of %d bytes is not a whole number of blocks", len(ct))
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > bs || !bytes.Equal(pt[len(pt)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errors.New("decryption failed (bad padding)")
	}
	return pt[:len(pt)-pad], nil
}

// cbcEncrypt pads pt (PKCS#7) and encrypts it in CBC mode.
func cbcEncrypt(block cipher.Block, iv, pt []byte) []byte {
	bs := block.BlockSize()
	pad := bs - len(pt)%bs
	ct := make([]byte, len(pt)+pad)
	copy(ct, pt)
	for i := len(pt); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	return ct
}
