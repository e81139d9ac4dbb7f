package drop

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Folder is a drop folder that a job reads or writes.
type Folder struct {
	Path string
	// Input: partners drop files here, so it must exist (`anprsec drop
	// prepara` creates it); the job writes receipts and moves files in it.
	Input bool
}

// Report is what Verify found. It holds no secret.
type Report struct {
	Drop    string    `json:"drop"`
	Checked time.Time `json:"checked"`
	Folders int       `json:"folders"` // folders checked
	// Error says why the drop could not be checked: the connection, the
	// host key, the login.
	Error string `json:"error,omitempty"`
	// Base says what is wrong with the base path itself: it does not
	// exist, is not a folder, or takes no files. The daemon refuses to
	// start on it.
	Base string `json:"base,omitempty"`
	// NotWritable are the folders where no file can be written, each
	// "<folder>/: <why>".
	NotWritable []string `json:"not_writable,omitempty"`
	// Missing are the input folders that do not exist: nothing can be
	// dropped there.
	Missing []string `json:"missing,omitempty"`
}

// OK reports whether nothing is wrong.
func (r *Report) OK() bool {
	return r.Error == "" && r.Base == "" && len(r.NotWritable) == 0 && len(r.Missing) == 0
}

// MaxListed is how many folders of each kind Problems names before it
// counts the rest.
const MaxListed = 10

// Problems describes what is wrong, one line each: the drop unusable,
// the folders that cannot be written, the missing input folders (at most
// MaxListed of each kind named).
func (r *Report) Problems() []string {
	if r.Error != "" {
		return []string{"drop " + r.Drop + ": non si può verificare: " + r.Error}
	}
	if r.Base != "" {
		return []string{"drop " + r.Drop + ": percorso base sbagliato: " + r.Base}
	}
	var out []string
	list := func(what string, items []string) {
		for i, it := range items {
			if i == MaxListed {
				out = append(out, fmt.Sprintf("drop %s: ... e altre %d %s", r.Drop, len(items)-MaxListed, what))
				break
			}
			out = append(out, fmt.Sprintf("drop %s: %s %s", r.Drop, what, it))
		}
	}
	list("non scrivibile:", r.NotWritable)
	list("cartella di ingresso mancante (la crea anprsec drop prepara):", r.Missing)
	return out
}

// verifyWorkers is how many folders are checked at once: over SFTP each
// check is a few round trips.
const verifyWorkers = 16

// Verify checks the drop: that it answers (for SFTP: the connection, the
// host key and the login), that its base folder exists, and then each
// folder: an input folder must exist, and files must be written in every
// folder (CheckWritable: in the folder, or where it would be created).
// It stops at the first failure that is not about one folder.
func Verify(ctx context.Context, d Drop, folders []Folder, now time.Time) *Report {
	r := &Report{Checked: now.UTC()}
	err := CheckBase(ctx, d)
	r.Drop = d.String() // once connected, an SFTP drop names its server
	switch {
	case errors.Is(err, ErrBadBase):
		r.Base = err.Error()
		return r
	case err != nil:
		r.Error = err.Error()
		return r
	}
	if _, err := CheckWritable(ctx, d, "."); err != nil {
		if _, serr := d.Stat(ctx, "."); serr != nil {
			r.Error = serr.Error()
		} else {
			r.Base = "non vi si può scrivere alcun file: " + err.Error()
		}
		return r
	}
	var (
		mu    sync.Mutex
		fatal error
		wg    sync.WaitGroup
	)
	work := make(chan Folder)
	for range min(verifyWorkers, max(len(folders), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				missing, werr, err := checkFolder(ctx, d, f)
				mu.Lock()
				switch {
				case err != nil:
					if fatal == nil {
						fatal = err
					}
				case missing:
					r.Missing = append(r.Missing, f.Path+"/")
				case werr != nil:
					r.NotWritable = append(r.NotWritable, f.Path+"/: "+werr.Error())
				}
				r.Folders++
				mu.Unlock()
			}
		}()
	}
	for _, f := range folders {
		mu.Lock()
		stop := fatal != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		work <- f
	}
	close(work)
	wg.Wait()
	if fatal == nil {
		fatal = ctx.Err()
	}
	if fatal != nil {
		r.Error = fatal.Error()
	}
	sort.Strings(r.Missing)
	sort.Strings(r.NotWritable)
	return r
}

// checkFolder checks one folder: missing says an input folder does not
// exist, werr why no file can be written in it; err is a failure of the
// drop itself (the connection), which ends the verification.
func checkFolder(ctx context.Context, d Drop, f Folder) (missing bool, werr, err error) {
	if f.Input {
		e, err := d.Stat(ctx, f.Path)
		switch {
		case errors.Is(err, ErrNotExist):
			return true, nil, nil
		case err != nil:
			return false, nil, err
		case !e.Dir:
			return false, fmt.Errorf("%s non è una cartella", f.Path), nil
		}
	}
	if _, werr := CheckWritable(ctx, d, f.Path); werr != nil {
		if _, serr := d.Stat(ctx, "."); serr != nil && !errors.Is(serr, ErrNotExist) {
			return false, nil, serr // the drop went away meanwhile
		}
		return false, werr, nil
	}
	return false, nil, nil
}
