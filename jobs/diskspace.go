package jobs

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrLowDisk is returned when a file system anprsec writes to has less free
// space than min_free.
var ErrLowDisk = errors.New("spazio su disco insufficiente")

// CheckFreeSpace checks that the store's file system and the local drop's
// have at least min_free bytes free (docs/architecture.md, full disk): a job
// does not start below it, so that a full disk is a named failure before
// anything is written, not a write that kills the process (Badger writes
// through memory-mapped files, and a mapped write on a full disk is a
// SIGBUS). 0 disables the check.
func CheckFreeSpace(env *Env) error {
	floor := uint64(env.Config.MinFree)
	if floor == 0 {
		return nil
	}
	dirs := []string{env.Config.Path(env.Config.DataDir)}
	if env.Config.Drop.Type == "local" {
		dirs = append(dirs, env.Config.Path(env.Config.Drop.Local))
	}
	for _, d := range dirs {
		var fs syscall.Statfs_t
		if err := syscall.Statfs(d, &fs); err != nil {
			continue // a missing folder is for the job to report
		}
		free := fs.Bavail * uint64(fs.Bsize)
		if free < floor {
			return fmt.Errorf("%w: %s ha %s liberi, meno di min_free (%s): il job non parte finché non si libera spazio",
				ErrLowDisk, d, size(free), size(floor))
		}
	}
	return nil
}

func size(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d byte", b)
	}
}
