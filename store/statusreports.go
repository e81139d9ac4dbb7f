package store

import (
	"errors"
	"strings"
	"time"
)

// Key layout of status reports (the STATO console request,
// docs/rules.md#self-service):
//
//	sr/<istat>/<stamp>          report     i/sr-pending/<istat>/<stamp> while pending
//
// stamp is YYYYMMDD-HHMMSS in the config's time zone, the same as in the
// published file names.

// StatusReport is one STATO report asked by an operator of a comune. It is
// created, pending, in the transaction of the request's row, and published
// (built from the store, written to the drop) after it: a crash before
// publication leaves it pending and the next run publishes it.
type StatusReport struct {
	ISTAT    string `json:"istat"`
	Stamp    string `json:"stamp"` // YYYYMMDD-HHMMSS, config time zone
	Operator string `json:"operator"`
	// What the operator's profiles show (lifecycle.StatusView).
	Utenze     bool        `json:"utenze,omitempty"`
	Postazioni bool        `json:"postazioni,omitempty"`
	State      BundleState `json:"state"` // BundlePending, BundlePublished
	Created    time.Time   `json:"created"`
	Published  time.Time   `json:"published,omitempty"`
	Files      []string    `json:"files,omitempty"` // drop paths once published
}

// ID is the report's key tail: <istat>/<stamp>.
func (r *StatusReport) ID() string { return r.ISTAT + "/" + r.Stamp }

func statusReportIndexes(r *StatusReport) []string {
	if r.State == BundlePending {
		return []string{"i/sr-pending/" + r.ID()}
	}
	return nil
}

// StatusReport returns a status report by ID (<istat>/<stamp>).
func (tx *Tx) StatusReport(id string) (*StatusReport, error) {
	var r StatusReport
	return &r, tx.get("sr/"+id, &r)
}

// PutStatusReport stores a status report and keeps the index of pending
// ones.
func (tx *Tx) PutStatusReport(r *StatusReport) error {
	var old []string
	if prev, err := tx.StatusReport(r.ID()); err == nil {
		old = statusReportIndexes(prev)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.setIndexes(old, statusReportIndexes(r)); err != nil {
		return err
	}
	return tx.set("sr/"+r.ID(), r)
}

// NewStatusReport creates a pending status report of r.ISTAT stamped with
// at in loc; when that stamp is taken the next free second is used.
func (tx *Tx) NewStatusReport(r *StatusReport, at time.Time, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	t := at.In(loc).Truncate(time.Second)
	for {
		r.Stamp, r.State, r.Created = t.Format(BundleStampLayout), BundlePending, at.UTC()
		ok, err := tx.exists("sr/" + r.ID())
		if err != nil {
			return err
		}
		if !ok {
			return tx.PutStatusReport(r)
		}
		t = t.Add(time.Second)
	}
}

// PendingStatusReports returns the IDs of the pending status reports, in
// key order.
func (tx *Tx) PendingStatusReports() ([]string, error) {
	ids, err := tx.indexTail("i/sr-pending/")
	if err != nil {
		return nil, err
	}
	for i := range ids {
		ids[i] = strings.TrimSuffix(ids[i], "/")
	}
	return ids, nil
}

// DeleteStatusReport removes a status report and its pending index.
func (tx *Tx) DeleteStatusReport(id string) error {
	if err := tx.del("i/sr-pending/" + id); err != nil {
		return err
	}
	return tx.del("sr/" + id)
}
