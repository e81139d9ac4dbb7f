package bundle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/store"
)

// Entries reads and unseals the certificates of a bundle. A certificate
// that is not of the bundle's comune is an error: a comune's bundle, written
// to its folder, holds only its own (docs/rules.md#self-service).
func Entries(tx *store.Tx, s *store.Sealer, b *store.Bundle) ([]Entry, error) {
	entries := make([]Entry, 0, len(b.Codes))
	for _, c := range b.Codes {
		p, err := tx.Postazione(c)
		if err != nil {
			return nil, fmt.Errorf("postazione %s: %w", c, err)
		}
		if p.ISTAT != b.ISTAT {
			return nil, fmt.Errorf("postazione %s: del comune %s, non del comune %s del pacchetto", c, p.ISTAT, b.ISTAT)
		}
		p12, err := s.Open(p.P12Sealed, domain.P12SealContext(c))
		if err != nil {
			return nil, fmt.Errorf("postazione %s: P12: %w", c, err)
		}
		pw, err := s.Open(p.PasswordSealed, domain.PasswordSealContext(c))
		if err != nil {
			return nil, fmt.Errorf("postazione %s: password: %w", c, err)
		}
		entries = append(entries, Entry{Code: c, P12: p12, Password: string(pw)})
	}
	return entries, nil
}

// ErrNoCertificate is returned by WriteComune when the comune has no
// certificate in the state asked for.
var ErrNoCertificate = errors.New("nessun certificato da scaricare")

// WriteComune ("Scarica tutti") writes to dir one ZIP of the certificates
// of comune istat in state (ATTIVO when empty), in the format of the
// certificati job's bundles (<code>.p12 and password.txt), named
// <ISTAT>-certificati-<YYYYMMDD-HHMMSS>.zip with now in loc. The ZIP is
// built and verified by export/bundle, written to a temporary name with
// mode 0600 (it holds the passwords) and renamed. It returns the path and
// the number of certificates; with none it writes nothing.
func WriteComune(ctx context.Context, st *store.Store, s *store.Sealer, istat string, state domain.CertState, dir string, now time.Time, loc *time.Location) (string, int, error) {
	if s == nil {
		return "", 0, errors.New("manca la chiave di sigillo (keys.seal): i certificati non si possono aprire (eseguire `anprsec init`)")
	}
	if state == "" {
		state = domain.CertAttivo
	}
	if loc == nil {
		loc = time.UTC
	}
	istat = strings.TrimSpace(istat)
	var entries []Entry
	err := st.View(func(tx *store.Tx) error {
		ps, err := lifecycle.PostazioniOf(tx, istat, state)
		if err != nil {
			return err
		}
		codes := make([]string, 0, len(ps))
		for _, p := range ps {
			if len(p.P12Sealed) == 0 {
				continue // no certificate issued (yet)
			}
			codes = append(codes, p.Code)
		}
		entries, err = Entries(tx, s, &store.Bundle{ISTAT: istat, Codes: codes})
		return err
	})
	if err != nil {
		return "", 0, err
	}
	if len(entries) == 0 {
		return "", 0, fmt.Errorf("%w: il comune %s non ha certificati nello stato %s", ErrNoCertificate, istat, state)
	}
	now = now.In(loc)
	data, err := Build(ctx, entries, now)
	if err != nil {
		return "", 0, err
	}
	if err := Verify(data, entries); err != nil {
		return "", 0, err
	}
	name := path.Base(Path(istat, now.Format("20060102-150405")))
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", 0, err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return "", 0, err
	}
	if _, err := f.Write(data); err != nil {
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	// Never replace an earlier bundle (one of the same second included):
	// link the finished file under the first free name, then drop the
	// temporary name.
	base := strings.TrimSuffix(name, ".zip")
	for i := 1; ; i++ {
		dst := filepath.Join(dir, name)
		if i > 1 {
			dst = filepath.Join(dir, fmt.Sprintf("%s-%d.zip", base, i))
		}
		err := os.Link(tmp, dst)
		if errors.Is(err, os.ErrExist) && i < 1000 {
			continue
		}
		if err != nil {
			return "", 0, err
		}
		os.Remove(tmp)
		ok = true
		return dst, len(entries), nil
	}
}
