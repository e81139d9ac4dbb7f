package sftpdrop

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKeyMismatch is returned (wrapped) by Dial when known_hosts holds
// keys for the server but none matches the key it presented: possibly a
// man-in-the-middle.
var ErrHostKeyMismatch = errors.New("chiave del server sftp diversa da known_hosts")

// ErrHostUnknown is returned (wrapped) by Dial when known_hosts has no key
// for the server.
var ErrHostUnknown = errors.New("server sftp sconosciuto")

// ErrHostKeyRevoked is returned (wrapped) by Dial when the server presented
// a key marked @revoked in known_hosts.
var ErrHostKeyRevoked = errors.New("chiave del server sftp revocata")

// ErrKeyFileMode is returned (wrapped) by Dial when the private key file
// can be read or written by group or others.
var ErrKeyFileMode = errors.New("permessi del file della chiave sftp troppo aperti")

// hostKeyError carries an operator-oriented message and a sentinel for
// errors.Is.
type hostKeyError struct {
	msg  string
	kind error
}

func (e *hostKeyError) Error() string { return e.msg }
func (e *hostKeyError) Unwrap() error { return e.kind }

// loadSigner reads an unencrypted private key (OpenSSH or PEM format)
// and refuses a file that group or others may access.
func loadSigner(file string) (ssh.Signer, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("file della chiave sftp: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("%w: il file della chiave sftp %s ha permessi %04o, accessibile al gruppo o ad altri; "+
			"restringerli (chmod 600 %s)", ErrKeyFileMode, file, m, file)
	}
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("file della chiave sftp: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fmt.Errorf("il file della chiave sftp %s è protetto da passphrase: usare un file di chiave non cifrato leggibile solo dal servizio (permessi 0600)", file)
		}
		return nil, fmt.Errorf("file della chiave sftp %s: %w", file, err)
	}
	return signer, nil
}

// hostKeyChecker checks server keys against a known_hosts file with
// golang.org/x/crypto/ssh/knownhosts and turns its errors into messages an
// operator can act on. The last failure is kept for Dial to report
// unwrapped from the SSH handshake error.
type hostKeyChecker struct {
	file string
	cb   ssh.HostKeyCallback

	mu  sync.Mutex
	err error
}

// failure is the last refusal of check, or nil.
func (h *hostKeyChecker) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func newHostKeyChecker(file string) (*hostKeyChecker, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("known_hosts sftp: %w", err)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("known_hosts sftp %s: %w", file, err)
	}
	return &hostKeyChecker{file: file, cb: cb}, nil
}

func (h *hostKeyChecker) check(host string, remote net.Addr, key ssh.PublicKey) error {
	err := h.cb(host, remote, key)
	if err == nil {
		return nil
	}
	offered := key.Type() + " " + ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		err = &hostKeyError{kind: ErrHostKeyRevoked, msg: fmt.Sprintf(
			"la chiave del server sftp %s è segnata @revoked in known_hosts %s (il server ha presentato %s): connessione rifiutata",
			host, h.file, offered)}
	case errors.As(err, &ke) && len(ke.Want) > 0:
		err = &hostKeyError{kind: ErrHostKeyMismatch, msg: fmt.Sprintf(
			"la chiave del server sftp %s non corrisponde a known_hosts %s (possibile man-in-the-middle; "+
				"aggiornare known_hosts se la chiave del server è davvero cambiata); il server ha presentato %s",
			host, h.file, offered)}
	case errors.As(err, &ke):
		err = &hostKeyError{kind: ErrHostUnknown, msg: fmt.Sprintf(
			"il server sftp %s non è in known_hosts %s (il server ha presentato %s); aggiungerne la chiave dopo averne "+
				"verificato l'impronta con l'amministratore del server (per esempio con ssh-keyscan)",
			host, h.file, offered)}
	default:
		err = fmt.Errorf("verifica della chiave del server sftp %s con %s: %w", host, h.file, err)
	}
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	return err
}

// algorithms returns the host key algorithms to negotiate with the server:
// those of the keys known_hosts holds for it. Without this the client
// negotiates its own preferred algorithm (ECDSA before Ed25519 in
// x/crypto/ssh); a server holding several host keys then presents one
// that known_hosts does not list, and the check fails as a false
// man-in-the-middle alarm. It returns nil (library defaults) for an
// unknown host, which the check refuses anyway.
func (h *hostKeyChecker) algorithms(host string, remote net.Addr) []string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub) // matches nothing: lists what is known
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(h.cb(host, remote, probe), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}
