package pgp

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// pair is a generated key pair, armored and parsed.
type pair struct {
	pubArmored, secArmored []byte
	pub                    openpgp.EntityList // public key only
	sec                    *openpgp.Entity    // with secret key
}

// newPair generates a never-expiring key pair with Generate.
func newPair(t testing.TB, name, email string) pair {
	t.Helper()
	pub, sec, err := Generate(name, email)
	if err != nil {
		t.Fatal(err)
	}
	return parsePair(t, pub, sec)
}

// expiredPair generates a key pair made two days ago that expired yesterday.
func expiredPair(t testing.TB, name, email string) pair {
	t.Helper()
	pub, sec, err := generate(name, email, time.Now().Add(-48*time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return parsePair(t, pub, sec)
}

func parsePair(t testing.TB, pub, sec []byte) pair {
	t.Helper()
	p := pair{pubArmored: pub, secArmored: sec}
	var err error
	if p.pub, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(pub)); err != nil {
		t.Fatal(err)
	}
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(sec))
	if err != nil {
		t.Fatal(err)
	}
	p.sec = el[0]
	return p
}

// armoredPublic serializes the public part of e.
func armoredPublic(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(aw); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// armoredSecret serializes e with its secret keys, without re-signing.
func armoredSecret(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(aw, nil); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeFile writes data to dir/name with mode perm (chmod'ed, so the umask
// does not matter) and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// sessionCipher decrypts the session key of an armored message with the
// secret keys of sec and returns the symmetric cipher it names.
func sessionCipher(t testing.TB, armored []byte, sec *openpgp.Entity) packet.CipherFunction {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	r := packet.NewReader(block.Body)
	for {
		p, err := r.Next()
		if err == io.EOF {
			t.Fatal("no session key for this key in the message")
		}
		if err != nil {
			t.Fatal(err)
		}
		ek, ok := p.(*packet.EncryptedKey)
		if !ok {
			continue
		}
		for _, k := range (openpgp.EntityList{sec}).KeysById(ek.KeyId) {
			if k.PrivateKey == nil {
				continue
			}
			if err := ek.Decrypt(k.PrivateKey, nil); err != nil {
				t.Fatal(err)
			}
			return ek.CipherFunc
		}
	}
}

// tamperMessage flips one bit of an armored message, back bytes from the end
// of its binary form (inside the encrypted data), and re-armors it so that
// the armor checksum is right.
func tamperMessage(t testing.TB, armored []byte, back int) []byte {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := io.ReadAll(block.Body)
	if err != nil {
		t.Fatal(err)
	}
	bin[len(bin)-back] ^= 0x01
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, block.Type, nil)
	if err != nil {
		t.Fatal(err)
	}
	aw.Write(bin)
	aw.Close()
	return buf.Bytes()
}
