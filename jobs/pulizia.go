package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/export/bundle"
	"anprsec/store"
)

// PuliziaActor is the history actor of the pulizia job.
const PuliziaActor = "pulizia"

// puliziaPendingMeta is the store key of the file being deleted: set
// before the removal, cleared with its history entry.
const puliziaPendingMeta = "pulizia-in-corso"

// puliziaJob runs daily (docs/rules.md#retention): it deletes from the
// drop the files kept past their retention, by their modification time:
//
//   - in elaborati/, scartati/ and esiti/ of every input folder (the
//     census, every prefettura's consegne/, every censused comune's
//     richieste/), older than pulizia.retention_days;
//   - the certificate bundles (*.zip) of every censused comune
//     (comuni/<ISTAT>/certificati/), older than pulizia.certificati_days.
//
// Each deletion is recorded in the history (file.eliminato: the name, the
// SHA-256 and the size, never the content). One file at a time: its name,
// hash, size and time are committed as pending, the file is removed, then
// the pending mark is cleared with the history entry, in one transaction.
// A crash in between leaves the mark, and the next run finishes that file
// first (removing it if it is still the same file, recording it once). A
// run deletes at most pulizia.max_files files, oldest first, and records
// how many are left (rimanenti) for the next one.
var puliziaJob = Job{
	Name:        "pulizia",
	Description: "deletes from the drop the processed, refused and receipt files and the certificate bundles kept past their retention, recording each in the history",
	Run:         runPulizia,
}

// puliziaFile is a file to delete.
type puliziaFile struct {
	Name    string    `json:"name"` // drop path
	SHA256  string    `json:"sha256,omitempty"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	Days    int       `json:"days"` // the retention it is past
}

// puliziaCrash, when set (tests), is called after each step of a deletion
// ("pending": the mark committed; "removed": the file gone); an error
// stops the run there, as a crash would.
var puliziaCrash func(step, name string) error

func runPulizia(ctx context.Context, env *Env, run *Run) error {
	if err := finishPending(ctx, env, run); err != nil {
		return err
	}
	var now time.Time
	if err := env.Store.View(func(tx *store.Tx) error { now = tx.Now; return nil }); err != nil {
		return err
	}
	old, err := oldFiles(ctx, env, now)
	if err != nil {
		return err
	}
	max := env.Config.Pulizia.MaxFiles
	done := 0
	for _, f := range old {
		if done == max {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := deleteOld(ctx, env, f); err != nil {
			run.Set("rimanenti", len(old)-done)
			return fmt.Errorf("pulizia: %s: %w", f.Name, err)
		}
		done++
		run.Add("eliminati", 1)
	}
	left := len(old) - done
	run.Set("rimanenti", left)
	if left > 0 {
		run.Log.Info("pulizia: files left for the next run", "deleted", done, "left", left)
	}
	return nil
}

// oldFiles lists the files past their retention at now, oldest first.
func oldFiles(ctx context.Context, env *Env, now time.Time) ([]puliziaFile, error) {
	folders, err := DropFolders(env)
	if err != nil {
		return nil, err
	}
	days := env.Config.Pulizia.RetentionDays
	type dir struct {
		path string
		days int
		ext  string // only names with this ending ("": any)
	}
	var dirs []dir
	for _, f := range folders {
		if f.Input {
			for _, sub := range []string{"elaborati", "scartati", "esiti"} {
				dirs = append(dirs, dir{path.Join(f.Path, sub), days, ""})
			}
		}
	}
	if err := env.Store.View(func(tx *store.Tx) error {
		return tx.Comuni(func(c *domain.Comune) error {
			dirs = append(dirs, dir{path.Dir(bundle.Path(c.ISTAT, "")), env.Config.Pulizia.CertificatiDays, ".zip"})
			return nil
		})
	}); err != nil {
		return nil, err
	}
	var out []puliziaFile
	seen := map[string]bool{}
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ok, err := realFolder(ctx, env.Drop, d.path, seen); err != nil {
			return nil, fmt.Errorf("pulizia: %s: %w", d.path, err)
		} else if !ok {
			continue
		}
		entries, err := env.Drop.List(ctx, d.path)
		if err != nil {
			return nil, fmt.Errorf("pulizia: %s: %w", d.path, err)
		}
		limit := now.AddDate(0, 0, -d.days)
		for _, e := range entries {
			if !e.Regular || strings.HasPrefix(e.Name, ".") || !strings.HasSuffix(e.Name, d.ext) || !e.ModTime.Before(limit) {
				continue
			}
			out = append(out, puliziaFile{Name: path.Join(d.path, e.Name), Size: e.Size, ModTime: e.ModTime, Days: d.days})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].ModTime.Equal(out[j].ModTime) {
			return out[i].ModTime.Before(out[j].ModTime)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// deleteOld hashes file f, commits it as pending, removes it and records
// it.
func deleteOld(ctx context.Context, env *Env, f puliziaFile) error {
	sum, size, err := hashFile(ctx, env.Drop, f.Name)
	if errors.Is(err, drop.ErrNotExist) {
		return nil // gone meanwhile: nothing was deleted by us
	}
	if err != nil {
		return err
	}
	if size != f.Size {
		return nil // being rewritten: not old any more
	}
	f.SHA256 = sum
	if ok, err := realFolder(ctx, env.Drop, path.Dir(f.Name), nil); err != nil || !ok {
		return err // turned into a symlink meanwhile: left alone
	}
	if err := env.Store.Update(func(tx *store.Tx) error { return tx.SetMeta(puliziaPendingMeta, &f) }); err != nil {
		return err
	}
	if err := crashPoint("pending", f.Name); err != nil {
		return err
	}
	if err := env.Drop.Remove(ctx, f.Name); err != nil && !errors.Is(err, drop.ErrNotExist) {
		return err
	}
	if err := crashPoint("removed", f.Name); err != nil {
		return err
	}
	return recordDeleted(env, &f, env.Loc)
}

// realFolder reports whether dir and every folder above it in the drop
// are folders, none a symlink (Drop.Stat describes a symlink, it does not
// follow it): pulizia deletes only in the folders themselves, never
// through a link a party put in place of one of them, even one leading
// to another folder of the drop (docs/rules.md#retention). seen, when not
// nil, keeps the answers for the paths already checked.
func realFolder(ctx context.Context, d drop.Drop, dir string, seen map[string]bool) (bool, error) {
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		ok, known := seen[p]
		if !known {
			e, err := d.Stat(ctx, p)
			if err != nil && !errors.Is(err, drop.ErrNotExist) {
				return false, err
			}
			ok = err == nil && e.Dir
			if seen != nil {
				seen[p] = ok
			}
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func crashPoint(step, name string) error {
	if puliziaCrash == nil {
		return nil
	}
	return puliziaCrash(step, name)
}

// finishPending completes a deletion a crash interrupted: the file still
// there and unchanged is removed; gone, it is recorded; changed (a new
// file under the name), it is left alone and the mark dropped.
func finishPending(ctx context.Context, env *Env, run *Run) error {
	var f puliziaFile
	err := env.Store.View(func(tx *store.Tx) error { return tx.Meta(puliziaPendingMeta, &f) })
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	e, err := env.Drop.Stat(ctx, f.Name)
	switch {
	case errors.Is(err, drop.ErrNotExist):
	case err != nil:
		return fmt.Errorf("pulizia: %s: %w", f.Name, err)
	case e.Size != f.Size || !e.ModTime.Equal(f.ModTime):
		return env.Store.Update(func(tx *store.Tx) error { return tx.DeleteMeta(puliziaPendingMeta) })
	default:
		if ok, err := realFolder(ctx, env.Drop, path.Dir(f.Name), nil); err != nil {
			return fmt.Errorf("pulizia: %s: %w", f.Name, err)
		} else if !ok {
			return env.Store.Update(func(tx *store.Tx) error { return tx.DeleteMeta(puliziaPendingMeta) })
		}
		if err := env.Drop.Remove(ctx, f.Name); err != nil && !errors.Is(err, drop.ErrNotExist) {
			return fmt.Errorf("pulizia: %s: %w", f.Name, err)
		}
	}
	if err := recordDeleted(env, &f, env.Loc); err != nil {
		return err
	}
	run.Add("eliminati", 1)
	return nil
}

// recordDeleted clears the pending mark of f and records its deletion.
func recordDeleted(env *Env, f *puliziaFile, loc *time.Location) error {
	return env.Store.Update(func(tx *store.Tx) error {
		if err := tx.DeleteMeta(puliziaPendingMeta); err != nil {
			return err
		}
		return tx.Record(store.Source{Actor: PuliziaActor, File: f.Name}, "file.eliminato", "file", f.Name,
			fmt.Sprintf("conservato oltre %d giorni (ultima modifica %s): sha256 %s, %d byte",
				f.Days, f.ModTime.In(loc).Format("02/01/2006 15:04"), f.SHA256, f.Size))
	})
}

// hashFile returns the SHA-256 (hex) and size of a drop file.
func hashFile(ctx context.Context, d drop.Drop, name string) (string, int64, error) {
	r, err := d.Open(ctx, name)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
