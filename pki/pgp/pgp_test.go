package pgp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestGenerate(t *testing.T) {
	p := newPair(t, "Servizio ANPR", "servizio@anpr.example")
	e := p.sec
	if got := PrimaryEmail(e); got != "servizio@anpr.example" {
		t.Errorf("PrimaryEmail = %q", got)
	}
	if fpr := Fingerprint(e); !regexp.MustCompile(`^[0-9A-F]{40}$`).MatchString(fpr) {
		t.Errorf("Fingerprint = %q, want 40 uppercase hex digits", fpr)
	}
	if Fingerprint(e) != Fingerprint(p.pub[0]) {
		t.Error("public and secret keys differ")
	}
	if e.PrimaryKey.Version != 4 || e.PrimaryKey.PubKeyAlgo != packet.PubKeyAlgoEdDSA {
		t.Errorf("primary key v%d algo %d, want v4 EdDSA (22)", e.PrimaryKey.Version, e.PrimaryKey.PubKeyAlgo)
	}
	if len(e.Subkeys) != 1 || e.Subkeys[0].PublicKey.PubKeyAlgo != packet.PubKeyAlgoECDH {
		t.Fatalf("want one ECDH subkey, got %d subkeys", len(e.Subkeys))
	}
	if c, _ := e.Subkeys[0].PublicKey.Curve(); c != packet.Curve25519 {
		t.Errorf("subkey curve %s, want Curve25519", c)
	}
	sig, _ := e.PrimarySelfSignature()
	if sig.KeyLifetimeSecs != nil && *sig.KeyLifetimeSecs != 0 {
		t.Errorf("key expires after %d s, want never", *sig.KeyLifetimeSecs)
	}
	if e.PrivateKey.Encrypted {
		t.Error("secret key is passphrase-protected")
	}
	if p.sec.PrivateKey == nil || p.pub[0].PrivateKey != nil {
		t.Error("secret/public armored output mixed up")
	}
	if !bytes.HasPrefix(p.pubArmored, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) ||
		!bytes.HasPrefix(p.secArmored, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
		t.Error("armor headers wrong")
	}

	// Expiring keys.
	pub, _, err := GenerateExpiring("Tmp", "tmp@example.org", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	el, _ := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
	sig, _ = el[0].PrimarySelfSignature()
	if sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs != 48*3600 {
		t.Errorf("KeyLifetimeSecs = %v, want 172800", sig.KeyLifetimeSecs)
	}
	if _, ok := el[0].EncryptionKey(time.Now().Add(72 * time.Hour)); ok {
		t.Error("key still usable after its expiry")
	}

	for _, bad := range []struct{ name, email string }{{"X", ""}, {"X", "a<b>@example.org"}, {"a(b)", "x@example.org"}} {
		if _, _, err := Generate(bad.name, bad.email); err == nil {
			t.Errorf("Generate(%q, %q) succeeded", bad.name, bad.email)
		}
	}
	if _, _, err := GenerateExpiring("X", "x@example.org", time.Millisecond); err == nil {
		t.Error("GenerateExpiring with 1 ms succeeded")
	}
}

func TestRoundTrip(t *testing.T) {
	service := newPair(t, "Servizio", "servizio@anpr.example")
	producer := newPair(t, "Produttore", "ordini@produttore.example")
	gateway := newPair(t, "Gateway", "gateway@anpr.example")
	other := newPair(t, "Altro", "altro@example.org")

	for _, size := range []int{0, 1, 1000, 200_000} {
		plain := bytes.Repeat([]byte("Seriale;Codice Fiscale;PIN (prima metà)\n"), size/40+1)[:size]
		msg, err := EncryptSign(plain, append(append(openpgp.EntityList{}, producer.pub...), gateway.pub...), service.sec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(msg, []byte("-----BEGIN PGP MESSAGE-----")) || !bytes.HasSuffix(bytes.TrimSpace(msg), []byte("-----END PGP MESSAGE-----")) {
			t.Fatalf("not an armored PGP MESSAGE:\n%.200s", msg)
		}
		if size > 100 && bytes.Contains(msg, plain[:40]) {
			t.Fatal("plaintext visible in the message")
		}
		// Both recipients can read it, and see the service as signer.
		for _, rcpt := range []pair{producer, gateway} {
			got, signer, err := Decrypt(msg, append(openpgp.EntityList{rcpt.sec}, service.pub...))
			if err != nil {
				t.Fatalf("size %d, %s: %v", size, PrimaryEmail(rcpt.sec), err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("size %d: plaintext differs", size)
			}
			if Fingerprint(signer) != Fingerprint(service.sec) {
				t.Fatalf("signer %s, want the service", Fingerprint(signer))
			}
			if c := sessionCipher(t, msg, rcpt.sec); c != packet.CipherAES256 {
				t.Fatalf("cipher %d, want AES-256 (%d)", c, packet.CipherAES256)
			}
		}
		// A third key cannot.
		if _, _, err := Decrypt(msg, append(openpgp.EntityList{other.sec}, service.pub...)); err == nil {
			t.Fatal("a key the message is not encrypted to decrypted it")
		}
	}
}

func TestDecryptRefuses(t *testing.T) {
	service := newPair(t, "Servizio", "servizio@anpr.example")
	producer := newPair(t, "Produttore", "ordini@produttore.example")
	intruder := newPair(t, "Intruso", "intruso@example.org")
	plain := []byte("ordine\n")

	// raw encrypts with go-crypto directly, signed or not.
	raw := func(signer *openpgp.Entity) []byte {
		var buf bytes.Buffer
		aw, _ := armor.Encode(&buf, "PGP MESSAGE", nil)
		w, err := openpgp.Encrypt(aw, producer.pub, signer, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		w.Close()
		aw.Close()
		return buf.Bytes()
	}
	good, err := EncryptSign(plain, producer.pub, service.sec)
	if err != nil {
		t.Fatal(err)
	}
	tampered := tamperMessage(t, good, 30)
	// signedOnly is a signed but not encrypted message.
	var signedOnly bytes.Buffer
	aw, _ := armor.Encode(&signedOnly, "PGP MESSAGE", nil)
	w, _ := openpgp.Sign(aw, service.sec, nil, nil)
	w.Write(plain)
	w.Close()
	aw.Close()

	keys := append(openpgp.EntityList{producer.sec}, service.pub...)
	tests := []struct {
		name string
		msg  []byte
		keys openpgp.EntityList
		want error  // errors.Is, or nil for "any error"
		msgs string // substring of the message
	}{
		{"unsigned", raw(nil), keys, ErrNotSigned, "non è firmato"},
		{"signed by an unknown key", raw(intruder.sec), keys, ErrUnknownSigner, "sconosciuta"},
		{"signer key missing from keyring", good, openpgp.EntityList{producer.sec}, ErrUnknownSigner, "key ID"},
		{"tampered", tampered, keys, nil, ""},
		{"not encrypted", signedOnly.Bytes(), keys, ErrMalformed, "non è cifrato"},
		{"no secret key", good, append(openpgp.EntityList{intruder.sec}, service.pub...), nil, "decifra il messaggio"},
		{"garbage", []byte("hello"), keys, ErrMalformed, ""},
		{"public key block", producer.pubArmored, keys, ErrMalformed, "PUBLIC KEY"},
		{"empty", nil, keys, ErrMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, signer, err := Decrypt(tt.msg, tt.keys)
			if err == nil {
				t.Fatalf("accepted: %q signed by %s", got, Fingerprint(signer))
			}
			if got != nil || signer != nil {
				t.Error("returned data with an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msgs) {
				t.Errorf("error %q does not say %q", err, tt.msgs)
			}
		})
	}
	// And the good one passes with the same keys (the table is not vacuous).
	if _, _, err := Decrypt(good, keys); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptSignRefuses(t *testing.T) {
	service := newPair(t, "Servizio", "servizio@anpr.example")
	producer := newPair(t, "Produttore", "ordini@produttore.example")
	expired := expiredPair(t, "Scaduto", "scaduto@example.org")
	noEnc := newPair(t, "Solo firma", "firma@example.org")
	noEnc.pub[0].Subkeys = nil
	revoked := newPair(t, "Revocato", "revocato@example.org")
	if err := revoked.sec.RevokeKey(packet.KeyCompromised, "lost", nil); err != nil {
		t.Fatal(err)
	}
	locked := parsePair(t, service.pubArmored, service.secArmored).sec
	if err := locked.EncryptPrivateKeys([]byte("pw"), nil); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		to     openpgp.EntityList
		signer *openpgp.Entity
		want   []string // substrings of the error
	}{
		{"expired recipient", append(openpgp.EntityList{producer.pub[0]}, expired.pub...), service.sec,
			[]string{"Scaduto", Fingerprint(expired.sec), "scaduta"}},
		{"recipient without encryption subkey", noEnc.pub, service.sec,
			[]string{"firma@example.org", Fingerprint(noEnc.sec), "non ha una sottochiave di cifratura"}},
		{"revoked recipient", openpgp.EntityList{revoked.sec}, service.sec, []string{"Revocato", "revocata"}},
		{"no recipients", nil, service.sec, []string{"nessun destinatario"}},
		{"nil recipient", openpgp.EntityList{nil}, service.sec, []string{"chiave del destinatario nil"}},
		{"no signer", producer.pub, nil, []string{"nessuna chiave di firma"}},
		{"public signer", producer.pub, service.pub[0], []string{"è pubblica", Fingerprint(service.sec)}},
		{"expired signer", producer.pub, expired.sec, []string{"scaduta", "Scaduto"}},
		{"locked signer", producer.pub, locked, []string{"passphrase"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := EncryptSign([]byte("x"), tt.to, tt.signer)
			if err == nil {
				t.Fatalf("encrypted:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	service := newPair(t, "Servizio", "servizio@anpr.example")
	expired := expiredPair(t, "Scaduto", "scaduto@example.org")
	other := newPair(t, "Altro", "altro@example.org")
	locked := parsePair(t, service.pubArmored, service.secArmored).sec
	if err := locked.EncryptPrivateKeys([]byte("pw"), nil); err != nil {
		t.Fatal(err)
	}
	var binary bytes.Buffer
	if err := service.sec.SerializePrivateWithoutSigning(&binary, nil); err != nil {
		t.Fatal(err)
	}

	good := writeFile(t, dir, "service.sec.asc", service.secArmored, 0o600)
	e, err := ReadSecretFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(e) != Fingerprint(service.sec) || e.PrivateKey == nil {
		t.Fatal("wrong key read")
	}
	if e, err := ReadSecretFile(writeFile(t, dir, "bin.gpg", binary.Bytes(), 0o400)); err != nil || e.PrivateKey == nil {
		t.Fatalf("binary secret key: %v", err)
	}

	tests := []struct {
		name string
		data []byte
		perm os.FileMode
		want []string
	}{
		{"group readable", service.secArmored, 0o640, []string{"chmod 600", "0640"}},
		{"world readable", service.secArmored, 0o604, []string{"chmod 600"}},
		{"garbage", []byte("not a key at all\n"), 0o600, []string{"non è una chiave OpenPGP"}},
		{"truncated armor", service.secArmored[:200], 0o600, []string{"non"}},
		{"empty", nil, 0o600, []string{"non è una chiave OpenPGP"}},
		{"public key", service.pubArmored, 0o600, []string{"chiave pubblica", "non una chiave segreta", Fingerprint(service.sec)}},
		{"passphrase", armoredSecret(t, locked), 0o600, []string{"passphrase", "Servizio"}},
		{"expired", expired.secArmored, 0o600, []string{"scaduta"}},
		{"two keys", append(append([]byte{}, binary.Bytes()...), mustBinarySecret(t, other.sec)...), 0o600, []string{"2 chiavi"}},
		{"a message", mustMessage(t, service), 0o600, []string{"PGP MESSAGE"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, strings.Repeat("k", i+1)+".asc", tt.data, tt.perm)
			e, err := ReadSecretFile(path)
			if err == nil {
				t.Fatalf("accepted key %s", Fingerprint(e))
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing.asc")); err == nil || !strings.Contains(err.Error(), "missing.asc") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadSecretFile(dir); err == nil {
		t.Error("a directory was accepted")
	}
}

func mustBinarySecret(t *testing.T, e *openpgp.Entity) []byte {
	var buf bytes.Buffer
	if err := e.SerializePrivateWithoutSigning(&buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustMessage(t *testing.T, p pair) []byte {
	msg, err := EncryptSign([]byte("x"), p.pub, p.sec)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestReadPublicFile(t *testing.T) {
	dir := t.TempDir()
	producer := newPair(t, "Produttore", "ordini@produttore.example")
	gateway := newPair(t, "Gateway", "gateway@anpr.example")
	expired := expiredPair(t, "Scaduto", "scaduto@example.org")
	signOnly := newPair(t, "Solo firma", "firma@example.org")
	signOnly.pub[0].Subkeys = nil
	revoked := newPair(t, "Revocato", "revocato@example.org")
	if err := revoked.sec.RevokeKey(packet.KeyRetired, "", nil); err != nil {
		t.Fatal(err)
	}

	// A file may hold several keys (binary concatenation), and public files
	// need no particular mode.
	var two bytes.Buffer
	producer.pub[0].Serialize(&two)
	gateway.pub[0].Serialize(&two)
	el, err := ReadPublicFile(writeFile(t, dir, "two.gpg", two.Bytes(), 0o644))
	if err != nil || len(el) != 2 {
		t.Fatalf("two keys: %d, %v", len(el), err)
	}
	el, err = ReadPublicFile(writeFile(t, dir, "producer.pub.asc", producer.pubArmored, 0o644))
	if err != nil || len(el) != 1 || Fingerprint(el[0]) != Fingerprint(producer.sec) || el[0].PrivateKey != nil {
		t.Fatalf("producer key: %v", err)
	}
	// A signing-only key is fine to verify with, not to encrypt to.
	signOnlyPath := writeFile(t, dir, "signonly.asc", armoredPublic(t, signOnly.pub[0]), 0o644)
	if _, err := ReadVerifierFile(signOnlyPath); err != nil {
		t.Fatalf("ReadVerifierFile(sign-only key): %v", err)
	}

	tests := []struct {
		name     string
		data     []byte
		verifier bool // ReadVerifierFile rather than ReadPublicFile
		want     []string
	}{
		{"garbage", []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n-----END PGP PUBLIC KEY BLOCK-----\n"), false, []string{"non"}},
		{"text", []byte("hello world"), false, []string{"non è una chiave OpenPGP"}},
		{"secret key", producer.secArmored, false, []string{"chiave segreta", "solo la chiave pubblica"}},
		{"secret key to verify", producer.secArmored, true, []string{"chiave segreta"}},
		{"expired", expired.pubArmored, false, []string{"scaduta il", "Scaduto"}},
		{"expired to verify", expired.pubArmored, true, []string{"scaduta il"}},
		{"no encryption subkey", armoredPublic(t, signOnly.pub[0]), false, []string{"non ha una sottochiave di cifratura", Fingerprint(signOnly.sec)}},
		{"revoked", armoredPublic(t, revoked.sec), false, []string{"revocata"}},
		{"signature block", []byte("-----BEGIN PGP SIGNATURE-----\n\niQ==\n-----END PGP SIGNATURE-----\n"), true, []string{"PGP SIGNATURE"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, strings.Repeat("p", i+1)+".asc", tt.data, 0o644)
			read := ReadPublicFile
			if tt.verifier {
				read = ReadVerifierFile
			}
			el, err := read(path)
			if err == nil {
				t.Fatalf("accepted %d keys", len(el))
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	big := writeFile(t, dir, "big.asc", bytes.Repeat([]byte{0x99}, maxKeyFile+1), 0o644)
	if _, err := ReadPublicFile(big); err == nil || !strings.Contains(err.Error(), "supera") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestVerifyDetached(t *testing.T) {
	pref := newPair(t, "Prefettura di Roma", "prefettura.roma@example.it")
	other := newPair(t, "Altro", "altro@example.org")
	expired := expiredPair(t, "Scaduto", "scaduto@example.org")
	data := []byte("Codice ISTAT;Seriale;Codice Fiscale\n058091;SC0001;RSSMRA68A01H501Y\n")

	sign := func(e *openpgp.Entity, armored bool, cfg *packet.Config) []byte {
		var buf bytes.Buffer
		var err error
		if armored {
			err = openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), cfg)
		} else {
			err = openpgp.DetachSign(&buf, e, bytes.NewReader(data), cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	armoredSig := sign(pref.sec, true, nil)
	binarySig := sign(pref.sec, false, nil)
	// A signature made in the past, while the expired key was valid.
	pastCfg := &packet.Config{Time: func() time.Time { return time.Now().Add(-36 * time.Hour) }}
	expiredSig := sign(expired.sec, false, pastCfg)
	keyring := append(append(openpgp.EntityList{}, pref.pub...), expired.pub...)

	for name, sig := range map[string][]byte{"armored": armoredSig, "binary": binarySig,
		"armored with leading text": append([]byte("firma:\r\n"), armoredSig...)} {
		signer, err := VerifyDetached(keyring, data, sig)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if Fingerprint(signer) != Fingerprint(pref.sec) {
			t.Fatalf("%s: signer %s", name, Fingerprint(signer))
		}
	}

	tampered := append([]byte{}, data...)
	tampered[len(tampered)-2] ^= 0x01
	badSigBytes := append([]byte{}, binarySig...)
	badSigBytes[len(badSigBytes)-5] ^= 0x40 // inside the EdDSA S value
	tests := []struct {
		name    string
		keyring openpgp.EntityList
		data    []byte
		sig     []byte
		want    error
		msg     string
	}{
		{"tampered data armored", keyring, tampered, armoredSig, ErrBadSignature, ""},
		{"tampered data binary", keyring, tampered, binarySig, ErrBadSignature, ""},
		{"extra byte", keyring, append(append([]byte{}, data...), '\n'), binarySig, ErrBadSignature, ""},
		{"tampered signature", keyring, data, badSigBytes, ErrBadSignature, ""},
		{"unknown key", other.pub, data, binarySig, ErrUnknownSigner, Fingerprint(pref.sec)},
		{"expired signing key", keyring, data, expiredSig, ErrBadSignature, "Scaduto"},
		{"garbage", keyring, data, []byte("this is not a signature"), ErrMalformed, ""},
		{"binary garbage", keyring, data, []byte{0xff, 0x00, 0x01, 0x02}, ErrMalformed, ""},
		{"empty", keyring, data, nil, ErrMalformed, ""},
		{"bad armor", keyring, data, []byte("-----BEGIN PGP SIGNATURE-----\n\n!!!!\n-----END PGP SIGNATURE-----\n"), ErrMalformed, ""},
		{"a key instead", keyring, data, pref.pubArmored, ErrMalformed, "PUBLIC KEY"},
		{"a binary key instead", keyring, data, mustBinarySecret(t, pref.sec), ErrMalformed, "non è una firma"},
		{"a message instead", keyring, data, mustMessage(t, pref), ErrMalformed, "MESSAGE"},
		{"truncated", keyring, data, binarySig[:len(binarySig)/2], ErrMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer, err := VerifyDetached(tt.keyring, tt.data, tt.sig)
			if err == nil {
				t.Fatalf("accepted, signer %s", Fingerprint(signer))
			}
			if signer != nil {
				t.Error("signer returned with an error")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
	if _, err := VerifyDetached(nil, data, binarySig); err == nil {
		t.Error("empty keyring accepted")
	}
}

// TestTextModeSignatureIsRefusedWhereBytesAreSigned: VerifyDetachedBinary
// takes a signature of the exact bytes (type 0x00), armored or binary, and
// refuses a text-mode one (type 0x01) with ErrTextSignature although it
// verifies, and still after the line ends change, which is why it is
// refused; a text-mode packet behind a binary one of another key is found
// too.
func TestTextModeSignatureIsRefusedWhereBytesAreSigned(t *testing.T) {
	pref := newPair(t, "Prefettura di Roma", "prefettura.roma@example.it")
	other := newPair(t, "Altro", "altro@example.org")
	data := []byte("Codice ISTAT;Seriale\n058091;SC0001\n")
	crlf := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	sign := func(e *openpgp.Entity, armored, text bool) []byte {
		var buf bytes.Buffer
		var err error
		switch {
		case armored && text:
			err = openpgp.ArmoredDetachSignText(&buf, e, bytes.NewReader(data), nil)
		case armored:
			err = openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), nil)
		case text:
			err = openpgp.DetachSignText(&buf, e, bytes.NewReader(data), nil)
		default:
			err = openpgp.DetachSign(&buf, e, bytes.NewReader(data), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for name, sig := range map[string][]byte{"armored": sign(pref.sec, true, false), "binary": sign(pref.sec, false, false)} {
		if signer, err := VerifyDetachedBinary(pref.pub, data, sig); err != nil || Fingerprint(signer) != Fingerprint(pref.sec) {
			t.Errorf("%s binary-type signature: %v", name, err)
		}
		if _, err := VerifyDetachedBinary(pref.pub, crlf, sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s binary-type signature of LF text verifies the CRLF text: %v", name, err)
		}
	}
	textSig := sign(pref.sec, false, true)
	if _, err := VerifyDetached(pref.pub, crlf, textSig); err != nil {
		t.Fatalf("the text-mode signature does not verify after CRLF (the reason to refuse it no longer holds): %v", err)
	}
	for name, sig := range map[string][]byte{
		"armored text":          sign(pref.sec, true, true),
		"binary text":           textSig,
		"text behind other key": append(sign(other.sec, false, false), textSig...),
	} {
		_, err := VerifyDetachedBinary(pref.pub, data, sig)
		if !errors.Is(err, ErrTextSignature) || !strings.Contains(err.Error(), "0x01") {
			t.Errorf("%s: %v, want ErrTextSignature naming type 0x01", name, err)
		}
	}
	if _, err := VerifyDetachedBinary(pref.pub, data, []byte("not a signature")); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: %v, want ErrMalformed", err)
	}
}

// TestSignDetachedMakesBinarySignature: SignDetached's armored signature is
// of type binary, verifies the data and nothing else, and needs a secret
// key.
func TestSignDetachedMakesBinarySignature(t *testing.T) {
	pref := newPair(t, "Prefettura di Roma", "prefettura.roma@example.it")
	data := []byte("Codice ISTAT;Seriale\n058091;SC0001\n")
	sig, err := SignDetached(data, pref.sec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sig, []byte("-----BEGIN PGP SIGNATURE-----")) {
		t.Errorf("not armored: %q", sig[:min(len(sig), 40)])
	}
	if _, err := VerifyDetachedBinary(pref.pub, data, sig); err != nil {
		t.Errorf("own signature: %v", err)
	}
	if _, err := VerifyDetachedBinary(pref.pub, append(data, '\n'), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signature of other bytes: %v", err)
	}
	if _, err := SignDetached(data, pref.pub[0]); err == nil {
		t.Error("signed with a public key")
	}
}

func TestKeyForEmail(t *testing.T) {
	dir := t.TempDir()
	alice := newPair(t, "Alice Rossi", "Alice.Rossi@Comune.example.it")
	bob := newPair(t, "Bob", "bob@example.org")
	bob2 := newPair(t, "Bob again", "BOB@example.org")
	carol := expiredPair(t, "Carol", "carol@example.org")
	writeFile(t, dir, "alice.asc", alice.pubArmored, 0o644)
	writeFile(t, dir, "bob.ASC", bob.pubArmored, 0o644)
	writeFile(t, dir, "carol.asc", carol.pubArmored, 0o644)
	writeFile(t, dir, "garbage.asc", []byte("junk"), 0o644)
	writeFile(t, dir, "dave.sec.asc", newPair(t, "Dave", "dave@example.org").secArmored, 0o600)
	writeFile(t, dir, "notes.txt", []byte("junk"), 0o644) // not *.asc: not read
	if err := os.Mkdir(filepath.Join(dir, "old.asc"), 0o755); err != nil {
		t.Fatal(err)
	}

	key, warnings, err := KeyForEmail(dir, " alice.rossi@comune.EXAMPLE.it")
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 1 || Fingerprint(key[0]) != Fingerprint(alice.sec) {
		t.Fatalf("got %d keys", len(key))
	}
	// carol (expired), garbage, dave (secret key): one warning each, naming the file.
	if len(warnings) != 3 {
		t.Fatalf("warnings: %v", warnings)
	}
	for i, w := range []string{"carol.asc", "dave.sec.asc", "garbage.asc"} {
		if !strings.Contains(warnings[i].Error(), w) {
			t.Errorf("warning %d %q does not name %s", i, warnings[i], w)
		}
	}
	// The key works as a recipient.
	if _, err := EncryptSign([]byte("PIN"), key, bob.sec); err != nil {
		t.Fatal(err)
	}

	for _, email := range []string{"nobody@example.org", "carol@example.org", "dave@example.org", "alice"} {
		key, _, err := KeyForEmail(dir, email)
		if key != nil || err != nil {
			t.Errorf("%s: %d keys, %v; want none", email, len(key), err)
		}
	}
	if key, _, err := KeyForEmail(dir, "bob@example.org"); err != nil || len(key) != 1 {
		t.Fatalf("bob: %d keys, %v", len(key), err)
	}
	writeFile(t, dir, "bob2.asc", bob2.pubArmored, 0o644)
	if key, _, err := KeyForEmail(dir, "bob@example.org"); err == nil || key != nil ||
		!strings.Contains(err.Error(), "bob.ASC") || !strings.Contains(err.Error(), "bob2.asc") {
		t.Fatalf("two keys for bob: %d keys, %v", len(key), err)
	}
	if key, w, err := KeyForEmail(filepath.Join(dir, "missing"), "bob@example.org"); key != nil || w != nil || err != nil {
		t.Errorf("missing dir: %v %v %v", key, w, err)
	}
	if _, _, err := KeyForEmail(dir, ""); err == nil {
		t.Error("empty e-mail accepted")
	}
}

func BenchmarkEncryptSign(b *testing.B) {
	service := newPair(b, "Servizio", "servizio@anpr.example")
	producer := newPair(b, "Produttore", "ordini@produttore.example")
	plain := bytes.Repeat([]byte("SC000001;RSSMRA68A01H501Y;Rossi;Mario;058091;RM;1234;5678;abcd\n"), 16) // ~1 KiB
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncryptSign(plain, producer.pub, service.sec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		if _, _, err := Generate("Servizio", "servizio@anpr.example"); err != nil {
			b.Fatal(err)
		}
	}
}
