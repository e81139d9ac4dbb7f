package mail

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"anprsec/mail/smtptest"
)

// gnupg is a throw-away GnuPG home.
type gnupg struct {
	t    *testing.T
	home string
}

// newGnuPG makes a GnuPG home with a short path (the agent's socket path
// is limited) and kills its agent at cleanup. It skips without gpg.
func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		_ = os.RemoveAll(home)
	})
	return &gnupg{t: t, home: home}
}

// run runs gpg with the home and returns stdout and stderr; it fails the
// test on a non-zero exit.
func (g *gnupg) run(stdin []byte, args ...string) (stdout, stderr []byte) {
	g.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", g.home, "--batch", "--no-tty"}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+g.home, "LC_ALL=C")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.Bytes())
	}
	return out.Bytes(), errb.Bytes()
}

// TestGnuPGDecryptsComposed: a key made by GnuPG, a message encrypted and
// signed with go-crypto, composed, delivered over SMTP; GnuPG decrypts
// part 2 of the received message to the inner MIME entity and verifies the
// signature.
func TestGnuPGDecryptsComposed(t *testing.T) {
	g := newGnuPG(t)
	g.run(nil, "--passphrase", "", "--quick-gen-key", "Test <t@example.it>", "ed25519", "sign", "1d")
	out, _ := g.run(nil, "--with-colons", "--list-secret-keys", "t@example.it")
	var fpr string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
			fpr = f[9]
			break
		}
	}
	if fpr == "" {
		t.Fatalf("no fingerprint in\n%s", out)
	}
	g.run(nil, "--passphrase", "", "--quick-add-key", fpr, "cv25519", "encr", "1d")
	pub, _ := g.run(nil, "--armor", "--export", fpr)
	recipients, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
	if err != nil || len(recipients) != 1 {
		t.Fatalf("read GnuPG key: %v (%d keys)", err, len(recipients))
	}

	// The signer is a go-crypto key; GnuPG gets its public part to verify.
	signer, err := pgpKeys()
	if err != nil {
		t.Fatal(err)
	}
	var sp bytes.Buffer
	aw, _ := armor.Encode(&sp, "PGP PUBLIC KEY BLOCK", nil)
	if err := signer.Serialize(aw); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	g.run(sp.Bytes(), "--import")

	raw, err := Compose(testMessage(), openpgpEncrypt(recipients, signer))
	if err != nil {
		t.Fatal(err)
	}
	srv := smtptest.Start(t)
	if err := plainSender(srv).Send(context.Background(), envFrom, []string{envTo}, raw); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("received %d messages", len(msgs))
	}
	p := parsePGPMIME(t, msgs[0].Data)

	file := filepath.Join(g.home, "encrypted.asc")
	if err := os.WriteFile(file, p.armored, 0o600); err != nil {
		t.Fatal(err)
	}
	inner, stderr := g.run(nil, "--status-fd", "2", "--decrypt", file)
	if !bytes.Contains(stderr, []byte("[GNUPG:] GOODSIG")) {
		t.Errorf("GnuPG did not verify the signature:\n%s", stderr)
	}
	if !bytes.Contains(stderr, []byte("[GNUPG:] DECRYPTION_OKAY")) {
		t.Errorf("GnuPG did not report DECRYPTION_OKAY:\n%s", stderr)
	}
	checkItalian(t, checkInner(t, inner, italianText))
	t.Logf("GnuPG: %s", bytes.TrimSpace(grepLines(stderr, "GOODSIG", "DECRYPTION_OKAY")))
}

func grepLines(b []byte, words ...string) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		for _, w := range words {
			if bytes.Contains(l, []byte(w)) {
				out = append(append(out, l...), '\n')
				break
			}
		}
	}
	return out
}
