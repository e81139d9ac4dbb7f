package sftptest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Key is an ephemeral ed25519 key pair.
type Key struct {
	Private ed25519.PrivateKey
	Signer  ssh.Signer
}

// NewKey generates a key pair.
func NewKey(t testing.TB) *Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Private: priv, Signer: s}
}

// PublicKey is the public half, for Start or WriteKnownHosts.
func (k *Key) PublicKey() ssh.PublicKey { return k.Signer.PublicKey() }

// WritePrivate writes the private key, unencrypted in OpenSSH format, to
// file with exactly mode (whatever the umask) and returns file.
func (k *Key) WritePrivate(t testing.TB, file string, mode os.FileMode) string {
	t.Helper()
	blk, err := ssh.MarshalPrivateKey(k.Private, "anprsec test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil { // umask, or an existing file
		t.Fatal(err)
	}
	return file
}

// Client is what a test needs to log in to a Server: a key pair and its
// private key file.
type Client struct {
	Key *Key
	// KeyFile is Key's private key, file id_ed25519 in Dir, mode 0600.
	KeyFile string
	// Dir is a temporary folder of the client's own, e.g. for known_hosts.
	Dir string
}

// NewClient makes a new key pair and writes its private key, mode 0600, to
// a new temporary folder.
func NewClient(t testing.TB) *Client {
	t.Helper()
	dir := t.TempDir()
	k := NewKey(t)
	return &Client{Key: k, KeyFile: k.WritePrivate(t, filepath.Join(dir, "id_ed25519"), 0o600), Dir: dir}
}

// PublicKey is the client's public key, for Start.
func (c *Client) PublicKey() ssh.PublicKey { return c.Key.PublicKey() }

// WriteKnownHosts writes an OpenSSH known_hosts file (mode 0644) listing
// keys for addr (host:port, as dialled) and returns file.
func WriteKnownHosts(t testing.TB, file, addr string, keys ...ssh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# anprsec test\n")
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{addr}, k) + "\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
