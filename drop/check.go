package drop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
)

// ProbeName is the file written and removed to check that a folder takes
// files. Its name starts with a dot, so no reader of the drop takes it
// for an input.
const ProbeName = ".anprsec-prova"

// ErrNoBase is returned (wrapped) when the drop's root folder (an SFTP
// drop's base path) does not exist.
var ErrNoBase = errors.New("the drop's base folder does not exist")

// CheckBase checks that the drop answers and that its root is a folder.
func CheckBase(ctx context.Context, d Drop) error {
	e, err := d.Stat(ctx, ".")
	switch {
	case errors.Is(err, ErrNotExist):
		return fmt.Errorf("%s: %w (check the base path)", d, ErrNoBase)
	case err != nil:
		return err
	case e.Regular:
		return fmt.Errorf("%s: the base path is a file, not a folder", d)
	}
	return nil
}

// CheckWritable checks that a file can be written in folder dir: it
// writes ProbeName and removes it in dir when dir exists, else in the
// nearest folder above it that exists (a write in dir creates the folders
// missing below that one). It returns the folder it wrote in. The drop's
// root must exist (CheckBase): nothing is ever created above it.
func CheckWritable(ctx context.Context, d Drop, dir string) (string, error) {
	dir, err := Clean(dir)
	if err != nil {
		return "", err
	}
	at := dir
	for {
		e, err := d.Stat(ctx, at)
		if err == nil {
			if !e.Dir {
				return at, fmt.Errorf("%s is not a folder", at)
			}
			break
		}
		if !errors.Is(err, ErrNotExist) {
			return at, err
		}
		if at == "." {
			return at, fmt.Errorf("%s: %w", d, ErrNoBase)
		}
		at = path.Dir(at)
	}
	probe := path.Join(at, ProbeName)
	if err := d.Write(ctx, probe, bytes.NewReader([]byte("anprsec\n"))); err != nil {
		return at, fmt.Errorf("cannot write in %s: %w", at, err)
	}
	if err := d.Remove(ctx, probe); err != nil {
		return at, fmt.Errorf("cannot remove %s: %w", probe, err)
	}
	return at, nil
}
