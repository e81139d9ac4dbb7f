package jobs

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"path"
	"sort"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

// CRL files in the drop (docs/rules.md#drops-and-receipts).
const (
	CRLFileDER = "crl/anprsec.crl"
	CRLFilePEM = "crl/anprsec.crl.pem"
)

// CRLActor is the history actor of the crl job.
const CRLActor = "crl"

// crlJob signs and publishes the CRL (docs/rules.md#postazione-lifecycle):
// hourly, and right after any block, unblock or revoke.
//
// What is in it, from the store at the time of signing:
//   - BLOCCATO: reason certificateHold, revocation date = when it was
//     blocked; an unblocked certificate is simply absent from the next CRL;
//   - REVOCATA IN LAVORAZIONE: reason certificateHold, date = the revoke
//     request. The certificate must stop working at once, but the
//     revocation is not final until the certificati batch: a hold is the
//     entry that may still be lifted ("goes into the CRL straight
//     away on hold");
//   - REVOCATO: for good, with the reason of the revocation (pki.
//     RevocationReason of the motivo: keyCompromise, cessationOfOperation,
//     or unspecified, written without the reasonCode extension), date = the
//     revoke request;
//   - a certificate replaced by a renewal (lifecycle.PredecessorRevocation):
//     reason superseded from the end of its overlap, on hold meanwhile
//     while its postazione is held.
//
// Before anything is signed, the drop must take files in crl/
// (checkWayOut): a CRL that cannot be published is not signed.
//
// The CRL number comes from a gap-free counter in the store
// (store.CRLSequence), taken in the same transaction that records the CRL
// and its history entry, so numbers only grow. The DER and PEM files are
// written atomically through the drop (temporary name, rename).
var crlJob = Job{
	Name:        "crl",
	Description: "firma la CRL (certificati di postazione sospesi e revocati) e pubblica crl/anprsec.crl e .crl.pem",
	Run:         runCRL,
}

func runCRL(ctx context.Context, env *Env, run *Run) error {
	pc := env.Config.PKI
	ca, err := pki.LoadCA(env.Config.Path(pc.CACert), env.Config.CAKey())
	if err != nil {
		return fmt.Errorf("crl: CA: %w", err)
	}
	// nextUpdate - thisUpdate (pki.crl_validity, default 25h): the CRL is
	// re-signed every hour, so 25 hours leave a day of margin to a relying
	// party when the daemon is down, and one more hour for a late run.
	validity := pc.CRLValidity
	if validity <= time.Hour {
		return fmt.Errorf("crl: pki.crl_validity %s: must be more than 1h", validity)
	}
	if err := checkWayOut(ctx, env, CRLActor, path.Dir(CRLFileDER)); err != nil {
		return err
	}
	var rec *store.CRL
	var held, revoked int
	err = env.Store.Update(func(tx *store.Tx) error {
		entries, h, r, err := crlEntries(tx)
		if err != nil {
			return err
		}
		held, revoked = h, r
		n, err := tx.Sequence(store.CRLSequence)
		if err != nil {
			return err
		}
		der, err := ca.CreateCRL(entries, new(big.Int).SetUint64(n), tx.Now, tx.Now.Add(validity))
		if err != nil {
			return err
		}
		rec = &store.CRL{Number: n, ThisUpdate: tx.Now, NextUpdate: tx.Now.Add(validity), Entries: len(entries), DER: der}
		if err := tx.PutCRL(rec); err != nil {
			return err
		}
		return tx.Record(store.Source{Actor: CRLActor}, "crl.firmata", "crl", fmt.Sprint(n),
			fmt.Sprintf("CRL numero %d: %d in sospensione, %d revocati, valida fino a %s",
				n, h, r, rec.NextUpdate.Format(time.RFC3339)))
	})
	if err != nil {
		return fmt.Errorf("crl: %w", err)
	}
	run.Set("crl_number", int(rec.Number))
	run.Set("crl_held", held)
	run.Set("crl_revoked", revoked)
	if err := env.Store.Sync(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{CRLFileDER, rec.DER}, {CRLFilePEM, pki.CRLPEM(rec.DER)}} {
		if err := env.Drop.Write(ctx, f.name, bytes.NewReader(f.data)); err != nil {
			return fmt.Errorf("crl: writing %s: %w", f.name, err)
		}
	}
	return env.Store.Update(func(tx *store.Tx) error {
		cur, err := tx.LastCRL()
		if err != nil {
			return err
		}
		if cur.Number != rec.Number {
			return nil // a newer one was signed meanwhile
		}
		cur.Published = tx.Now
		cur.Files = []string{CRLFileDER, CRLFilePEM}
		if err := tx.DeleteMeta(lifecycle.CRLDirtyMeta); err != nil {
			return err
		}
		return tx.PutCRL(cur)
	})
}

// crlDirty reports whether a change is waiting for the CRL.
func crlDirty(env *Env) bool {
	var dirty bool
	err := env.Store.View(func(tx *store.Tx) error { return tx.Meta(lifecycle.CRLDirtyMeta, &dirty) })
	return err == nil && dirty
}

// crlEntries lists the held and revoked certificates, in serial order,
// each with the date and reason of lifecycle.RevocationOf.
func crlEntries(tx *store.Tx) (entries []pki.CRLEntry, held, revoked int, err error) {
	err = tx.EachPostazioneIn(lifecycle.RevokedStates, func(p *domain.Postazione) error {
		if p.Serial == "" {
			// Refuse rather than sign a CRL that misses a revoked certificate.
			return fmt.Errorf("postazione %s is %s but has no certificate serial", p.Code, p.State)
		}
		serial, err := pki.ParseSerialHex(p.Serial)
		if err != nil {
			return fmt.Errorf("postazione %s: %w", p.Code, err)
		}
		r := lifecycle.RevocationOf(p)
		entries = append(entries, pki.CRLEntry{Serial: serial, RevokedAt: r.At, Reason: r.Reason})
		if p.State == domain.CertRevocato {
			revoked++
		} else {
			held++
		}
		return nil
	})
	if err != nil {
		return nil, 0, 0, err
	}
	// Certificates replaced by a renewal: on hold with their postazione
	// during the overlap, revoked (superseded) after it
	// (docs/rules.md#renewal).
	codes, err := tx.PostazioniWithPredecessors()
	if err != nil {
		return nil, 0, 0, err
	}
	for _, code := range codes {
		p, err := tx.Postazione(code)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("postazione %s: %w", code, err)
		}
		for i := range p.Predecessors {
			pc := &p.Predecessors[i]
			r, _ := lifecycle.PredecessorRevocation(p, pc, tx.Now)
			if !r.Revoked {
				continue
			}
			serial, err := pki.ParseSerialHex(pc.Serial)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("postazione %s: %w", p.Code, err)
			}
			entries = append(entries, pki.CRLEntry{Serial: serial, RevokedAt: r.At, Reason: r.Reason})
			if r.Reason == pki.ReasonCertificateHold {
				held++
			} else {
				revoked++
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Serial.Cmp(entries[j].Serial) < 0 })
	return entries, held, revoked, nil
}
