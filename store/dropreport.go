package store

import "errors"

// DropReportMeta is the meta key of the last check of the drop (the job
// runner and `anprsec drop verifica` write it; `status` and /healthz read
// it).
const DropReportMeta = "drop/verifica"

// DropReport reads the last check of the drop into r (a drop.Report); it
// reports false when none was recorded.
func (tx *Tx) DropReport(r any) (bool, error) {
	err := tx.Meta(DropReportMeta, r)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
