package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"anprsec/domain"
)

// The register of installations (docs/rules.md#installation-register):
// which PC or server of a comune holds which workstation certificate, as
// its ALPs declare it (REGISTRA_INSTALLAZIONE). One record per
// certificate, keyed by the postazione's code (which a comune that changes
// its ISTAT code keeps, docs/rules.md#comune-renumbering):
//
//	ri/<code>/<SERIAL>   Installation
//
// Every change of a record is written with a history entry of kind
// InstallationKind whose key is the record's key and whose detail is
// Installation.Detail: VerifyInstallations checks that every record equals
// what its last entry says, so that a record edited without the history
// (by a holder of the store key) is found.

// InstallationKind is the history kind of the register's entries.
const InstallationKind = "installazione"

const installationPrefix = "ri/"

// Installation is one line of the register.
type Installation struct {
	Code    string    `json:"code"`
	Serial  string    `json:"serial"`
	Host    string    `json:"host"`
	Address string    `json:"address,omitempty"`
	Office  string    `json:"office,omitempty"`
	Note    string    `json:"note,omitempty"`
	By      string    `json:"by"` // who registered the last change
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Key is the history key of the record: <code>/<SERIAL>.
func (in *Installation) Key() string {
	return in.Code + "/" + strings.ToUpper(in.Serial)
}

// Detail is the history detail of the record's last change: every field
// an operator declares, in a fixed form.
func (in *Installation) Detail() string {
	return fmt.Sprintf("seriale=%s host=%q indirizzo=%q ufficio=%q note=%q",
		strings.ToUpper(in.Serial), in.Host, in.Address, in.Office, in.Note)
}

// Installation returns the record of certificate serial of postazione
// code (ErrNotFound when none).
func (tx *Tx) Installation(code, serial string) (*Installation, error) {
	var in Installation
	key := installationPrefix + code + "/" + strings.ToUpper(serial)
	if err := tx.get(key, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// PutInstallation stores a record of the register. The caller records
// its history entry (kind InstallationKind, key in.Key(), detail
// in.Detail()) in the same transaction.
func (tx *Tx) PutInstallation(in *Installation) error {
	in.Serial = strings.ToUpper(in.Serial)
	return tx.set(installationPrefix+in.Key(), in)
}

// InstallationsOfPostazione calls fn for each record of postazione code,
// in serial order.
func (tx *Tx) InstallationsOfPostazione(code string, fn func(*Installation) error) error {
	return tx.scan(installationPrefix+code+"/", true, func(k string, v []byte) (bool, error) {
		var in Installation
		if err := decode(k, v, &in); err != nil {
			return false, err
		}
		return true, fn(&in)
	})
}

// InstallationsOf calls fn for each record of the postazioni of comune
// istat (PostazioniOfComune), in the order of code and serial.
func (tx *Tx) InstallationsOf(istat string, fn func(*Installation) error) error {
	var codes []string
	if err := tx.PostazioniOfComune(istat, func(p *domain.Postazione) error {
		codes = append(codes, p.Code)
		return nil
	}); err != nil {
		return err
	}
	for _, code := range codes {
		if err := tx.InstallationsOfPostazione(code, fn); err != nil {
			return err
		}
	}
	return nil
}

// ErrRegisterAltered is wrapped by VerifyInstallations' error.
var ErrRegisterAltered = errors.New("installation register altered")

// VerifyInstallations checks the register against the history: each
// record must equal the detail, actor and time of the last history entry
// with its key, and each key the history names must have its record. It
// returns the number of records checked; the error lists every mismatch.
func (s *Store) VerifyInstallations() (int, error) {
	last := map[string]Entry{}
	if err := s.scanHistory(0, func(e *Entry) bool { return e.Kind == InstallationKind }, func(e *Entry) error {
		last[e.Key] = *e
		return nil
	}); err != nil {
		return 0, err
	}
	var bad []string
	n := 0
	err := s.View(func(tx *Tx) error {
		return tx.scan(installationPrefix, true, func(k string, v []byte) (bool, error) {
			var in Installation
			if err := decode(k, v, &in); err != nil {
				return false, err
			}
			n++
			key := in.Key()
			e, ok := last[key]
			delete(last, key)
			switch {
			case k != installationPrefix+key:
				bad = append(bad, fmt.Sprintf("%s: the record names %s", strings.TrimPrefix(k, installationPrefix), key))
			case !ok:
				bad = append(bad, key+": no history entry records it")
			case e.Detail != in.Detail() || e.Actor != in.By || !e.Time.Equal(in.Updated):
				bad = append(bad, fmt.Sprintf("%s: the record (%s, by %s) differs from its history entry %d (%s, by %s)",
					key, in.Detail(), in.By, e.Seq, e.Detail, e.Actor))
			}
			return true, nil
		})
	})
	if err != nil {
		return n, err
	}
	for key := range last {
		bad = append(bad, key+": recorded in the history, missing from the register")
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return n, fmt.Errorf("%w: %s", ErrRegisterAltered, strings.Join(bad, "; "))
	}
	return n, nil
}
