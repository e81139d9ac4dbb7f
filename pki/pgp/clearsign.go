package pgp

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// ClearSign signs text with signer as an OpenPGP cleartext-signed message
// ("BEGIN PGP SIGNED MESSAGE"): the text stays readable as it is, and
// `gpg --verify` checks it. The signer must be usable now, as for
// EncryptSign.
func ClearSign(text []byte, signer *openpgp.Entity) ([]byte, error) {
	now := config.Now()
	if err := checkSigner(signer, now); err != nil {
		return nil, fmt.Errorf("pgp: firma in chiaro: %w", err)
	}
	sk, _ := signer.SigningKey(now)
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, sk.PrivateKey, config)
	if err != nil {
		return nil, fmt.Errorf("pgp: firma in chiaro con %s: %w", describe(signer), err)
	}
	if _, err := w.Write(text); err != nil {
		return nil, fmt.Errorf("pgp: firma in chiaro: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("pgp: firma in chiaro con %s: %w", describe(signer), err)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// VerifyClearSigned checks the first cleartext-signed message of data
// against the keys of keyring and returns its signed text (lines ending in
// "\n", without the dash escapes, the trailing blanks of each line and the
// line break before the signature, which are not signed) and the key that
// signed it. Whatever data holds before or
// after the message is not signed and is not returned. The errors wrap
// ErrBadSignature, ErrUnknownSigner or ErrMalformed, as VerifyDetached's.
func VerifyClearSigned(keyring openpgp.EntityList, data []byte) (text []byte, signer *openpgp.Entity, err error) {
	defer catch(&err, "pgp: verifica: ")
	if len(keyring) == 0 {
		return nil, nil, errors.New("pgp: verifica: nessuna chiave con cui verificare la firma")
	}
	b, _ := clearsign.Decode(data)
	if b == nil || b.ArmoredSignature == nil {
		return nil, nil, malformed("pgp: verifica: nessun messaggio firmato in chiaro (BEGIN PGP SIGNED MESSAGE ... END PGP SIGNATURE)")
	}
	if b.ArmoredSignature.Type != openpgp.SignatureType {
		return nil, nil, malformed("pgp: verifica: un blocco %q, non una PGP SIGNATURE", b.ArmoredSignature.Type)
	}
	sig, err := io.ReadAll(io.LimitReader(b.ArmoredSignature.Body, maxKeyFile))
	if err != nil {
		return nil, nil, malformed("pgp: verifica: armatura ASCII non valida (%v)", err)
	}
	signer, err = VerifyDetached(keyring, b.Bytes, sig)
	if err != nil {
		return nil, nil, err
	}
	return b.Plaintext, signer, nil
}
