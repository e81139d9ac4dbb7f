package drop

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Local is a Drop on a local folder.
type Local struct {
	Root string
}

// NewLocal returns a Drop rooted at folder root, creating it if needed.
func NewLocal(root string) (*Local, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("drop folder %s: %w", root, err)
	}
	return &Local{Root: root}, nil
}

func (l *Local) path(name string) (string, error) {
	c, err := Clean(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.Root, filepath.FromSlash(c)), nil
}

func toEntry(fi os.FileInfo) Entry {
	return Entry{Name: fi.Name(), Size: fi.Size(), ModTime: fi.ModTime(), Dir: fi.IsDir(), Regular: fi.Mode().IsRegular()}
}

// List implements Drop.
func (l *Local) List(_ context.Context, dir string) ([]Entry, error) {
	p, err := l.path(dir)
	if err != nil {
		return nil, err
	}
	des, err := os.ReadDir(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			continue // vanished meanwhile
		}
		out = append(out, toEntry(fi))
	}
	return out, nil
}

// Stat implements Drop.
func (l *Local) Stat(_ context.Context, name string) (Entry, error) {
	p, err := l.path(name)
	if err != nil {
		return Entry{}, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return Entry{}, err
	}
	return toEntry(fi), nil
}

// Open implements Drop. It refuses anything but a regular file, so a
// symlink inside the drop never leads outside it.
func (l *Local) Open(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	return os.Open(p)
}

// Write implements Drop.
func (l *Local) Write(_ context.Context, name string, r io.Reader) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp, err := l.path(TempName(name))
	if err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return syncDir(filepath.Dir(p))
}

// Rename implements Drop.
func (l *Local) Rename(_ context.Context, from, to string) error {
	pf, err := l.path(from)
	if err != nil {
		return err
	}
	pt, err := l.path(to)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(pt), 0o750); err != nil {
		return err
	}
	if err := os.Rename(pf, pt); err != nil {
		return err
	}
	return syncDir(filepath.Dir(pt))
}

// Remove implements Drop.
func (l *Local) Remove(_ context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

func (l *Local) String() string { return l.Root }

// Close implements Drop.
func (l *Local) Close() error { return nil }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Sync() // best effort: some filesystems refuse fsync on a directory
	return nil
}
