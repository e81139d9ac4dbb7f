package drop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Local is a Drop on a local folder. Every operation resolves its path
// beneath the folder, so no path and no symlink (a symlinked file or
// folder anywhere in the tree) leads outside it: on Linux with openat2
// (beneath_linux.go), elsewhere through an os.Root on the folder.
type Local struct {
	Root string
}

// NewLocal returns a Drop rooted at folder root, creating it if needed.
func NewLocal(root string) (*Local, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("cartella del drop %s: %w", root, err)
	}
	return &Local{Root: root}, nil
}

// open checks name with Clean and opens the drop root; the caller closes it.
func (l *Local) open(name string) (*os.Root, string, error) {
	c, err := Clean(name)
	if err != nil {
		return nil, "", err
	}
	r, err := os.OpenRoot(l.Root)
	if err != nil {
		return nil, "", err
	}
	return r, c, nil
}

func toEntry(fi os.FileInfo) Entry {
	return Entry{Name: fi.Name(), Size: fi.Size(), ModTime: fi.ModTime(), Dir: fi.IsDir(), Regular: fi.Mode().IsRegular()}
}

// List implements Drop. Entries are sorted by name.
func (l *Local) List(_ context.Context, dir string) ([]Entry, error) {
	if c, err := Clean(dir); err != nil {
		return nil, err
	} else if es, err := l.listBeneath(c); !errors.Is(err, errNoBeneath) {
		return es, err
	}
	r, c, err := l.open(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(c)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(des, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		fi, err := de.Info() // lstat
		if err != nil {
			continue // vanished meanwhile
		}
		out = append(out, toEntry(fi))
	}
	return out, nil
}

// Stat implements Drop.
func (l *Local) Stat(_ context.Context, name string) (Entry, error) {
	if c, err := Clean(name); err != nil {
		return Entry{}, err
	} else if e, err := l.statBeneath(c); !errors.Is(err, errNoBeneath) {
		return e, err
	}
	r, c, err := l.open(name)
	if err != nil {
		return Entry{}, err
	}
	defer r.Close()
	fi, err := r.Lstat(c)
	if err != nil {
		return Entry{}, err
	}
	return toEntry(fi), nil
}

// Open implements Drop. It refuses anything but a regular file, so a
// symlink inside the drop is never read.
func (l *Local) Open(_ context.Context, name string) (io.ReadCloser, error) {
	if c, err := Clean(name); err != nil {
		return nil, err
	} else if f, err := l.openBeneath(name, c); !errors.Is(err, errNoBeneath) {
		return f, err
	}
	r, c, err := l.open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fi, err := r.Lstat(c)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: non è un file regolare", name)
	}
	f, err := r.Open(c)
	if err != nil {
		return nil, err
	}
	// Replaced by a symlink between the Lstat and the Open?
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, fmt.Errorf("%s: modificato durante l'apertura", name)
	}
	return f, nil
}

// Write implements Drop.
func (l *Local) Write(_ context.Context, name string, rd io.Reader) error {
	if c, err := Clean(name); err != nil {
		return err
	} else if err := l.writeBeneath(c, rd); !errors.Is(err, errNoBeneath) {
		if err != nil {
			return fmt.Errorf("scrittura di %s: %w", name, err)
		}
		return nil
	}
	r, c, err := l.open(name)
	if err != nil {
		return err
	}
	defer r.Close()
	dir := path.Dir(c)
	tmp := TempName(c)
	// Whatever is at the temporary name (a file left by a crash, or a
	// symlink someone planted to make this write land elsewhere) is
	// removed, not followed; the file is then created anew.
	if err := r.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("scrittura di %s: %w", name, err)
	}
	create := func() (*os.File, error) { return r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640) }
	f, err := create()
	if errors.Is(err, fs.ErrNotExist) {
		// The folder is made only when it is missing.
		if err := r.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		f, err = create()
	}
	if err != nil {
		return err
	}
	_, err = io.Copy(f, rd)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, c)
	}
	if err != nil {
		r.Remove(tmp)
		return fmt.Errorf("scrittura di %s: %w", name, err)
	}
	return syncDir(r, dir)
}

// Rename implements Drop.
func (l *Local) Rename(_ context.Context, from, to string) error {
	if cf, err := Clean(from); err != nil {
		return err
	} else if ct, err := Clean(to); err != nil {
		return err
	} else if err := l.renameBeneath(cf, ct); !errors.Is(err, errNoBeneath) {
		return err
	}
	r, cf, err := l.open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	ct, err := Clean(to)
	if err != nil {
		return err
	}
	err = r.Rename(cf, ct)
	if errors.Is(err, fs.ErrNotExist) {
		// The destination folder is made only when it is missing (when it
		// is the file that is missing, the rename fails again).
		if err := r.MkdirAll(path.Dir(ct), 0o750); err != nil {
			return err
		}
		err = r.Rename(cf, ct)
	}
	if err != nil {
		return err
	}
	return syncDir(r, path.Dir(ct))
}

// Remove implements Drop.
func (l *Local) Remove(_ context.Context, name string) error {
	if c, err := Clean(name); err != nil {
		return err
	} else if err := l.removeBeneath(c); !errors.Is(err, errNoBeneath) {
		return err
	}
	r, c, err := l.open(name)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Remove(c)
}

func (l *Local) String() string { return l.Root }

// Close implements Drop.
func (l *Local) Close() error { return nil }

func syncDir(r *os.Root, dir string) error {
	d, err := r.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Sync() // best effort: some filesystems refuse fsync on a directory
	return nil
}
