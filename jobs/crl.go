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
	// nextUpdate - thisUpdate (pki.crl_validity, default 25h): the CRL is
	// re-signed every hour, so 25 hours leave a day of margin to a relying
	// party when the daemon is down, and one more hour for a late run.
	validity := pc.CRLValidity
	if validity <= time.Hour {
		return fmt.Errorf("crl: pki.crl_validity %s: deve essere più di 1h", validity)
	}
	var cas []*IssuerCA
	if err := env.Store.View(func(tx *store.Tx) error {
		var err error
		cas, err = CAs(env.Config, tx)
		return err
	}); err != nil {
		return fmt.Errorf("crl: CA: %w", err)
	}
	// The keys first: a CRL that cannot be signed for every CA is not
	// signed for any, nor is the drop touched.
	signers := make([]*pki.CA, len(cas))
	for i, c := range cas {
		if !c.Retired.IsZero() {
			continue
		}
		ca, err := c.Load()
		if err != nil {
			return fmt.Errorf("crl: CA: %w", err)
		}
		signers[i] = ca
	}
	if err := checkWayOut(ctx, env, CRLActor, path.Dir(CRLFileDER)); err != nil {
		return err
	}
	for i, c := range cas {
		if signers[i] == nil {
			continue
		}
		if err := signAndPublishCRL(ctx, env, run, c, signers[i], validity, len(cas) > 1); err != nil {
			return err
		}
	}
	return env.Store.Update(func(tx *store.Tx) error { return tx.DeleteMeta(lifecycle.CRLDirtyMeta) })
}

// signAndPublishCRL signs the CRL of CA c (its own certificates only,
// docs/rules.md#ca-rollover), records it, writes its files, and marks it
// published. A CA that is not the current one and has no certificate left
// that counts (IssuerCA.Live) is retired: its last CRL, signed then, has
// nextUpdate = the CA's own end, and no other follows.
func signAndPublishCRL(ctx context.Context, env *Env, run *Run, c *IssuerCA, ca *pki.CA, validity time.Duration, several bool) error {
	derFile, _ := c.CRLFiles()
	var rec *store.CRL
	var held, revoked int
	retired := false
	err := env.Store.Update(func(tx *store.Tx) error {
		nextUpdate := tx.Now.Add(validity)
		retired = false
		if !c.Current {
			live, err := liveCertificates(tx, c)
			if err != nil {
				return err
			}
			if live == 0 {
				// The last CRL, valid as long as the CA: it lists the
				// certificates superseded or revoked for good to the end.
				retired = true
				if c.Cert.NotAfter.After(nextUpdate) {
					nextUpdate = c.Cert.NotAfter
				}
				if err := retireCA(tx, c); err != nil {
					return err
				}
			}
		}
		entries, h, r, err := crlEntries(tx, c)
		if err != nil {
			return err
		}
		held, revoked = h, r
		n, err := tx.Sequence(store.CRLSequence)
		if err != nil {
			return err
		}
		der, err := ca.CreateCRL(entries, new(big.Int).SetUint64(n), tx.Now, nextUpdate)
		if err != nil {
			return err
		}
		rec = &store.CRL{Number: n, ThisUpdate: tx.Now, NextUpdate: nextUpdate, Entries: len(entries), DER: der}
		if err := tx.PutCRLOf(c.Tag, rec); err != nil {
			return err
		}
		detail := fmt.Sprintf("CRL numero %d: %d in sospensione, %d revocati, valida fino a %s",
			n, h, r, rec.NextUpdate.Format(time.RFC3339))
		if several {
			detail += fmt.Sprintf(" (CA %s, %s)", c.KeyID, derFile)
		}
		return tx.Record(store.Source{Actor: CRLActor}, "crl.firmata", "crl", fmt.Sprint(n), detail)
	})
	if err != nil {
		return fmt.Errorf("crl: %w", err)
	}
	if retired {
		run.Log.Info("crl: CA retired: no certificate of it is left; its last CRL is valid until the CA expires", "ca", c.KeyID, "next_update", rec.NextUpdate)
		run.Add("ca_retired", 1)
	}
	if c.Current {
		run.Set("crl_number", int(rec.Number))
		run.Set("crl_held", held)
		run.Set("crl_revoked", revoked)
	} else {
		run.Add("crl_previous_ca_entries", held+revoked)
	}
	return publishCRL(ctx, env, c, rec)
}

// publishCRL writes the CRL rec of CA c to the drop, once the store is
// synced, and marks it published unless a newer one was signed meanwhile.
func publishCRL(ctx context.Context, env *Env, c *IssuerCA, rec *store.CRL) error {
	derFile, pemFile := c.CRLFiles()
	if err := env.Store.Sync(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{derFile, rec.DER}, {pemFile, pki.CRLPEM(rec.DER)}} {
		if err := env.Drop.Write(ctx, f.name, bytes.NewReader(f.data)); err != nil {
			return fmt.Errorf("crl: scrittura di %s: %w", f.name, err)
		}
	}
	return env.Store.Update(func(tx *store.Tx) error {
		cur, err := tx.LastCRLOf(c.Tag)
		if err != nil {
			return err
		}
		if cur.Number != rec.Number {
			return nil // a newer one was signed meanwhile
		}
		cur.Published = tx.Now
		cur.Files = []string{derFile, pemFile}
		return tx.PutCRLOf(c.Tag, cur)
	})
}

// liveCertificates counts the postazioni with a certificate of c that
// still counts (IssuerCA.Live): from the serial index (small entries) once
// it is complete, else from the postazioni.
func liveCertificates(tx *store.Tx, c *IssuerCA) (int, error) {
	n := 0
	count := func(p *domain.Postazione) error {
		if c.Live(p, tx.Now) {
			n++
		}
		return nil
	}
	indexed, err := tx.SerialsIndexed()
	if err != nil {
		return 0, err
	}
	if indexed {
		return n, tx.EachSerialEntry(count)
	}
	states := []domain.CertState{domain.CertRichiesta, domain.CertAttivo, domain.CertBloccato, domain.CertRevocaInCorso, domain.CertRevocato}
	return n, tx.EachPostazioneIn(states, count)
}

// retireCA records that CA c has no certificate left: it publishes no
// more CRLs and answers no more OCSP requests.
func retireCA(tx *store.Tx, c *IssuerCA) error {
	reg, err := tx.CARegistry()
	if err != nil {
		return err
	}
	for i := range reg.CAs {
		if reg.CAs[i].KeyID == c.KeyID && reg.CAs[i].Retired.IsZero() {
			reg.CAs[i].Retired = tx.Now
		}
	}
	if err := tx.PutCARegistry(reg); err != nil {
		return err
	}
	return tx.Record(store.Source{Actor: CRLActor}, "ca.ritirata", "ca", c.KeyID,
		fmt.Sprintf("CA %s (impronta SHA-256 %s): nessun suo certificato è ancora valido; la sua ultima CRL vale fino alla scadenza della CA",
			c.KeyID, pki.Fingerprint(c.Cert)))
}

// crlDirty reports whether a change is waiting for the CRL.
func crlDirty(env *Env) bool {
	var dirty bool
	err := env.Store.View(func(tx *store.Tx) error { return tx.Meta(lifecycle.CRLDirtyMeta, &dirty) })
	return err == nil && dirty
}

// crlEntries lists the held and revoked certificates of CA c, in serial
// order, each with the date and reason of lifecycle.RevocationOf.
func crlEntries(tx *store.Tx, c *IssuerCA) (entries []pki.CRLEntry, held, revoked int, err error) {
	err = tx.EachPostazioneIn(lifecycle.RevokedStates, func(p *domain.Postazione) error {
		if !c.Owns(p) {
			return nil
		}
		if p.Serial == "" {
			// Refuse rather than sign a CRL that misses a revoked certificate.
			return fmt.Errorf("la postazione %s è nello stato %s ma non ha il numero di serie del certificato", p.Code, p.State)
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
			if !c.OwnsPrev(pc) {
				continue // in its own CA's CRL
			}
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
