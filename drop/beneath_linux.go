package drop

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux a Local resolves each path with one openat2 call confined to
// the drop root (RESOLVE_BENEATH: no "..", no absolute symlink, no
// symlink whose target leaves the root) and acts on the last element with
// the *at system calls, never following a symlink there. os.Root, used
// elsewhere (and here when the kernel has no openat2), gives the same
// guarantees by opening every folder of the path in turn: for each
// request file of ingest-richieste at Italy scale, some 270 system calls
// against 126 this way (docs/architecture.md, "Outside libraries").

// beneathOff is set once openat2 is found missing (Linux before 5.6, or a
// seccomp filter refusing it): every Local then uses os.Root.
var beneathOff atomic.Bool

const beneathResolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// beneathTries bounds the retries of an openat2 interrupted or asked to
// try again.
const beneathTries = 16

// errEscapes is the error of a path that would leave the drop root.
var errEscapes = errors.New("path escapes from parent")

// errNoBeneath reports that openat2 is not available.
var errNoBeneath = errors.New("openat2 non disponibile")

// beneathDir opens folder dir (clean, relative to the drop root) for the
// *at calls, resolved beneath the root; the caller closes it.
func (l *Local) beneathDir(dir string) (int, error) {
	if beneathOff.Load() {
		return -1, errNoBeneath
	}
	root, err := unix.Open(l.Root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: l.Root, Err: err}
	}
	if dir == "." {
		return root, nil
	}
	defer unix.Close(root)
	var fd int
	// openat2 answers EAGAIN to a path through ".." while a rename runs
	// anywhere on the system; a path that keeps failing so is left to
	// os.Root for this call.
	for range beneathTries {
		fd, err = unix.Openat2(root, dir, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneathResolve})
		if err != unix.EINTR && err != unix.EAGAIN {
			break
		}
	}
	switch {
	case err == unix.EINTR || err == unix.EAGAIN:
		return -1, errNoBeneath
	case err == unix.ENOSYS || err == unix.EPERM:
		beneathOff.Store(true)
		return -1, errNoBeneath
	case err == unix.EXDEV:
		// RESOLVE_BENEATH refuses a path that leaves the root with
		// EXDEV: said as os.Root says it.
		return -1, &fs.PathError{Op: "openat2", Path: dir, Err: errEscapes}
	case err != nil:
		return -1, &fs.PathError{Op: "openat2", Path: dir, Err: err}
	}
	return fd, nil
}

// beneathFolder is beneathDir making the folder first when it is missing
// (through os.Root, which makes each folder beneath the root).
func (l *Local) beneathFolder(dir string) (int, error) {
	fd, err := l.beneathDir(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return fd, err
	}
	r, err := os.OpenRoot(l.Root)
	if err != nil {
		return -1, err
	}
	err = r.MkdirAll(dir, 0o750)
	r.Close()
	if err != nil {
		return -1, err
	}
	return l.beneathDir(dir)
}

// unlinkAt removes the entry leaf of folder dfd, a file or an empty
// folder (as os.Remove does), never following a symlink.
func unlinkAt(dfd int, leaf string) error {
	err := unix.Unlinkat(dfd, leaf, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(dfd, leaf, unix.AT_REMOVEDIR)
	}
	return err
}

// split returns the folder and the last element of a clean path that is
// not the root itself.
func split(c string) (dir, leaf string) {
	return path.Dir(c), path.Base(c)
}

func entryOf(name string, st *unix.Stat_t) Entry {
	mode := st.Mode & unix.S_IFMT
	return Entry{
		Name: name, Size: st.Size, ModTime: time.Unix(st.Mtim.Unix()),
		Dir: mode == unix.S_IFDIR, Regular: mode == unix.S_IFREG,
	}
}

func (l *Local) listBeneath(c string) ([]Entry, error) {
	fd, err := l.beneathDir(c)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), c)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // vanished meanwhile
		}
		out = append(out, entryOf(n, &st))
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (l *Local) statBeneath(c string) (Entry, error) {
	dir, leaf := split(c)
	fd, err := l.beneathDir(dir)
	if err != nil {
		return Entry{}, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstatat(fd, leaf, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Entry{}, &fs.PathError{Op: "lstat", Path: c, Err: err}
	}
	return entryOf(leaf, &st), nil
}

func (l *Local) openBeneath(name, c string) (io.ReadCloser, error) {
	dir, leaf := split(c)
	dfd, err := l.beneathDir(dir)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, leaf, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: c, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: non è un file regolare", name)
	}
	// O_NONBLOCK: a FIFO put in place since the check does not block the
	// open; the identity check below refuses it.
	fd, err := unix.Openat(dfd, leaf, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "openat", Path: c, Err: err}
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: modificato durante l'apertura", name)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), c), nil
}

// writeBeneath is Write: the file is written under its temporary name
// (TempName), synced, renamed into place, and its folder synced; the
// folder is made when it is missing.
func (l *Local) writeBeneath(c string, rd io.Reader) error {
	dir, leaf := split(c)
	dfd, err := l.beneathFolder(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp := path.Base(TempName(c))
	create := func() (int, error) {
		return unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o640)
	}
	fd, err := create()
	if err == unix.EEXIST {
		// Whatever is at the temporary name (a file left by a crash, or
		// a symlink planted to make this write land elsewhere) is
		// removed, not followed; the file is then created anew.
		if err := unlinkAt(dfd, tmp); err != nil && err != unix.ENOENT {
			return &fs.PathError{Op: "unlinkat", Path: c, Err: err}
		}
		fd, err = create()
	}
	if err != nil {
		return &fs.PathError{Op: "openat", Path: c, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = io.Copy(f, rd)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = unix.Renameat(dfd, tmp, dfd, leaf); err != nil {
			err = &fs.PathError{Op: "renameat", Path: c, Err: err}
		}
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	unix.Fsync(dfd) // best effort, as syncDir
	return nil
}

func (l *Local) renameBeneath(cf, ct string) error {
	fromDir, fromLeaf := split(cf)
	toDir, toLeaf := split(ct)
	// The destination folder first, made when missing, as the os.Root
	// path makes it.
	tfd, err := l.beneathFolder(toDir)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	ffd, err := l.beneathDir(fromDir)
	if err != nil {
		return err
	}
	defer unix.Close(ffd)
	if err := unix.Renameat(ffd, fromLeaf, tfd, toLeaf); err != nil {
		return &fs.PathError{Op: "renameat", Path: cf, Err: err}
	}
	unix.Fsync(tfd) // best effort, as syncDir
	return nil
}

func (l *Local) removeBeneath(c string) error {
	dir, leaf := split(c)
	fd, err := l.beneathDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unlinkAt(fd, leaf); err != nil {
		return &fs.PathError{Op: "unlinkat", Path: c, Err: err}
	}
	return nil
}
