package pgp

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

const clearText = "registro della storia di anprsec\nsequenza: 42\n- una riga che inizia con un trattino\nhash: 00ff\n"

// TestClearSignedTextComesBackVerified: a cleartext-signed text verifies
// against the signer's public key and comes back as it was signed, the
// dash escape undone.
func TestClearSignedTextComesBackVerified(t *testing.T) {
	service := newPair(t, "Servizio ANPR", "servizio@anpr.example")
	msg, err := ClearSign([]byte(clearText), service.sec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(msg, []byte("-----BEGIN PGP SIGNED MESSAGE-----\n")) || !bytes.Contains(msg, []byte("\nsequenza: 42\n")) ||
		!bytes.Contains(msg, []byte("\n- - una riga")) {
		t.Fatalf("not a readable cleartext-signed message:\n%s", msg)
	}
	text, signer, err := VerifyClearSigned(service.pub, msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(text) != clearText {
		t.Errorf("text %q, want %q", text, clearText)
	}
	if Fingerprint(signer) != Fingerprint(service.sec) {
		t.Errorf("signer %s, want %s", Fingerprint(signer), Fingerprint(service.sec))
	}
	// Text around the message is not signed and not returned.
	wrapped := append(append([]byte("sequenza: 1\n\n"), msg...), "sequenza: 2\n"...)
	if text, _, err := VerifyClearSigned(service.pub, wrapped); err != nil || strings.Contains(string(text), "sequenza: 1\n") ||
		strings.Contains(string(text), "sequenza: 2") {
		t.Errorf("wrapped message: %q, %v", text, err)
	}
}

// TestClearSignedMessageRefused: a changed text, a damaged signature,
// another key's signature and something that is no signed message are
// refused, each with its error.
func TestClearSignedMessageRefused(t *testing.T) {
	service := newPair(t, "Servizio ANPR", "servizio@anpr.example")
	other := newPair(t, "Altro", "altro@example.it")
	msg, err := ClearSign([]byte(clearText), service.sec)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := ClearSign([]byte(clearText), other.sec)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(msg, []byte("-----BEGIN PGP SIGNATURE-----"))
	damaged := append(append([]byte{}, msg[:i]...), tamperMessage(t, msg[i:], 3)...)
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"changed text", bytes.Replace(msg, []byte("sequenza: 42"), []byte("sequenza: 43"), 1), ErrBadSignature},
		{"damaged signature", damaged, ErrBadSignature},
		{"another key", byOther, ErrUnknownSigner},
		{"no signed message", []byte(clearText), ErrMalformed},
		{"signature cut", msg[:i+40], ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if text, _, err := VerifyClearSigned(service.pub, tc.data); !errors.Is(err, tc.want) {
				t.Errorf("VerifyClearSigned = %q, %v; want %v", text, err, tc.want)
			}
		})
	}
}

// TestGPGClearSigned: GnuPG verifies our cleartext signatures, and ours
// verify GnuPG's.
func TestGPGClearSigned(t *testing.T) {
	g := newGnuPG(t)
	dir := t.TempDir()
	service := newPair(t, "Servizio ANPR", "servizio@anpr.example")
	g.run(nil, "--import", writeFile(t, dir, "service.pub.asc", service.pubArmored, 0o644))
	msg, err := ClearSign([]byte(clearText), service.sec)
	if err != nil {
		t.Fatal(err)
	}
	_, stderr := g.run(nil, "--verify", writeFile(t, dir, "registro.asc", msg, 0o644))
	if !bytes.Contains(stderr, []byte(`Good signature from "Servizio ANPR <servizio@anpr.example>"`)) {
		t.Errorf("gpg --verify:\n%s", stderr)
	}
	changed := bytes.Replace(msg, []byte("sequenza: 42"), []byte("sequenza: 43"), 1)
	if _, stderr, err := g.try(nil, "--verify", writeFile(t, dir, "falso.asc", changed, 0o644)); err == nil {
		t.Errorf("gpg accepted a changed text:\n%s", stderr)
	}

	fpr := g.genKey("Prefettura di Roma <prefettura.roma@example.it>", "", false)
	pub, _ := g.run(nil, "--armor", "--export", fpr)
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := g.run([]byte(clearText), "--local-user", fpr, "--clearsign")
	text, signer, err := VerifyClearSigned(keys, signed)
	if err != nil {
		t.Fatalf("%v\n%s", err, signed)
	}
	if string(text) != strings.TrimSuffix(clearText, "\n") || Fingerprint(signer) != fpr {
		t.Errorf("GnuPG's message: %q by %s", text, Fingerprint(signer))
	}
}
