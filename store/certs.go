package store

import (
	"errors"
	"strings"
	"time"
)

// Key layout of certificate bundles:
//
//	b/<istat>/<stamp>          bundle     i/b-pending/<istat>/<stamp> while pending
//
// stamp is YYYYMMDD-HHMMSS in the config's time zone, the same as in the
// published file name.

// BundleState is the state of a certificate bundle.
type BundleState string

// States of a bundle.
const (
	BundlePending   BundleState = "pending"   // committed, ZIP not yet published
	BundlePublished BundleState = "published" // ZIP written to the drop
)

// BundleStampLayout is the time layout of a bundle stamp.
const BundleStampLayout = "20060102-150405"

// Bundle is one ZIP of newly issued certificates of a comune. It is created
// in the same transaction that makes its certificates ATTIVO, so a crash
// before publication leaves it pending and the next run publishes it.
type Bundle struct {
	ISTAT     string      `json:"istat"`
	Stamp     string      `json:"stamp"` // YYYYMMDD-HHMMSS, config time zone
	Codes     []string    `json:"codes"`
	State     BundleState `json:"state"`
	Created   time.Time   `json:"created"`
	Published time.Time   `json:"published,omitempty"`
	File      string      `json:"file,omitempty"` // drop path once published
}

// ID is the bundle's key tail: <istat>/<stamp>.
func (b *Bundle) ID() string { return b.ISTAT + "/" + b.Stamp }

func bundleIndexes(b *Bundle) []string {
	if b.State == BundlePending {
		return []string{"i/b-pending/" + b.ID()}
	}
	return nil
}

// Bundle returns a bundle by ID (<istat>/<stamp>).
func (tx *Tx) Bundle(id string) (*Bundle, error) {
	var b Bundle
	return &b, tx.get("b/"+id, &b)
}

// PutBundle stores a bundle and keeps the index of pending bundles.
func (tx *Tx) PutBundle(b *Bundle) error {
	var old []string
	if prev, err := tx.Bundle(b.ID()); err == nil {
		old = bundleIndexes(prev)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.setIndexes(old, bundleIndexes(b)); err != nil {
		return err
	}
	return tx.set("b/"+b.ID(), b)
}

// DeleteBundle removes a bundle and its pending index.
func (tx *Tx) DeleteBundle(id string) error {
	if err := tx.del("i/b-pending/" + id); err != nil {
		return err
	}
	return tx.del("b/" + id)
}

// NewBundle creates a pending bundle of codes for a comune, stamped with at
// in loc; when that stamp is taken (two bundles in one second, or the
// repeated hour of a DST change) the next free second is used.
func (tx *Tx) NewBundle(istat string, at time.Time, loc *time.Location, codes []string) (*Bundle, error) {
	if loc == nil {
		loc = time.UTC
	}
	t := at.In(loc).Truncate(time.Second)
	for {
		b := &Bundle{ISTAT: istat, Stamp: t.Format(BundleStampLayout), Codes: codes, State: BundlePending, Created: at.UTC()}
		ok, err := tx.exists("b/" + b.ID())
		if err != nil {
			return nil, err
		}
		if !ok {
			return b, tx.PutBundle(b)
		}
		t = t.Add(time.Second)
	}
}

// PendingBundles returns the IDs of the pending bundles, in key order.
func (tx *Tx) PendingBundles() ([]string, error) {
	ids, err := tx.indexTail("i/b-pending/")
	if err != nil {
		return nil, err
	}
	for i := range ids {
		ids[i] = strings.TrimSuffix(ids[i], "/")
	}
	return ids, nil
}
