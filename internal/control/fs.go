package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// FS is the caller's side of the file system: the files a command reads
// from or writes for the person who runs it. Local is the process's own
// (the CLI without the daemon); a session's FS asks the client, which
// opens the files with the caller's permissions in the caller's folder.
type FS interface {
	// Lstat says whether path exists and whether it is a folder.
	Lstat(path string) (Info, error)
	// MkdirAll makes path and its parents.
	MkdirAll(path string, perm fs.FileMode) error
	// ReadFile reads a file of at most MaxRead bytes.
	ReadFile(path string) ([]byte, error)
	// Create starts a file that appears at path, complete, only when
	// committed: it is written to a temporary name in path's folder and
	// renamed into place (replacing a file already there).
	Create(path string, perm fs.FileMode) (File, error)
	// Stdin is the caller's standard input.
	Stdin() io.Reader
}

// File is a file being written by FS.Create.
type File interface {
	io.Writer
	// Commit syncs the file and renames it into place.
	Commit() error
	// Abort removes the temporary file; after Commit it does nothing.
	Abort()
}

// Info is what Lstat tells.
type Info struct {
	IsDir bool  `json:"is_dir"`
	Size  int64 `json:"size"`
}

// MaxRead bounds ReadFile (the frame carrying the bytes has some JSON
// around them, base64 makes them 4/3 larger).
const MaxRead = (MaxFrame - 4096) / 4 * 3

// Local is the process's own file system.
type Local struct {
	once  sync.Once
	stdin *bufio.Reader
}

// Lstat implements FS.
func (*Local) Lstat(path string) (Info, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return Info{}, err
	}
	return Info{IsDir: fi.IsDir(), Size: fi.Size()}, nil
}

// MkdirAll implements FS.
func (*Local) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// ReadFile implements FS.
func (*Local) ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRead+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxRead {
		return nil, fmt.Errorf("%s: più di %d byte", path, MaxRead)
	}
	return data, nil
}

// Create implements FS.
func (*Local) Create(path string, perm fs.FileMode) (File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return &localFile{f: tmp, path: path}, nil
}

// Stdin implements FS: the process's standard input, buffered once.
func (l *Local) Stdin() io.Reader {
	l.once.Do(func() { l.stdin = bufio.NewReader(os.Stdin) })
	return l.stdin
}

type localFile struct {
	f    *os.File
	path string
	err  error // the first write error
	done bool
}

func (lf *localFile) Write(p []byte) (int, error) {
	if lf.err != nil {
		return 0, lf.err
	}
	n, err := lf.f.Write(p)
	if err != nil {
		lf.err = err
	}
	return n, err
}

func (lf *localFile) Commit() error {
	if lf.done {
		return errors.New("control: file committed twice")
	}
	lf.done = true
	err := lf.err
	if err == nil {
		err = lf.f.Sync()
	}
	if cerr := lf.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(lf.f.Name(), lf.path)
	}
	if err != nil {
		os.Remove(lf.f.Name())
	}
	return err
}

func (lf *localFile) Abort() {
	if lf.done {
		return
	}
	lf.done = true
	lf.f.Close()
	os.Remove(lf.f.Name())
}
