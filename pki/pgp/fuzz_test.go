package pgp

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// The seeds are small (one-letter user ids, a two-line manifest): the
// fuzzer's minimizer is quadratic in the input size.

// FuzzVerifyDetached feeds arbitrary data and signatures to VerifyDetached.
// It must never panic, must fail with one of its sentinel errors, and must
// accept a signature only over the data that was really signed.
func FuzzVerifyDetached(f *testing.F) {
	p := newPair(f, "p", "p@x")
	data := []byte("058091;SC1;RSSMRA68A01H501Y\n")
	var bin, arm bytes.Buffer
	if err := openpgp.DetachSign(&bin, p.sec, bytes.NewReader(data), nil); err != nil {
		f.Fatal(err)
	}
	if err := openpgp.ArmoredDetachSign(&arm, p.sec, bytes.NewReader(data), nil); err != nil {
		f.Fatal(err)
	}
	var text bytes.Buffer
	if err := openpgp.DetachSignText(&text, p.sec, bytes.NewReader(data), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(data, bin.Bytes())
	f.Add(data, arm.Bytes())
	f.Add(data, text.Bytes())
	f.Add([]byte("x"), []byte("-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"))
	f.Add([]byte{}, []byte{0x88, 0x00})
	f.Add([]byte{}, []byte{})

	keyring := p.pub
	f.Fuzz(func(t *testing.T, d, sig []byte) {
		signer, err := VerifyDetached(keyring, d, sig)
		if err != nil {
			if signer != nil {
				t.Fatal("signer returned with an error")
			}
			if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownSigner) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error matches no sentinel: %v", err)
			}
			return
		}
		if Fingerprint(signer) != Fingerprint(p.sec) {
			t.Fatalf("signer %s", Fingerprint(signer))
		}
		// A text signature also accepts other line endings of the same text.
		if !bytes.Equal(d, data) && !bytes.Equal(bytes.ReplaceAll(d, []byte("\r\n"), []byte("\n")), data) {
			t.Fatalf("signature accepted over other data %q", d)
		}
	})
}

// FuzzReadKey feeds arbitrary bytes to the key file parsers (public key for
// encryption, public key for verification, secret key). They must never
// panic and must only return keys of the kind asked for.
func FuzzReadKey(f *testing.F) {
	p := newPair(f, "k", "k@x")
	var bin bytes.Buffer
	if err := p.pub[0].Serialize(&bin); err != nil {
		f.Fatal(err)
	}
	f.Add(bin.Bytes())
	f.Add(p.pubArmored)
	f.Add(p.secArmored)
	f.Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Add([]byte{0x99, 0x00, 0x01})
	f.Add([]byte("junk"))

	f.Fuzz(func(t *testing.T, data []byte) {
		now := time.Now()
		for _, check := range []func(*openpgp.Entity, time.Time) error{checkEncryption, checkSigning} {
			el, err := parsePublic(data, check, now)
			if err != nil {
				if el != nil {
					t.Fatal("keys returned with an error")
				}
				continue
			}
			if len(el) == 0 {
				t.Fatal("no keys and no error")
			}
			for _, e := range el {
				if e.PrivateKey != nil {
					t.Fatal("secret key accepted as public")
				}
				if check(e, now) != nil {
					t.Fatal("unusable key accepted")
				}
			}
		}
		e, err := parseSecret(data, now)
		if err != nil {
			if e != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		if e.PrivateKey == nil || e.PrivateKey.Encrypted {
			t.Fatal("public or locked key accepted as secret")
		}
	})
}

// FuzzDecrypt feeds arbitrary armored messages to Decrypt. It must never
// panic and must return only the plaintext really signed by the signer.
func FuzzDecrypt(f *testing.F) {
	service := newPair(f, "s", "s@x")
	producer := newPair(f, "p", "p@x")
	plain := []byte("SC1;1234\n")
	msg, err := EncryptSign(plain, producer.pub, service.sec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg)
	f.Add([]byte("-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----\n"))
	f.Add([]byte("junk"))

	keys := append(openpgp.EntityList{producer.sec}, service.pub...)
	f.Fuzz(func(t *testing.T, m []byte) {
		got, signer, err := Decrypt(m, keys)
		if err != nil {
			if got != nil || signer != nil {
				t.Fatal("data returned with an error")
			}
			return
		}
		if Fingerprint(signer) != Fingerprint(service.sec) || !bytes.Equal(got, plain) {
			t.Fatalf("accepted %q signed by %s", got, Fingerprint(signer))
		}
	})
}
