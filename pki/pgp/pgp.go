// Package pgp is the OpenPGP layer of the smart-card issue: it loads the
// service, producer, gateway and holder keys, encrypts and signs card orders
// and PIN letters, verifies the detached signatures of the prefetture's
// manifests, and makes the development key pairs written by `anprsec init`.
//
// It is a thin, opinionated wrapper around github.com/ProtonMail/go-crypto
// (the v1 "openpgp" API): messages are always ASCII-armored, always encrypted
// with AES-256 (unless a recipient's key does not accept it) and always
// signed; keys must be usable now (not expired, not revoked); secret keys
// must be stored without a passphrase in files of mode 0600, because a
// daemon cannot prompt for one.
//
// Every error names the file or the key (user id and fingerprint) it is
// about. Parsing functions never panic on hostile input: a panic inside the
// OpenPGP library is turned into an error.
//
// Keys generated here are v4 keys (Ed25519 primary key for signing and
// certification, Curve25519 ECDH encryption subkey), which GnuPG 2.2 reads.
package pgp

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Sentinel errors, to be tested with errors.Is. The returned errors wrap them
// and add the details (file, key, reason).
var (
	// ErrBadSignature: the signature does not verify (data changed, wrong
	// key, signing key expired or revoked, signature expired).
	ErrBadSignature = errors.New("firma non valida")
	// ErrUnknownSigner: the signature was made by a key that is not in the
	// keyring given.
	ErrUnknownSigner = errors.New("firmato da una chiave sconosciuta")
	// ErrNotSigned: an encrypted message carries no signature.
	ErrNotSigned = errors.New("il messaggio non è firmato")
	// ErrMalformed: the input is not an OpenPGP object of the expected kind.
	ErrMalformed = errors.New("dati OpenPGP malformati")
	// ErrTextSignature: a detached signature is a text-mode signature
	// (type 0x01, gpg --textmode) where one of the exact bytes (type 0x00)
	// is required.
	ErrTextSignature = errors.New("firma in modalità testo")
)

// malformedError is an error about malformed input that reads naturally
// ("not an OpenPGP key ...") yet matches ErrMalformed.
type malformedError string

func (m malformedError) Error() string { return string(m) }

// Is makes errors.Is(err, ErrMalformed) true.
func (malformedError) Is(target error) bool { return target == ErrMalformed }

func malformed(format string, args ...any) error {
	return malformedError(fmt.Sprintf(format, args...))
}

// maxKeyFile bounds the size of a key file read from disk: real keys are a
// few kilobytes, even with many signatures.
const maxKeyFile = 1 << 20

// config is used for every operation. Now is nil (time.Now); Algorithm and
// Curve only matter for key generation.
var config = &packet.Config{
	DefaultCipher: packet.CipherAES256,
	DefaultHash:   crypto.SHA256,
	Algorithm:     packet.PubKeyAlgoEdDSA, // legacy EdDSA (algo 22): what GnuPG 2.2 knows
	Curve:         packet.Curve25519,      // Ed25519 primary, cv25519 ECDH subkey
}

// Fingerprint returns the fingerprint of the primary key of e in uppercase
// hexadecimal without spaces (40 digits for a v4 key), as GnuPG prints it
// with --with-colons. It returns "" for a nil entity.
func Fingerprint(e *openpgp.Entity) string {
	if e == nil || e.PrimaryKey == nil {
		return ""
	}
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// PrimaryEmail returns the e-mail address of the primary user id of e, or ""
// when it has none.
func PrimaryEmail(e *openpgp.Entity) string {
	if e == nil {
		return ""
	}
	if id := e.PrimaryIdentity(); id != nil && id.UserId != nil {
		return id.UserId.Email
	}
	return ""
}

// describe names a key in error messages: its primary user id (when it has
// one) and its fingerprint.
func describe(e *openpgp.Entity) string {
	if e == nil {
		return "<nil key>"
	}
	fpr := Fingerprint(e)
	if id := e.PrimaryIdentity(); id != nil && id.Name != "" {
		return fmt.Sprintf("%q (%s)", id.Name, fpr)
	}
	return fpr
}

// catch turns a panic of the OpenPGP library, on hostile input, into an
// error.
func catch(err *error, prefix string) {
	if r := recover(); r != nil {
		*err = malformed("%sdati illeggibili (errore dell'analisi: %v)", prefix, r)
	}
}

// ---------------------------------------------------------------- keys

// ReadPublicFile reads the public key(s) of recipients from an ASCII-armored
// (.asc) or binary key file. Every key in the file must be usable now for
// encryption: not expired, not revoked, with an encryption (sub)key. A file
// holding secret key material is refused too (it is the wrong file, and it
// should not sit where public keys live).
func ReadPublicFile(path string) (openpgp.EntityList, error) {
	return readPublic(path, checkEncryption)
}

// ReadVerifierFile reads the public key(s) used to verify detached
// signatures (a prefettura's key) from an ASCII-armored or binary key file.
// Like ReadPublicFile, but every key must be usable now for signing instead
// of encryption, so signing-only keys are accepted.
func ReadVerifierFile(path string) (openpgp.EntityList, error) {
	return readPublic(path, checkSigning)
}

// ReadVerifier is ReadVerifierFile for key data already read (from a
// caller's file through the control socket); name says where they came from.
func ReadVerifier(data []byte, name string) (openpgp.EntityList, error) {
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("pgp: il file di chiave %s supera %d byte: non è una chiave", name, maxKeyFile)
	}
	el, err := parsePublic(data, checkSigning, config.Now())
	if err != nil {
		return nil, fmt.Errorf("pgp: %s: %w", name, err)
	}
	return el, nil
}

func readPublic(path string, check func(*openpgp.Entity, time.Time) error) (openpgp.EntityList, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	el, err := parsePublic(data, check, config.Now())
	if err != nil {
		return nil, fmt.Errorf("pgp: %s: %w", path, err)
	}
	return el, nil
}

// parsePublic parses key data and checks every key with check.
func parsePublic(data []byte, check func(*openpgp.Entity, time.Time) error, now time.Time) (openpgp.EntityList, error) {
	el, err := parseKeys(data)
	if err != nil {
		return nil, err
	}
	for _, e := range el {
		if e.PrivateKey != nil {
			return nil, fmt.Errorf("contiene la chiave segreta %s dove è attesa una chiave pubblica: fornire solo la chiave pubblica (gpg --export --armor %s)", describe(e), Fingerprint(e))
		}
		if err := check(e, now); err != nil {
			return nil, err
		}
	}
	return el, nil
}

// ReadSecretFile reads the one secret key of an ASCII-armored (.asc) or
// binary key file, as the service key that signs every message. The file
// must not be readable by group or others (mode 0600), the key must be
// stored without a passphrase, be usable now for signing and hold the secret
// part of its signing key (not a GnuPG stub for a key on a smart card).
func ReadSecretFile(path string) (*openpgp.Entity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pgp: chiave segreta: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pgp: chiave segreta: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("pgp: la chiave segreta %s non è un file regolare", path)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pgp: il file della chiave segreta %s ha permessi %04o ed è leggibile dal gruppo o da altri: eseguire chmod 600 %s",
			path, st.Mode().Perm(), path)
	}
	data, err := readAllLimited(f, path)
	if err != nil {
		return nil, err
	}
	e, err := parseSecret(data, config.Now())
	if err != nil {
		return nil, fmt.Errorf("pgp: %s: %w", path, err)
	}
	return e, nil
}

// parseSecret parses key data that must hold exactly one usable secret key.
func parseSecret(data []byte, now time.Time) (*openpgp.Entity, error) {
	el, err := parseKeys(data)
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("contiene %d chiavi, ne è attesa una sola segreta", len(el))
	}
	e := el[0]
	if e.PrivateKey == nil {
		return nil, fmt.Errorf("contiene la chiave pubblica %s, non una chiave segreta (esportarla con gpg --export-secret-keys --armor)", describe(e))
	}
	if err := checkSigning(e, now); err != nil {
		return nil, err
	}
	sk, _ := e.SigningKey(now)
	if sk.PrivateKey == nil || sk.PrivateKey.Dummy() {
		return nil, fmt.Errorf("la parte segreta della chiave di firma di %s non è nel file (uno stub di GnuPG: la chiave è su una smart card?)", describe(e))
	}
	locked := e.PrivateKey.Encrypted && !e.PrivateKey.Dummy()
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && s.PrivateKey.Encrypted && !s.PrivateKey.Dummy() {
			locked = true
		}
	}
	if locked {
		return nil, fmt.Errorf("la chiave segreta %s è protetta da una passphrase, che anprsec non può chiedere: "+
			"rimuoverla (gpg --pinentry-mode loopback --passwd %s, passphrase vuota), esportare di nuovo la chiave e tenere il file con permessi 0600",
			describe(e), Fingerprint(e))
	}
	return e, nil
}

// parseKeys parses ASCII-armored (detected by its BEGIN line) or binary key
// data and returns at least one key, or an error saying why not.
func parseKeys(data []byte) (el openpgp.EntityList, err error) {
	defer catch(&err, "")
	var r io.Reader = bytes.NewReader(data)
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		block, err := armor.Decode(r)
		if err != nil {
			return nil, malformed("non è una chiave OpenPGP (armatura ASCII non valida: %v)", err)
		}
		if block.Type != openpgp.PublicKeyType && block.Type != openpgp.PrivateKeyType {
			return nil, malformed("non è una chiave OpenPGP ma un blocco %q", block.Type)
		}
		r = block.Body
	} else if len(data) == 0 || data[0]&0x80 == 0 {
		return nil, malformed("non è una chiave OpenPGP (né dati OpenPGP ASCII-armored né binari)")
	}
	el, err = openpgp.ReadKeyRing(r)
	if err != nil {
		return nil, malformed("non è una chiave OpenPGP leggibile (%v)", err)
	}
	if len(el) == 0 {
		return nil, malformed("nessuna chiave OpenPGP trovata")
	}
	return el, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pgp: file di chiave: %w", err)
	}
	defer f.Close()
	return readAllLimited(f, path)
}

func readAllLimited(r io.Reader, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("pgp: file di chiave %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("pgp: il file di chiave %s supera %d byte: non è una chiave", path, maxKeyFile)
	}
	return data, nil
}

// checkPrimary reports why the primary key of e is not usable at now.
func checkPrimary(e *openpgp.Entity, now time.Time) error {
	sig, id := e.PrimarySelfSignature()
	switch {
	case sig == nil:
		return fmt.Errorf("la chiave %s non ha un'autofirma valida", describe(e))
	case e.Revoked(now):
		return fmt.Errorf("la chiave %s è revocata", describe(e))
	case id != nil && id.Revoked(now):
		return fmt.Errorf("lo user id della chiave %s è revocato", describe(e))
	case e.PrimaryKey.KeyExpired(sig, now):
		return fmt.Errorf("la chiave %s è scaduta il %s", describe(e), keyExpiry(e.PrimaryKey, sig))
	case sig.SigExpired(now):
		return fmt.Errorf("l'autofirma della chiave %s è scaduta il %s", describe(e), sigExpiry(sig))
	}
	return nil
}

// checkEncryption reports why e cannot be encrypted to at now.
func checkEncryption(e *openpgp.Entity, now time.Time) error {
	if err := checkPrimary(e, now); err != nil {
		return err
	}
	if _, ok := e.EncryptionKey(now); ok {
		return nil
	}
	// Say why: the encryption subkeys there are, are expired or revoked.
	var expired []string
	revoked := false
	for _, s := range e.Subkeys {
		if s.Sig == nil || !s.Sig.FlagsValid || !s.Sig.FlagEncryptCommunications {
			continue
		}
		switch {
		case s.Revoked(now):
			revoked = true
		case s.PublicKey.KeyExpired(s.Sig, now):
			expired = append(expired, keyExpiry(s.PublicKey, s.Sig))
		case s.Sig.SigExpired(now):
			expired = append(expired, sigExpiry(s.Sig))
		}
	}
	switch {
	case len(expired) > 0:
		sort.Strings(expired)
		return fmt.Errorf("la sottochiave di cifratura della chiave %s è scaduta il %s", describe(e), expired[len(expired)-1])
	case revoked:
		return fmt.Errorf("la sottochiave di cifratura della chiave %s è revocata", describe(e))
	}
	return fmt.Errorf("la chiave %s non ha una sottochiave di cifratura (o nessuna utilizzabile da anprsec)", describe(e))
}

// checkSigning reports why e cannot sign (or verify) at now.
func checkSigning(e *openpgp.Entity, now time.Time) error {
	if err := checkPrimary(e, now); err != nil {
		return err
	}
	if _, ok := e.SigningKey(now); !ok {
		return fmt.Errorf("la chiave %s non ha una chiave di firma utilizzabile", describe(e))
	}
	return nil
}

func keyExpiry(pk *packet.PublicKey, sig *packet.Signature) string {
	if sig.KeyLifetimeSecs == nil {
		return "?"
	}
	return pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second).UTC().Format("02/01/2006")
}

func sigExpiry(sig *packet.Signature) string {
	if sig.SigLifetimeSecs == nil {
		return "?"
	}
	return sig.CreationTime.Add(time.Duration(*sig.SigLifetimeSecs) * time.Second).UTC().Format("02/01/2006")
}

// KeyForEmail scans dir (the holders' keys, var/keys/holders/) for public key
// files named *.asc and returns the one key, usable now for encryption, with
// a user id whose e-mail address equals email case-insensitively; it returns
// a nil key when there is none (a missing dir counts as empty).
//
// Files that cannot be used (unreadable, not a key, a secret key, expired or
// revoked keys, keys without an encryption subkey) do not stop the scan: each
// becomes one entry of warnings, which the caller should log; a key of such a
// file is never returned even if its e-mail matches. When two or more usable
// keys match, KeyForEmail returns an error naming the files instead of
// guessing which one reaches the holder. err is otherwise only about the
// folder itself.
func KeyForEmail(dir, email string) (key openpgp.EntityList, warnings []error, err error) {
	if strings.TrimSpace(email) == "" {
		return nil, nil, errors.New("pgp: KeyForEmail: indirizzo e-mail vuoto")
	}
	k, warnings, err := OpenKeyDir(dir)
	if err != nil {
		return nil, warnings, err
	}
	key, err = k.ForEmail(email)
	return key, warnings, err
}

// ---------------------------------------------------------------- messages

// EncryptSign encrypts plaintext to every key of to, signs it with signer and
// returns an ASCII-armored "PGP MESSAGE". The cipher is AES-256 (unless a
// recipient's key does not list it among its preferences). A recipient that
// cannot be encrypted to (expired, revoked, no encryption subkey) makes it
// fail with an error naming that key; nothing is encrypted then.
func EncryptSign(plaintext []byte, to openpgp.EntityList, signer *openpgp.Entity) ([]byte, error) {
	if len(to) == 0 {
		return nil, errors.New("pgp: cifratura: nessun destinatario")
	}
	now := config.Now()
	for _, e := range to {
		if e == nil || e.PrimaryKey == nil {
			return nil, errors.New("pgp: cifratura: chiave del destinatario nil")
		}
		if err := checkEncryption(e, now); err != nil {
			return nil, fmt.Errorf("pgp: cifratura: destinatario: %w", err)
		}
	}
	if err := checkSigner(signer, now); err != nil {
		return nil, fmt.Errorf("pgp: cifratura: %w", err)
	}
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, "PGP MESSAGE", nil)
	if err != nil {
		return nil, fmt.Errorf("pgp: cifratura: %w", err)
	}
	w, err := openpgp.Encrypt(aw, to, signer, &openpgp.FileHints{IsBinary: true}, config)
	if err != nil {
		return nil, fmt.Errorf("pgp: cifratura per %s: %w", describeList(to), err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("pgp: cifratura: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("pgp: cifratura: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("pgp: cifratura: %w", err)
	}
	return buf.Bytes(), nil
}

// checkSigner reports why signer cannot sign messages now.
func checkSigner(signer *openpgp.Entity, now time.Time) error {
	if signer == nil || signer.PrimaryKey == nil {
		return errors.New("nessuna chiave di firma indicata (i messaggi sono sempre firmati)")
	}
	if signer.PrivateKey == nil {
		return fmt.Errorf("la chiave di firma %s è pubblica: per firmare serve la chiave segreta", describe(signer))
	}
	if err := checkSigning(signer, now); err != nil {
		return fmt.Errorf("chiave di firma: %w", err)
	}
	sk, _ := signer.SigningKey(now)
	if sk.PrivateKey == nil || sk.PrivateKey.Dummy() {
		return fmt.Errorf("chiave di firma %s: manca la parte segreta della sua chiave di firma", describe(signer))
	}
	if sk.PrivateKey.Encrypted {
		return fmt.Errorf("chiave di firma %s: la chiave segreta è protetta da una passphrase", describe(signer))
	}
	return nil
}

func describeList(el openpgp.EntityList) string {
	names := make([]string, len(el))
	for i, e := range el {
		names[i] = describe(e)
	}
	return strings.Join(names, ", ")
}

// Decrypt decrypts an ASCII-armored "PGP MESSAGE" with the secret keys of
// keys and checks its signature against the public keys of keys (the keyring
// holds both: the recipient's secret key and the expected signers' keys). It
// returns the plaintext and the signer only when the message was encrypted
// and carries a good signature of a key in keys; an unsigned message fails
// with ErrNotSigned, a bad signature with ErrBadSignature, a signature by a
// key not in keys with ErrUnknownSigner. Any key of keys counts as a signer
// (the recipient's own key too): compare the returned signer with the one
// expected, e.g. by Fingerprint.
func Decrypt(armored []byte, keys openpgp.EntityList) (plaintext []byte, signer *openpgp.Entity, err error) {
	defer catch(&err, "pgp: decifratura: ")
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return nil, nil, malformed("pgp: decifratura: nessun messaggio ASCII-armored (%v)", err)
	}
	if block.Type != "PGP MESSAGE" {
		return nil, nil, malformed("pgp: decifratura: un blocco %q, non un PGP MESSAGE", block.Type)
	}
	md, err := openpgp.ReadMessage(block.Body, keys, nil, config)
	if errors.Is(err, pgperrors.ErrKeyIncorrect) {
		return nil, nil, errors.New("pgp: decifratura: nessuna delle chiavi indicate decifra il messaggio (nessuna chiave segreta corrispondente, o è protetta)")
	}
	if err != nil {
		return nil, nil, malformed("pgp: decifratura: messaggio illeggibile (%v)", err)
	}
	if !md.IsEncrypted {
		return nil, nil, malformed("pgp: decifratura: il messaggio non è cifrato")
	}
	if !md.IsSigned {
		return nil, nil, fmt.Errorf("pgp: decifratura: %w", ErrNotSigned)
	}
	plaintext, err = io.ReadAll(md.UnverifiedBody)
	if err != nil {
		return nil, nil, malformed("pgp: decifratura: il messaggio è danneggiato o è stato alterato (%v)", err)
	}
	if md.SignedBy == nil {
		return nil, nil, fmt.Errorf("pgp: decifratura: %w (key ID %016X)", ErrUnknownSigner, md.SignedByKeyId)
	}
	if md.SignatureError != nil || md.Signature == nil {
		return nil, nil, fmt.Errorf("pgp: decifratura: %w di %s (%v)", ErrBadSignature, describe(md.SignedBy.Entity), md.SignatureError)
	}
	return plaintext, md.SignedBy.Entity, nil
}

// VerifyDetached verifies sig, a detached signature of data, ASCII-armored
// ("PGP SIGNATURE") or binary (detected), against the keys of keyring, and
// returns the key that made it. The errors wrap ErrBadSignature (data or
// signature changed, signing key expired or revoked), ErrUnknownSigner (the
// key is not in keyring, named by its key ID) or ErrMalformed (sig is not an
// OpenPGP signature). Any key of keyring counts: pass only the keys allowed
// to sign this data (one prefettura's key for its manifests).
func VerifyDetached(keyring openpgp.EntityList, data []byte, sig []byte) (signer *openpgp.Entity, err error) {
	defer catch(&err, "pgp: verifica: ")
	if len(keyring) == 0 {
		return nil, errors.New("pgp: verifica: nessuna chiave con cui verificare la firma")
	}
	raw, err := unarmorSignature(sig)
	if err != nil {
		return nil, err
	}
	// Read the signature packet first, to name its issuer in errors.
	p, err := packet.NewReader(bytes.NewReader(raw)).Next()
	if err != nil {
		return nil, malformed("pgp: verifica: firma illeggibile (%v)", err)
	}
	sp, ok := p.(*packet.Signature)
	if !ok {
		return nil, malformed("pgp: verifica: non è una firma ma un pacchetto %s", strings.TrimPrefix(fmt.Sprintf("%T", p), "*packet."))
	}
	if sp.SigType != packet.SigTypeBinary && sp.SigType != packet.SigTypeText {
		return nil, malformed("pgp: verifica: una firma di tipo %#x, non una firma di documento", uint8(sp.SigType))
	}
	issuer := "no issuer"
	if len(sp.IssuerFingerprint) > 0 {
		issuer = "fingerprint " + strings.ToUpper(hex.EncodeToString(sp.IssuerFingerprint))
	} else if sp.IssuerKeyId != nil {
		issuer = fmt.Sprintf("key ID %016X", *sp.IssuerKeyId)
	}
	signer, err = openpgp.CheckDetachedSignature(keyring, bytes.NewReader(data), bytes.NewReader(raw), config)
	switch {
	case err == nil && signer != nil:
		return signer, nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return nil, fmt.Errorf("pgp: verifica: %w (%s)", ErrUnknownSigner, issuer)
	case signer != nil:
		// The signature matches but the key or the signature is not valid now.
		return nil, fmt.Errorf("pgp: verifica: %w di %s: %v", ErrBadSignature, describe(signer), err)
	}
	var se pgperrors.StructuralError
	var ue pgperrors.UnsupportedError
	if errors.As(err, &se) || errors.As(err, &ue) {
		return nil, malformed("pgp: verifica: firma illeggibile (%v)", err)
	}
	return nil, fmt.Errorf("pgp: verifica: %w (%s): %v", ErrBadSignature, issuer, err)
}

// unarmorSignature returns the binary packets of a detached signature,
// ASCII-armored ("PGP SIGNATURE", detected by its BEGIN line) or binary.
func unarmorSignature(sig []byte) ([]byte, error) {
	raw := sig
	if bytes.Contains(sig, []byte("-----BEGIN PGP")) {
		block, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return nil, malformed("pgp: verifica: armatura ASCII non valida (%v)", err)
		}
		if block.Type != openpgp.SignatureType {
			return nil, malformed("pgp: verifica: un blocco %q, non una PGP SIGNATURE", block.Type)
		}
		if raw, err = io.ReadAll(io.LimitReader(block.Body, maxKeyFile)); err != nil {
			return nil, malformed("pgp: verifica: armatura ASCII non valida (%v)", err)
		}
	}
	if len(raw) == 0 || raw[0]&0x80 == 0 {
		return nil, malformed("pgp: verifica: non è una firma OpenPGP (né dati OpenPGP ASCII-armored né binari)")
	}
	return raw, nil
}

// VerifyDetachedBinary is VerifyDetached for a signature of the exact
// bytes of data: every signature packet of sig must be of type binary
// (0x00). A text-mode signature (type 0x01, what gpg --textmode
// --detach-sign makes) is refused with ErrTextSignature whether it
// verifies or not: it is computed over the text with its line ends made
// CRLF, so it still verifies after the line ends of data change.
func VerifyDetachedBinary(keyring openpgp.EntityList, data []byte, sig []byte) (signer *openpgp.Entity, err error) {
	if err := checkBinarySignature(sig); err != nil {
		return nil, err
	}
	return VerifyDetached(keyring, data, sig)
}

// checkBinarySignature reads every packet of the detached signature sig
// and refuses a text-mode signature among them with ErrTextSignature;
// what is not a signature is left to VerifyDetached to describe.
func checkBinarySignature(sig []byte) (err error) {
	defer catch(&err, "pgp: verifica: ")
	raw, err := unarmorSignature(sig)
	if err != nil {
		return nil
	}
	r := packet.NewReader(bytes.NewReader(raw))
	for {
		p, err := r.Next()
		if err != nil {
			return nil // io.EOF, or unreadable: VerifyDetached says which
		}
		if sp, ok := p.(*packet.Signature); ok && sp.SigType == packet.SigTypeText {
			return fmt.Errorf("pgp: verifica: %w (tipo 0x%02x): è richiesta una firma dei byte esatti (tipo 0x00)", ErrTextSignature, uint8(sp.SigType))
		}
	}
}

// SignDetached returns an ASCII-armored detached signature of data by
// signer, of type binary (0x00): it verifies against the exact bytes of
// data only. The signer must be usable now, as for EncryptSign.
func SignDetached(data []byte, signer *openpgp.Entity) ([]byte, error) {
	if err := checkSigner(signer, config.Now()); err != nil {
		return nil, fmt.Errorf("pgp: firma: %w", err)
	}
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, signer, bytes.NewReader(data), config); err != nil {
		return nil, fmt.Errorf("pgp: firma con %s: %w", describe(signer), err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ---------------------------------------------------------------- generation

// Generate makes a development key pair for name <email> that never
// expires: a v4 Ed25519 primary key (sign, certify) with a Curve25519
// encryption subkey, without passphrase, as GnuPG 2.2 reads it. It returns
// the ASCII-armored public key and secret key; the caller writes the secret
// one with mode 0600. It takes well under a millisecond.
func Generate(name, email string) (pubArmored, secArmored []byte, err error) {
	return generate(name, email, config.Now(), 0)
}

// GenerateExpiring is Generate with keys that expire validFor after now
// (rounded down to the second; at least one second).
func GenerateExpiring(name, email string, validFor time.Duration) (pubArmored, secArmored []byte, err error) {
	if validFor < time.Second {
		return nil, nil, fmt.Errorf("pgp: generate: validity %v is shorter than a second", validFor)
	}
	return generate(name, email, config.Now(), validFor)
}

func generate(name, email string, created time.Time, validFor time.Duration) (pub, sec []byte, err error) {
	if strings.TrimSpace(email) == "" {
		return nil, nil, errors.New("pgp: generate: empty e-mail address")
	}
	secs := validFor / time.Second
	if secs > 1<<32-1 {
		return nil, nil, fmt.Errorf("pgp: generate: validity %v too long", validFor)
	}
	cfg := *config
	cfg.Time = func() time.Time { return created }
	cfg.KeyLifetimeSecs = uint32(secs)
	e, err := openpgp.NewEntity(name, "", email, &cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("pgp: generate a key for %s <%s>: %w", name, email, err)
	}
	if pub, err = armorKey(openpgp.PublicKeyType, e.Serialize); err != nil {
		return nil, nil, err
	}
	sec, err = armorKey(openpgp.PrivateKeyType, func(w io.Writer) error {
		// The self-signatures are fresh: do not re-sign (with the current time).
		return e.SerializePrivateWithoutSigning(w, &cfg)
	})
	if err != nil {
		return nil, nil, err
	}
	return pub, sec, nil
}

func armorKey(blockType string, serialize func(io.Writer) error) ([]byte, error) {
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, blockType, nil)
	if err != nil {
		return nil, fmt.Errorf("pgp: generate: %w", err)
	}
	if err := serialize(aw); err != nil {
		return nil, fmt.Errorf("pgp: generate: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("pgp: generate: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
