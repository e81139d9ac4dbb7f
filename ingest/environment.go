package ingest

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"anprsec/drop"
	"anprsec/store"
)

// Environmental reports whether err is a failure of the environment that
// a later run may not meet: a full or read-only disk, an I/O error, a
// drop that does not answer (drop.ErrUnavailable, a network error), the
// process running out of files or memory, a stop. Such a failure is
// retried at every run and never costs the file an attempt; any other
// failure of a processor is taken to come from the file's content, and
// counts (see Inbox.MaxAttempts).
func Environmental(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, drop.ErrUnavailable) || store.Unavailable(err) {
		return true
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS, syscall.ENOMEM,
			syscall.EMFILE, syscall.ENFILE, syscall.EACCES, syscall.EPERM, syscall.EAGAIN,
			syscall.ETIMEDOUT, syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
			syscall.EPIPE, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN:
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne)
}
