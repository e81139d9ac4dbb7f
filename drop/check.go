package drop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
)

// ProbeName begins the name of the file written and removed to check that
// a folder takes files (".anprsec-prova-<folder>"). It starts with a dot,
// so no reader of the drop takes it for an input.
const ProbeName = ".anprsec-prova"

// ErrBadBase is returned (wrapped) when the drop's root folder (an SFTP
// drop's base path) does not exist or is not a folder.
var ErrBadBase = errors.New("percorso base sbagliato")

// CheckBase checks that the drop answers and that its root is a folder.
// An error that does not wrap ErrBadBase is one of the connection.
func CheckBase(ctx context.Context, d Drop) error {
	e, err := d.Stat(ctx, ".")
	switch {
	case errors.Is(err, ErrNotExist):
		return fmt.Errorf("%s: %w: la cartella non esiste", d, ErrBadBase)
	case err != nil:
		return err
	case e.Regular:
		return fmt.Errorf("%s: %w: è un file, non una cartella", d, ErrBadBase)
	}
	return nil
}

// CheckWritable checks that a file can be written in folder dir: it
// writes a probe file (ProbeName-<base name of dir>, so that checks of
// different folders never share a name) and removes it, in dir when dir
// exists, else in the
// nearest folder above it that exists (a write in dir creates the folders
// missing below that one). It returns the folder it wrote in. The drop's
// root must exist (CheckBase): nothing is ever created above it.
func CheckWritable(ctx context.Context, d Drop, dir string) (string, error) {
	at, probe, err := WritableProbe(ctx, d, dir)
	if err != nil {
		return at, err
	}
	return at, Probe(ctx, d, at, probe)
}

// WritableProbe returns where CheckWritable writes its probe for folder
// dir: the folder (dir, or the nearest existing one above it) and the
// probe's path. Two folders with the same probe path are checked by one
// probe.
func WritableProbe(ctx context.Context, d Drop, dir string) (at, probe string, err error) {
	dir, err = Clean(dir)
	if err != nil {
		return "", "", err
	}
	at = dir
	for {
		e, err := d.Stat(ctx, at)
		if err == nil {
			if !e.Dir {
				return at, "", fmt.Errorf("%s non è una cartella", at)
			}
			break
		}
		if !errors.Is(err, ErrNotExist) {
			return at, "", err
		}
		if at == "." {
			return at, "", fmt.Errorf("%s: %w: la cartella non esiste", d, ErrBadBase)
		}
		at = path.Dir(at)
	}
	name := path.Base(dir)
	if name == "." {
		name = "base"
	}
	return at, path.Join(at, ProbeName+"-"+name), nil
}

// Probe writes the probe file probe (of WritableProbe) and removes it; at
// is its folder.
func Probe(ctx context.Context, d Drop, at, probe string) error {
	if err := d.Write(ctx, probe, bytes.NewReader([]byte("anprsec\n"))); err != nil {
		return fmt.Errorf("impossibile scrivere in %s: %w", at, err)
	}
	if err := d.Remove(ctx, probe); err != nil {
		return fmt.Errorf("impossibile rimuovere %s: %w", probe, err)
	}
	return nil
}

// Prepare creates the input folders among folders that do not exist yet,
// after checking the base path (nothing is ever created above it). A
// folder is made by writing a probe file in it and removing it (a write
// creates the folders missing on its way). It returns the folders it
// created; running it again creates nothing.
func Prepare(ctx context.Context, d Drop, folders []Folder) ([]string, error) {
	if err := CheckBase(ctx, d); err != nil {
		return nil, err
	}
	var created []string
	for _, f := range folders {
		if !f.Input {
			continue
		}
		e, err := d.Stat(ctx, f.Path)
		switch {
		case err == nil && e.Dir:
			continue
		case err == nil:
			return created, fmt.Errorf("%s non è una cartella", f.Path)
		case !errors.Is(err, ErrNotExist):
			return created, err
		}
		probe := path.Join(f.Path, ProbeName+"-"+path.Base(f.Path))
		if err := d.Write(ctx, probe, bytes.NewReader([]byte("anprsec\n"))); err != nil {
			return created, fmt.Errorf("creazione di %s/: %w", f.Path, err)
		}
		if err := d.Remove(ctx, probe); err != nil {
			return created, fmt.Errorf("creazione di %s/: %w", f.Path, err)
		}
		created = append(created, f.Path+"/")
	}
	return created, nil
}
