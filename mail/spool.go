package mail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Spool is a Sender that writes each message as one .eml file (RFC 5322,
// as given) into Dir, for when no SMTP server is configured. The file name
// derives from the Message-ID header of the message, so sending the same
// message again replaces the same file. Files are written atomically
// (temporary name, fsync, rename) with mode 0600; Dir is created with mode
// 0700 if missing. The envelope (from, to) is not recorded: the headers
// carry it.
type Spool struct {
	// Dir is the spool directory, e.g. var/mail.
	Dir string
}

// Send writes raw to Dir and returns the error of any step; it never leaves
// a temporary file behind. Errors are permanent (not Temporary) except for
// a cancelled ctx.
func (s Spool) Send(ctx context.Context, from string, to []string, raw []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.Dir == "" {
		return errors.New("mail: spool: manca la cartella")
	}
	if _, err := envelope(from, to); err != nil {
		return err
	}
	if len(raw) == 0 {
		return errors.New("mail: spool: messaggio vuoto")
	}
	name := spoolName(headerMessageID(raw), raw)
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("mail: spool: %w", err)
	}
	_, err := s.write(name, raw)
	return err
}

// Path returns the file that Send writes for raw.
func (s Spool) Path(raw []byte) string {
	return filepath.Join(s.Dir, spoolName(headerMessageID(raw), raw))
}

// spoolLocks serializes the writes of one spool file within the process
// (only one process sends at a time: the store is locked by it).
var spoolLocks sync.Map // path -> *sync.Mutex

// write stores raw as name: under the temporary name ".<name>.tmp", the
// same for every write of name, so that a write cut by a crash (kill -9)
// leaves no stray file once the message is sent again (random temporary
// names would pile up under kill -9).
func (s Spool) write(name string, raw []byte) (path string, err error) {
	path = filepath.Join(s.Dir, name)
	mu, _ := spoolLocks.LoadOrStore(path, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	tmp := filepath.Join(s.Dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("mail: spool: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("mail: spool: %w", err)
	}
	if _, err = f.Write(raw); err != nil {
		return "", fmt.Errorf("mail: spool: %w", err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("mail: spool: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("mail: spool: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("mail: spool: %w", err)
	}
	if d, derr := os.Open(s.Dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return path, nil
}

// headerMessageID returns the Message-ID header of raw ("" if none or the
// header block does not parse).
func headerMessageID(raw []byte) string {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	h, err := r.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	return strings.TrimSpace(h.Get("Message-Id"))
}

// spoolName maps a Message-ID to a stable, safe file name: a readable prefix
// of the ID (letters, digits, '.', '_', '-', '@'; at most 64 characters)
// and a hash of the whole ID, so distinct IDs never share a file. Without a
// Message-ID the hash of raw is used instead.
func spoolName(messageID string, raw []byte) string {
	id := strings.TrimSpace(messageID)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if id == "" {
		sum := sha256.Sum256(raw)
		return "sha256-" + hex.EncodeToString(sum[:16]) + ".eml"
	}
	var b strings.Builder
	for i := 0; i < len(id) && b.Len() < 64; i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '-', c == '@':
			b.WriteByte(c)
		case c == '.' && b.Len() > 0:
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(id))
	return b.String() + "-" + hex.EncodeToString(sum[:8]) + ".eml"
}
