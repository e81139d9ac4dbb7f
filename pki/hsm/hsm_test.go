package hsm_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/pki/hsm"
	"anprsec/pki/hsm/softhsmtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// URIs as OpenSSL and p11-kit write them are read; what anprsec cannot or
// must not use is refused with the reason.
func TestParseURI(t *testing.T) {
	u, err := hsm.ParseURI("pkcs11:token=ANPR%20CA;object=ca-2026;id=%01%02;type=private;manufacturer=SoftHSM%20project?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/anprsec/hsm.pin")
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != "ANPR CA" || u.Object != "ca-2026" || string(u.ID) != "\x01\x02" || u.ModulePath != "/usr/lib/softhsm/libsofthsm2.so" || u.PinFile != "/etc/anprsec/hsm.pin" {
		t.Errorf("parsed %+v", u)
	}
	if u, err := hsm.ParseURI("pkcs11:slot-id=3;id=%AB?module-path=/lib/p11.so"); err != nil || *u.SlotID != 3 || u.PinFile != "" {
		t.Errorf("slot-id and id only: %+v, %v", u, err)
	}
	for _, tc := range []struct{ uri, want string }{
		{"/var/pki/ca.key", "non è un URI PKCS#11"},
		{"pkcs11:object=ca?module-path=/lib/p11.so", "uno solo fra token="},
		{"pkcs11:token=a;serial=1;object=ca?module-path=/lib/p11.so", "uno solo fra token="},
		{"pkcs11:token=a?module-path=/lib/p11.so", "object="},
		{"pkcs11:token=a;object=ca", "module-path"},
		{"pkcs11:token=a;object=ca?module-path=/lib/p11.so&pin-value=1234", "pin-source=file:/percorso"},
		{"pkcs11:token=a;object=ca?module-name=softhsm2", "module-path"},
		{"pkcs11:token=a;object=ca?module-path=/lib/p11.so&pin-source=hsm.pin", "file:/percorso/assoluto"},
		{"pkcs11:token=a;object=ca?module-path=/lib/p11.so&pin-source=file:hsm.pin", "deve essere assoluto"},
		{"pkcs11:token=a;object=ca;type=cert?module-path=/lib/p11.so", "type=private"},
		{"pkcs11:token=a;object=ca;colour=red?module-path=/lib/p11.so", `"colour" dell'URI PKCS#11 non supportato`},
		{"pkcs11:token=a;object=%zz?module-path=/lib/p11.so", "object"},
	} {
		if _, err := hsm.ParseURI(tc.uri); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURI(%q) = %v, want an error containing %q", tc.uri, err, tc.want)
		}
	}
}

// A PIN file readable by others is refused, as every secret of anprsec.
func TestPINFileMustBePrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hsm.pin")
	os.WriteFile(p, []byte("1234\n"), 0o644)
	u, err := hsm.ParseURI("pkcs11:token=a;object=ca?module-path=/lib/p11.so&pin-source=file:" + p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.PIN(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("PIN of a 0644 file: %v", err)
	}
	os.Chmod(p, 0o600)
	if pin, err := u.PIN(); err != nil || pin != "1234" {
		t.Errorf("PIN = %q, %v", pin, err)
	}
}

// Generate makes the key inside the token: pkcs11-tool lists it as
// sensitive and never extractable, signing only; Open finds it again and
// it signs; a second Generate is refused; an absent key is ErrNoKey.
func TestGeneratedKeyStaysInTheToken(t *testing.T) {
	if !hsm.Available {
		t.Skip("built without cgo")
	}
	tok := softhsmtest.New(t)
	u, err := hsm.ParseURI(tok.URI("ca"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hsm.Open(u); !errors.Is(err, hsm.ErrNoKey) {
		t.Fatalf("Open before Generate: %v, want ErrNoKey", err)
	}
	s, err := hsm.Generate(u, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hsm.Generate(u, 2048); err == nil || !strings.Contains(err.Error(), "ha già questa chiave") {
		t.Errorf("second Generate: %v", err)
	}
	again, err := hsm.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := again.Public().(*rsa.PublicKey)
	if !ok || !pub.Equal(s.Public()) || pub.N.BitLen() != 2048 {
		t.Fatalf("Open found %T", again.Public())
	}
	digest := sha256.Sum256([]byte("CRL anprsec"))
	sig, err := again.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("signature made in the token does not verify: %v", err)
	}

	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		t.Skip("pkcs11-tool not installed (Debian opensc): the key's attributes were not listed")
	}
	out, err := exec.Command(tool, "--module", tok.Module, "--token-label", tok.Label, "--login", "--pin", softhsmtest.PIN, "--list-objects", "--type", "privkey").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"Private Key Object; RSA", `label:      ca`, "sensitive", "never extractable", "local", "Usage:      sign"} {
		if !strings.Contains(text, want) {
			t.Errorf("pkcs11-tool --list-objects lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "decrypt") || strings.Contains(text, "unwrap") {
		t.Errorf("the CA key may decrypt or unwrap:\n%s", text)
	}
	if strings.Contains(text, "Access:     sensitive, always sensitive, extractable") {
		t.Errorf("extractable:\n%s", text)
	}
}

// The key of a rolled-over CA is another object of the same token, reached
// with the same module and PIN: the URI keeps everything but the key's
// label and id.
func TestWithObjectNamesAnotherKeyOfTheSameToken(t *testing.T) {
	u, err := hsm.ParseURI("pkcs11:token=anprsec;object=ca-2026;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/srv/hsm.pin")
	if err != nil {
		t.Fatal(err)
	}
	n, err := u.WithObject("ca-2026-20270115")
	if err != nil {
		t.Fatal(err)
	}
	if n.Token != "anprsec" || n.Object != "ca-2026-20270115" || len(n.ID) != 0 || n.ModulePath != u.ModulePath || n.PinFile != "/srv/hsm.pin" {
		t.Errorf("WithObject = %+v", n)
	}
	if want := "pkcs11:token=anprsec;object=ca-2026-20270115?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/srv/hsm.pin"; n.String() != want {
		t.Errorf("WithObject = %s, want %s", n, want)
	}
}
