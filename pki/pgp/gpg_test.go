package pgp

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// gnupg is a throw-away GnuPG home directory.
type gnupg struct {
	t    *testing.T
	home string
}

// newGnuPG makes a GnuPG home in a short temporary directory (the agent's
// socket path is limited to about 100 bytes) and kills its agent at cleanup.
// The test is skipped when gpg is not installed.
func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	base := ""
	if st, err := os.Stat("/tmp"); err == nil && st.IsDir() {
		base = "/tmp"
	}
	home, err := os.MkdirTemp(base, "pgp")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// The agent calibrates its passphrase hashing (about a second) unless
	// told a count: the lowest, as these are throw-away keys.
	if err := os.WriteFile(filepath.Join(home, "gpg-agent.conf"), []byte("s2k-count 65536\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := exec.LookPath("gpgconf"); err == nil {
			exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		}
		os.RemoveAll(home)
	})
	return &gnupg{t: t, home: home}
}

// run runs gpg in batch mode on this home with stdin and returns stdout and
// stderr; a non-zero exit fails the test unless mayFail.
func (g *gnupg) try(stdin []byte, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--batch", "--no-tty", "--homedir", g.home, "--pinentry-mode", "loopback"}, args...)
	cmd := exec.CommandContext(ctx, "gpg", full...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

func (g *gnupg) run(stdin []byte, args ...string) (stdout, stderr []byte) {
	g.t.Helper()
	stdout, stderr, err := g.try(stdin, args...)
	if err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

// genKey makes an Ed25519 key in GnuPG, with a cv25519 encryption subkey
// when encrypt, protected by passphrase (none when empty), and returns its
// fingerprint.
func (g *gnupg) genKey(uid, passphrase string, encrypt bool) string {
	g.t.Helper()
	g.run(nil, "--passphrase", passphrase, "--quick-gen-key", uid, "ed25519", "sign", "never")
	out, _ := g.run(nil, "--with-colons", "--list-keys", uid)
	m := regexp.MustCompile(`(?m)^fpr:+([0-9A-F]{40}):`).FindSubmatch(out)
	if m == nil {
		g.t.Fatalf("no fingerprint in:\n%s", out)
	}
	fpr := string(m[1])
	if encrypt {
		g.run(nil, "--passphrase", passphrase, "--quick-add-key", fpr, "cv25519", "encr", "never")
	}
	return fpr
}

// TestGPGReadsOurMessages: GnuPG imports keys made by Generate and decrypts
// a message of EncryptSign, reporting a good signature of the signer.
func TestGPGReadsOurMessages(t *testing.T) {
	g := newGnuPG(t)
	service := newPair(t, "Servizio ANPR", "servizio@anpr.example")
	producer := newPair(t, "Produttore", "ordini@produttore.example")
	dir := t.TempDir()
	g.run(nil, "--import", writeFile(t, dir, "producer.sec.asc", producer.secArmored, 0o600))
	g.run(nil, "--import", writeFile(t, dir, "service.pub.asc", service.pubArmored, 0o644))

	// GnuPG sees the algorithms we meant: EdDSA (22) on ed25519, ECDH (18) on cv25519.
	out, _ := g.run(nil, "--with-colons", "--list-secret-keys", Fingerprint(producer.sec))
	var keys []string // "record:algo:curve"
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 16 && (f[0] == "sec" || f[0] == "ssb") {
			keys = append(keys, f[0]+":"+f[3]+":"+f[16])
		}
	}
	if strings.Join(keys, " ") != "sec:22:ed25519 ssb:18:cv25519" || !bytes.Contains(out, []byte(Fingerprint(producer.sec))) {
		t.Fatalf("GnuPG sees %v, want sec:22:ed25519 ssb:18:cv25519:\n%s", keys, out)
	}

	plain := []byte("Seriale;Codice Fiscale;PIN (prima metà)\nSC000001;RSSMRA68A01H501Y;1234\n")
	msg, err := EncryptSign(plain, producer.pub, service.sec)
	if err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "plain.csv")
	status, stderr := g.run(msg, "--verbose", "--status-fd", "1", "--output", outFile, "--decrypt")
	got, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Errorf("gpg decrypted %q, want %q", got, plain)
	}
	if !bytes.Contains(stderr, []byte(`Good signature from "Servizio ANPR <servizio@anpr.example>"`)) {
		t.Errorf("no good signature from the service in gpg's stderr:\n%s", stderr)
	}
	if !bytes.Contains(status, []byte("[GNUPG:] VALIDSIG ")) || !bytes.Contains(status, []byte(Fingerprint(service.sec))) {
		t.Errorf("no VALIDSIG by %s in gpg's status:\n%s", Fingerprint(service.sec), status)
	}
	if !bytes.Contains(stderr, []byte("AES256")) {
		t.Errorf("gpg does not report AES256:\n%s", stderr)
	}

	// The same message altered in the middle: gpg must not report success.
	if _, stderr, err := g.try(tamperMessage(t, msg, 30), "--decrypt"); err == nil {
		t.Errorf("gpg accepted a damaged message:\n%s", stderr)
	}
}

// TestGPGKeysAndSignatures: keys and signatures made by GnuPG work here.
func TestGPGKeysAndSignatures(t *testing.T) {
	g := newGnuPG(t)
	dir := t.TempDir()
	fpr := g.genKey("Prefettura di Roma <prefettura.roma@example.it>", "", true)
	lockedFpr := g.genKey("Bloccata <bloccata@example.it>", "segreta", false)

	pubArmored, _ := g.run(nil, "--armor", "--export", fpr)
	secArmored, _ := g.run(nil, "--passphrase", "", "--armor", "--export-secret-keys", fpr)
	lockedArmored, _ := g.run(nil, "--passphrase", "segreta", "--armor", "--export-secret-keys", lockedFpr)

	keyring, err := ReadVerifierFile(writeFile(t, dir, "pref.asc", pubArmored, 0o644))
	if err != nil {
		t.Fatal(err)
	}
	if len(keyring) != 1 || Fingerprint(keyring[0]) != fpr || PrimaryEmail(keyring[0]) != "prefettura.roma@example.it" {
		t.Fatalf("read %d keys, %s", len(keyring), Fingerprint(keyring[0]))
	}
	if _, err := ReadPublicFile(filepath.Join(dir, "pref.asc")); err != nil {
		t.Fatalf("gpg key as a recipient: %v", err)
	}
	secret, err := ReadSecretFile(writeFile(t, dir, "pref.sec.asc", secArmored, 0o600))
	if err != nil {
		t.Fatalf("gpg secret key without passphrase: %v", err)
	}
	lockedPath := writeFile(t, dir, "locked.sec.asc", lockedArmored, 0o600)
	if _, err := ReadSecretFile(lockedPath); err == nil || !strings.Contains(err.Error(), "passphrase") ||
		!strings.Contains(err.Error(), lockedPath) || !strings.Contains(err.Error(), lockedFpr) {
		t.Fatalf("gpg secret key with a passphrase: %v", err)
	}

	// Detached signatures, armored and binary, of a manifest.
	data := []byte("Codice ISTAT;Seriale;Codice Fiscale;Data consegna;Ritirata da\r\n058091;SC000001;RSSMRA68A01H501Y;01/02/2026;CCCFBA85D03L219P\r\n")
	dataPath := writeFile(t, dir, "consegne.csv", data, 0o644)
	g.run(nil, "--local-user", fpr, "--armor", "--output", dataPath+".asc", "--detach-sign", dataPath)
	g.run(nil, "--local-user", fpr, "--output", dataPath+".sig", "--detach-sign", dataPath)
	g.run(nil, "--local-user", fpr, "--textmode", "--output", dataPath+".txt.sig", "--detach-sign", dataPath)
	tampered := bytes.Replace(data, []byte("SC000001"), []byte("SC000002"), 1)
	other := newPair(t, "Altro", "altro@example.org")
	for _, ext := range []string{".asc", ".sig", ".txt.sig"} {
		sig, err := os.ReadFile(dataPath + ext)
		if err != nil {
			t.Fatal(err)
		}
		if ext == ".asc" != bytes.HasPrefix(sig, []byte("-----BEGIN PGP SIGNATURE-----")) {
			t.Fatalf("%s: unexpected format:\n%.60q", ext, sig)
		}
		signer, err := VerifyDetached(keyring, data, sig)
		if err != nil {
			t.Fatalf("%s: %v", ext, err)
		}
		if Fingerprint(signer) != fpr {
			t.Fatalf("%s: signer %s, want %s", ext, Fingerprint(signer), fpr)
		}
		if _, err := VerifyDetached(keyring, tampered, sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: tampered data: %v", ext, err)
		}
		if _, err := VerifyDetached(other.pub, data, sig); !errors.Is(err, ErrUnknownSigner) || !strings.Contains(err.Error(), fpr) {
			t.Errorf("%s: unknown key: %v", ext, err)
		}
	}
	// Our ed25519 signature check agrees with gpg on the same data: gpg rejects the tampered file too.
	if _, stderr, err := g.try(nil, "--verify", dataPath+".sig", writeFile(t, dir, "tampered.csv", tampered, 0o644)); err == nil {
		t.Errorf("gpg accepted tampered data:\n%s", stderr)
	}

	// A message we encrypt to the GnuPG key and sign with its own secret key
	// (read back from GnuPG's export) decrypts in GnuPG with a good signature.
	msg, err := EncryptSign([]byte("ciao\n"), keyring, secret)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr := g.run(msg, "--decrypt")
	if string(out) != "ciao\n" || !bytes.Contains(stderr, []byte(`Good signature from "Prefettura di Roma <prefettura.roma@example.it>"`)) {
		t.Errorf("gpg: %q\n%s", out, stderr)
	}

	// A message GnuPG encrypts to our key and signs with its key: Decrypt
	// reads it and names the GnuPG key as signer.
	producer := newPair(t, "Produttore", "ordini@produttore.example")
	g.run(nil, "--import", writeFile(t, dir, "producer.pub.asc", producer.pubArmored, 0o644))
	gpgMsg, _ := g.run([]byte("ordine 42\n"), "--armor", "--trust-model", "always", "--local-user", fpr,
		"--recipient", Fingerprint(producer.sec), "--sign", "--encrypt")
	plain, signer, err := Decrypt(gpgMsg, append(openpgp.EntityList{producer.sec}, keyring...))
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != "ordine 42\n" || Fingerprint(signer) != fpr {
		t.Errorf("Decrypt: %q by %s", plain, Fingerprint(signer))
	}
	// Encrypted by GnuPG but not signed: refused.
	unsigned, _ := g.run([]byte("ordine 43\n"), "--armor", "--trust-model", "always",
		"--recipient", Fingerprint(producer.sec), "--encrypt")
	if _, _, err := Decrypt(unsigned, append(openpgp.EntityList{producer.sec}, keyring...)); !errors.Is(err, ErrNotSigned) {
		t.Errorf("unsigned gpg message: %v", err)
	}
}
