package jobs

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/pki/hsm"
	"anprsec/store"
)

// Rollover is what RollOverCA did.
type Rollover struct {
	Old, New *IssuerCA
	// Resumed: a rollover interrupted earlier was completed (its key and
	// files were used, not made again).
	Resumed bool
	// Made are the files and HSM keys made by this run.
	Made []string
	// CrossPath is the cross certificate's file.
	CrossPath string
}

// ErrRolledOver is returned when the CA was already renewed on the day.
var ErrRolledOver = errors.New("la CA è già stata rinnovata oggi")

// RollOverCA renews the CA (docs/rules.md#ca-rollover): a new key (a file
// beside pki.ca_key, or a key in the same HSM token; never one that
// exists), its self-signed certificate with the current CA's name, the
// cross certificate of the new key under the current CA, then, in one
// transaction, the switch: the new CA becomes the current one, with the
// history entry ca.rinnovo and its fingerprints. The steps before the
// switch change nothing that issues or signs: after a crash the current
// CA is still the old one, and a rerun resumes the rollover recorded as
// pending (same tag, same key and files) instead of making another key.
func RollOverCA(env *Env, src store.Source, now time.Time, bits int) (*Rollover, error) {
	loc := env.Loc
	if loc == nil {
		loc = time.UTC
	}
	old, err := CurrentCA(env)
	if err != nil {
		return nil, err
	}
	oldCA, err := old.Load()
	if err != nil {
		return nil, fmt.Errorf("la CA corrente: %w", err)
	}
	res := &Rollover{Old: old}
	tag, err := beginRollover(env, src, old, now.In(loc).Format("20060102"), &res.Resumed)
	if err != nil {
		return nil, err
	}
	certPath, keyRef, crossPath, err := CAFiles(env.Config, tag)
	if err != nil {
		return nil, err
	}
	res.CrossPath = crossPath
	signer, made, err := rolloverKey(keyRef, bits)
	if err != nil {
		return nil, fmt.Errorf("la chiave della nuova CA (%s): %w", keyRef, err)
	}
	if made {
		res.Made = append(res.Made, keyRef)
	}
	// valid from a few minutes before now, as certificates are: a relying
	// party whose clock is behind must not find the CA "not yet valid"
	newCert, made, err := rolloverCert(certPath, old.Cert, signer, now.Add(-pki.Backdate))
	if err != nil {
		return nil, fmt.Errorf("il certificato della nuova CA (%s): %w", certPath, err)
	}
	if made {
		res.Made = append(res.Made, certPath)
	}
	cross, made, err := rolloverCross(crossPath, oldCA, newCert)
	if err != nil {
		return nil, fmt.Errorf("il certificato incrociato (%s): %w", crossPath, err)
	}
	if made {
		res.Made = append(res.Made, crossPath)
	}
	res.New = &IssuerCA{Tag: tag, KeyID: pki.KeyID(newCert), Cert: newCert, Cross: cross, CertPath: certPath, KeyRef: keyRef, Current: true}
	if err := switchCA(env, src, old, res.New); err != nil {
		return nil, err
	}
	return res, nil
}

// beginRollover records the rollover as pending and returns its tag: the
// pending one's when a rollover was interrupted, else today's (refused
// when a CA of today exists).
func beginRollover(env *Env, src store.Source, old *IssuerCA, today string, resumed *bool) (string, error) {
	var tag string
	err := env.Store.Update(func(tx *store.Tx) error {
		reg, err := tx.CARegistry()
		if errors.Is(err, store.ErrNotFound) {
			reg = &store.CARegistry{Current: old.KeyID, CAs: []store.CARecord{{
				KeyID: old.KeyID, CertDER: old.Cert.Raw, Created: old.Cert.NotBefore, NotAfter: old.Cert.NotAfter,
			}}}
		} else if err != nil {
			return err
		}
		if reg.Pending != nil {
			tag, *resumed = reg.Pending.Tag, true
			return nil
		}
		for _, c := range reg.CAs {
			if c.Tag == today {
				return fmt.Errorf("%w (CA %s): un nuovo rinnovo si fa da domani", ErrRolledOver, c.KeyID)
			}
		}
		tag = today
		reg.Pending = &store.CARecord{Tag: tag, Created: tx.Now}
		if err := tx.PutCARegistry(reg); err != nil {
			return err
		}
		return tx.Record(src, "ca.rinnovo.avvio", "ca", tag,
			fmt.Sprintf("rinnovo della CA %s avviato: nuova CA %s", old.KeyID, tag))
	})
	return tag, err
}

// rolloverKey opens the new CA's key when an interrupted rollover made it,
// or makes it: a key file is never overwritten, an HSM key never replaced.
func rolloverKey(keyRef string, bits int) (crypto.Signer, bool, error) {
	if hsm.IsURI(keyRef) {
		u, err := hsm.ParseURI(keyRef)
		if err != nil {
			return nil, false, err
		}
		s, err := hsm.Open(u)
		if err == nil {
			return s, false, nil
		}
		if !errors.Is(err, hsm.ErrNoKey) {
			return nil, false, err
		}
		s, err = hsm.Generate(u, bits)
		return s, err == nil, err
	}
	if _, err := os.Lstat(keyRef); err == nil {
		s, err := pki.LoadKey(keyRef)
		return s, false, err
	}
	s, err := pki.NewFileKey(keyRef, bits)
	return s, err == nil, err
}

// rolloverCert reads the new CA's certificate left by an interrupted
// rollover (it must be the key's, with the old CA's name), or makes it.
func rolloverCert(certPath string, old *x509.Certificate, signer crypto.Signer, now time.Time) (*x509.Certificate, bool, error) {
	if _, err := os.Lstat(certPath); err == nil {
		c, err := pki.LoadCertFile(certPath)
		if err != nil {
			return nil, false, err
		}
		if _, err := pki.NewCA(c, signer); err != nil {
			return nil, false, fmt.Errorf("%w: rimuovere il certificato (non la chiave) e ripetere", err)
		}
		if string(c.RawSubject) != string(old.RawSubject) {
			return nil, false, errors.New("il certificato non ha il nome della CA corrente: rimuoverlo (non la chiave) e ripetere")
		}
		return c, false, nil
	}
	ca, err := pki.NewRolloverCA(old, signer, now)
	if err != nil {
		return nil, false, err
	}
	if err := pki.WriteNewFile(certPath, pki.CertificatePEM(ca.Cert), 0o644); err != nil {
		return nil, false, err
	}
	return ca.Cert, true, nil
}

// rolloverCross reads the cross certificate left by an interrupted
// rollover (it must certify next under old), or makes it.
func rolloverCross(crossPath string, old *pki.CA, next *x509.Certificate) (*x509.Certificate, bool, error) {
	if _, err := os.Lstat(crossPath); err == nil {
		c, err := pki.LoadCertFile(crossPath)
		if err != nil {
			return nil, false, err
		}
		if err := pki.CheckCross(c, next, old.Cert); err != nil {
			return nil, false, fmt.Errorf("%w: rimuoverlo e ripetere", err)
		}
		return c, false, nil
	}
	c, err := old.CrossSign(next)
	if err != nil {
		return nil, false, err
	}
	if err := pki.WriteNewFile(crossPath, pki.CertificatePEM(c), 0o644); err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// switchCA makes next the current CA in one transaction, with the history
// entry ca.rinnovo, and asks for the CRLs (the new CA's first).
func switchCA(env *Env, src store.Source, old, next *IssuerCA) error {
	return env.Store.Update(func(tx *store.Tx) error {
		reg, err := tx.CARegistry()
		if err != nil {
			return err
		}
		if reg.Pending == nil || reg.Pending.Tag != next.Tag || reg.Current != old.KeyID {
			return errors.New("il rinnovo in corso è cambiato nel frattempo: ripetere")
		}
		reg.CAs = append(reg.CAs, store.CARecord{
			Tag: next.Tag, KeyID: next.KeyID, CertDER: next.Cert.Raw, CrossDER: next.Cross.Raw,
			Created: tx.Now, NotAfter: next.Cert.NotAfter,
		})
		reg.Current, reg.Pending = next.KeyID, nil
		if err := tx.PutCARegistry(reg); err != nil {
			return err
		}
		if err := tx.SetMeta(lifecycle.CRLDirtyMeta, true); err != nil {
			return err
		}
		return tx.Record(src, "ca.rinnovo", "ca", next.KeyID, fmt.Sprintf(
			"nuova CA corrente %s (SHA-256 %s, scade %s), certificato incrociato SHA-256 %s emesso dalla CA precedente %s (SHA-256 %s, scade %s)",
			next.KeyID, pki.Fingerprint(next.Cert), next.Cert.NotAfter.UTC().Format(time.DateOnly),
			pki.Fingerprint(next.Cross), old.KeyID, pki.Fingerprint(old.Cert), old.Cert.NotAfter.UTC().Format(time.DateOnly)))
	})
}
