//go:build !linux

package store

// ReleaseMapped is a no-op outside Linux (see audit_linux.go).
func (s *Store) ReleaseMapped() {}
