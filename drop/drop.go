// Package drop is the file exchange with the outside world: the folders
// where the ministry, the prefetture and the comuni drop their files and
// where anprsec publishes what it produces. The same layout (docs/rules.md#drops-and-receipts) lives
// under a local folder (the default) or an SFTP base path.
//
// Every path given to a Drop is slash-separated and relative to the drop
// root; Clean refuses anything that could leave the root.
package drop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
	"unicode"
)

// Entry is one directory entry as listed by a Drop.
type Entry struct {
	Name    string // base name
	Size    int64
	ModTime time.Time
	Dir     bool
	Regular bool // a regular file (not a symlink, device, ...)
}

// Drop is a file-exchange root. Implementations: Local (a folder) and
// sftpdrop.Drop (an SFTP server).
type Drop interface {
	// List returns the entries of dir, without following symlinks.
	// A missing dir is an empty list, not an error.
	List(ctx context.Context, dir string) ([]Entry, error)
	// Open opens a regular file for reading.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Write stores the content of r under name atomically: it is written
	// under a temporary name in the same folder and renamed into place,
	// replacing any previous file. Parent folders are created.
	Write(ctx context.Context, name string, r io.Reader) error
	// Rename moves a file, replacing the target; parent folders of the
	// target are created.
	Rename(ctx context.Context, from, to string) error
	// Stat describes one file, without following symlinks.
	Stat(ctx context.Context, name string) (Entry, error)
	// Remove deletes a file (used for abandoned temporary files).
	Remove(ctx context.Context, name string) error
	// String names the drop for messages (a folder or sftp://user@host/path).
	String() string
	Close() error
}

// ErrNotExist is returned (wrapped) when a file does not exist.
var ErrNotExist = fs.ErrNotExist

// ErrUnavailable is wrapped by the errors of a drop that does not answer
// (an SFTP server down, stalled or refusing the connection): a failure of
// the environment, never of the file asked for. Unavailable marks one.
var ErrUnavailable = errors.New("drop non disponibile")

// Unavailable returns err marked with ErrUnavailable, its message
// unchanged (nil for nil).
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailable{err}
}

type unavailable struct{ error }

func (u unavailable) Unwrap() []error { return []error{u.error, ErrUnavailable} }

// ErrUnsafePath is returned for a path that would leave the drop root.
var ErrUnsafePath = errors.New("percorso non sicuro")

// Clean checks and normalizes a drop-relative path. It refuses absolute
// paths, any ".." element, backslashes and control characters.
func Clean(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, `\`) {
		return "", fmt.Errorf("%w: %q", ErrUnsafePath, p)
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%w: %q contiene un carattere di controllo", ErrUnsafePath, p)
		}
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q", ErrUnsafePath, p)
		}
	}
	return path.Clean(p), nil
}

// TempName is the temporary name under which name is written before the
// rename; readers skip it (it starts with a dot and ends in .tmp). It is
// the same for every write of name: a write cut by a crash leaves it
// behind, and the next write of name (a receipt, a bundle or the CRL is
// written again until it is published) truncates and reuses it, so no
// abandoned temporary file stays in the drop. Writes of one name never
// run concurrently: a job never overlaps itself and one process holds the
// store.
func TempName(name string) string {
	dir, base := path.Split(name)
	return dir + "." + base + ".tmp"
}
