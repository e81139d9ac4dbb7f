package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// Socket modes: the folder lets the group through, the socket lets the
// group connect; others reach neither.
const (
	DirMode    fs.FileMode = 0o750
	SocketMode fs.FileMode = 0o660
)

// ErrLive is a socket a running daemon answers on: it is never taken.
var ErrLive = errors.New("un altro daemon anprsec è in ascolto su questo socket")

// Listen listens on the Unix socket at path, of group gid (-1: the
// process's own). It makes the socket's folder (DirMode, of the group;
// a shared folder such as /tmp, with its sticky bit, is refused), and
// replaces a stale socket, one that no process answers on, left by a
// daemon that was killed; a socket a live daemon answers on is refused
// (ErrLive), and so is any other file at path.
func Listen(path string, gid int) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("control.socket: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("control.socket: %w", err)
	} else if fi.Mode()&fs.ModeSticky != 0 {
		return nil, fmt.Errorf("control.socket %s: la cartella %s è condivisa (sticky bit): dai al socket una cartella sua", path, dir)
	}
	if err := os.Chmod(dir, DirMode); err != nil {
		return nil, fmt.Errorf("control.socket: %w", err)
	}
	if err := os.Lchown(dir, -1, gid); err != nil {
		return nil, fmt.Errorf("control.socket: cartella %s al gruppo %d: %w (l'utente del daemon deve far parte di control.group)", dir, gid, err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control.socket: %w", err)
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control.socket: %w", err)
	}
	if err := os.Lchown(path, -1, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control.socket: %s al gruppo %d: %w", path, gid, err)
	}
	return ln, nil
}

// removeStale removes a socket at path that no process answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control.socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control.socket %s: al suo posto c'è un file che non è un socket: non viene sostituito", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("control.socket %s: %w", path, ErrLive)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control.socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control.socket: socket abbandonato: %w", err)
	}
	return nil
}
