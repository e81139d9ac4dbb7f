package store

import "time"

// Sighting is anprsec's own record of a file waiting in an input folder:
// the size and modification time it was last listed with, and when
// anprsec first saw it with them, by its own clock. A file is complete
// once it has been seen unchanged for drop.settle
// (docs/rules.md#drops-and-receipts); the record lets separate runs, and
// separate processes, count that time together.
type Sighting struct {
	Path  string    `json:"path"` // drop path
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"` // as the drop reported it (the server's clock)
	Since time.Time `json:"since"` // first seen with this size and mtime (anprsec's clock)
}

func sightingKey(path string) string { return "sg/" + path }

// Sighting returns the record of the file at a drop path (ErrNotFound when
// anprsec has not seen it waiting).
func (tx *Tx) Sighting(path string) (*Sighting, error) {
	var s Sighting
	return &s, tx.get(sightingKey(path), &s)
}

// PutSighting stores the record of a file seen waiting.
func (tx *Tx) PutSighting(s *Sighting) error { return tx.set(sightingKey(s.Path), s) }

// DeleteSighting forgets the file at a drop path, once it has left the
// input folder (absent is fine).
func (tx *Tx) DeleteSighting(path string) error { return tx.del(sightingKey(path)) }
