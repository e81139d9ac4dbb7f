//go:build !linux

package store

// ReleaseMapped is a no-op outside Linux (see mapped_linux.go).
func (s *Store) ReleaseMapped() {}

// residentFileBytes is unknown outside Linux.
func residentFileBytes() int64 { return 0 }
