package jobs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"path"
	"runtime"
	"sort"
	"sync"
	"time"

	"anprsec/domain"
	"anprsec/export/bundle"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

// CertActor is the history actor of the certificati job.
const CertActor = "certificati"

// certificatiJob issues pending workstation certificates and publishes one
// ZIP per comune (docs/rules.md#certificates).
//
//  0. When there is anything to publish, the drop must take files in the
//     certificati/ folder of each comune concerned (checkWayOut): else the
//     run stops at once, having issued and committed nothing.
//  1. Up to pki.batch_max postazioni in RICHIESTA IN LAVORAZIONE or with a
//     renewal pending on an ATTIVO certificate (docs/rules.md#renewal), in
//     code order, are issued outside any transaction: keys on runtime.NumCPU()
//     workers, signed by the CA (loaded from pki.ca_cert/ca_key at each run),
//     PKCS#12 with friendlyName = code and a fresh password.
//  2. Each comune commits in one transaction: ATTIVO, serial, expiry,
//     certificate, sealed P12 and password, history, and a pending bundle
//     record; with the comune's first workstation certificates, the
//     first one's e-mail to the ASC is queued
//     (lifecycle.QueueFirstCertificate); a renewal makes the new
//     certificate the current one and the old one its predecessor
//     (renewIssued). A failed issuance leaves the postazione in RICHIESTA
//     (or its renewal pending) with LastError and Attempts (retried next
//     run). Predecessors past their overlap are recorded superseded
//     (finalizeSupersessions).
//  3. Every pending bundle (also one left by a crash) is built from the
//     store, verified and written atomically to the drop, then marked
//     published. Re-publishing gives the same name and content.
var certificatiJob = Job{
	Name:        "certificati",
	Description: "emette i certificati di postazione in attesa (PKCS#12) e pubblica uno ZIP per comune con password.txt",
	Run:         runCertificati,
}

type certResult struct {
	code, istat string
	cert        *x509.Certificate
	issuer      string // the KeyID of the CA that issued cert
	p12         []byte
	password    string
	err         error
}

func runCertificati(ctx context.Context, env *Env, run *Run) error {
	if env.Sealer == nil {
		return errors.New("certificati: manca la chiave di sigillo (keys.seal; eseguire `anprsec init`)")
	}
	todo, names, err := pendingIssues(env)
	if err != nil {
		return err
	}
	if dirs, err := bundleDirs(env, todo); err != nil {
		return err
	} else if len(dirs) > 0 {
		if err := checkWayOut(ctx, env, "certificati", dirs...); err != nil {
			return err
		}
	}
	var errs []error
	if err := completeRevocations(env, run); err != nil {
		errs = append(errs, err)
	}
	if err := finalizeSupersessions(env, run); err != nil {
		errs = append(errs, err)
	}
	if len(todo) > 0 {
		if err := issueAndCommit(ctx, env, run, todo, names); err != nil {
			errs = append(errs, err)
		}
	}
	if err := publishPending(ctx, env, run); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// pendingIssues reads what the batch issues, in code order, at most
// pki.batch_max: the postazioni RICHIESTA IN LAVORAZIONE and those with a
// renewal it may issue (renewable); names maps the comuni concerned to
// their names.
func pendingIssues(env *Env) (todo []*domain.Postazione, names map[string]string, err error) {
	names = map[string]string{} // istat -> comune name
	batchMax := env.Config.PKI.BatchMax
	err = env.Store.View(func(tx *store.Tx) error {
		codes, err := tx.PostazioniInState(domain.CertRichiesta)
		if err != nil {
			return err
		}
		renew, err := tx.PostazioniToRenew()
		if err != nil {
			return err
		}
		codes = append(codes, renew...)
		sort.Strings(codes)
		for _, c := range codes {
			if batchMax > 0 && len(todo) >= batchMax {
				break
			}
			p, err := tx.Postazione(c)
			if err != nil {
				return fmt.Errorf("postazione %s: %w", c, err)
			}
			if p.State != domain.CertRichiesta && !renewable(p) {
				continue // a renewal waits while the certificate is blocked
			}
			if _, ok := names[p.ISTAT]; !ok {
				com, err := tx.Comune(p.ISTAT)
				if err != nil {
					return fmt.Errorf("comune %s di %s: %w", p.ISTAT, c, err)
				}
				names[p.ISTAT] = com.Name
			}
			todo = append(todo, p)
		}
		return nil
	})
	return todo, names, err
}

// bundleDirs returns the drop folders the run will publish bundles to:
// those of the comuni of todo and of every pending bundle.
func bundleDirs(env *Env, todo []*domain.Postazione) ([]string, error) {
	var dirs []string
	for _, p := range todo {
		dirs = append(dirs, path.Dir(bundle.Path(p.ISTAT, "")))
	}
	err := env.Store.View(func(tx *store.Tx) error {
		ids, err := tx.PendingBundles()
		if err != nil {
			return err
		}
		for _, id := range ids {
			b, err := tx.Bundle(id)
			if err != nil {
				return err
			}
			dirs = append(dirs, path.Dir(bundle.Path(b.ISTAT, "")))
		}
		return nil
	})
	return dirs, err
}

// issueAndCommit issues todo in parallel and commits the results per comune.
func issueAndCommit(ctx context.Context, env *Env, run *Run, todo []*domain.Postazione, names map[string]string) error {
	pc := env.Config.PKI
	issuer, err := CurrentCA(env)
	if err != nil {
		return fmt.Errorf("certificati: CA: %w", err)
	}
	ca, err := issuer.Load()
	if err != nil {
		return fmt.Errorf("certificati: CA: %w", err)
	}
	certBusy.Add(1) // pool-chiavi starts no new batch meanwhile
	defer certBusy.Add(-1)
	// Keys from the pool first, taken (deleted) in one transaction before
	// any is used: if this run fails they are lost, never reused.
	alg := poolAlg(pc.KeyAlgorithm)
	pooled, err := takePoolKeys(env, alg, len(todo))
	if err != nil {
		run.Log.Warn("certificati: key pool unavailable, generating every key", "err", err)
		pooled = nil
	}
	run.Add("pool_keys", len(pooled))
	run.Add("fresh_keys", len(todo)-len(pooled))
	results := issueAll(ctx, env, &signingCA{ca, issuer}, todo, pooled, names)
	if err := ctx.Err(); err != nil {
		return err // nothing committed: the requests stay pending
	}
	order, byComune := groupByComune(results)
	var errs []error
	for n, istat := range order {
		if n%16 == 15 {
			releaseStoreMemory(env)
		}
		issued, failed := 0, 0
		err := env.Store.Update(func(tx *store.Tx) error {
			var err error
			issued, failed, err = commitCertsOfComune(tx, env, istat, byComune[istat])
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("certificati: comune %s: %w", istat, err))
			continue
		}
		run.Add("issued", issued)
		run.Add("failed", failed)
	}
	return errors.Join(errs...)
}

// releaseStoreMemory drops from the resident set the pages of the store's
// files that the commits wrote and the bundles read (the sealed PKCS#12 go
// to Badger's value log, written and read through its mapping), and frees
// the allocators Badger keeps for its next tables.
func releaseStoreMemory(env *Env) {
	env.Store.ReleaseMapped()
	env.Store.ReleaseAllocators()
}

// issueAll issues todo on runtime.NumCPU() workers, the first ones with
// the pooled keys; a cancelled ctx stops handing out postazioni.
func issueAll(ctx context.Context, env *Env, ca *signingCA, todo []*domain.Postazione, pooled []store.PoolKey, names map[string]string) []certResult {
	results := make([]certResult, len(todo))
	jobsCh := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobsCh {
				results[i] = issueTodo(env, ca, todo[i], pooled, i, names[todo[i].ISTAT])
			}
		}()
	}
feed:
	for i := range todo {
		select {
		case jobsCh <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobsCh)
	wg.Wait()
	return results
}

// issueTodo issues postazione p, the i-th of the batch, with the i-th
// pooled key when there is one, else with a fresh key.
func issueTodo(env *Env, ca *signingCA, p *domain.Postazione, pooled []store.PoolKey, i int, comune string) certResult {
	pc := env.Config.PKI
	var key crypto.Signer
	if i < len(pooled) {
		k, err := openPoolKey(env.Sealer, pooled[i])
		if err != nil {
			return certResult{code: p.Code, istat: p.ISTAT, err: err}
		}
		key = k
	}
	return issueOne(ca, key, p.Code, p.ISTAT, comune, pc.KeyAlgorithm, pc.Encoding, pc.ValidityDays, pc.PasswordAlphabet, pc.PasswordLength, ca.issuer.Discovery(env.Config))
}

// groupByComune groups results by comune, keeping code order; order is the
// comuni in the order of their first result.
func groupByComune(results []certResult) (order []string, byComune map[string][]*certResult) {
	byComune = map[string][]*certResult{}
	for i := range results {
		r := &results[i]
		if _, ok := byComune[r.istat]; !ok {
			order = append(order, r.istat)
		}
		byComune[r.istat] = append(byComune[r.istat], r)
	}
	return order, byComune
}

// commitCertsOfComune commits, in tx, the results of comune istat whose
// postazione is still RICHIESTA: a failure is recorded on the postazione,
// an issued certificate makes it ATTIVO; the issued ones go into a new
// pending bundle. It returns how many were issued and how many failed.
func commitCertsOfComune(tx *store.Tx, env *Env, istat string, rs []*certResult) (issued, failed int, err error) {
	src := store.Source{Actor: CertActor}
	var codes []string
	var activated []*domain.Postazione
	for _, r := range rs {
		p, err := tx.Postazione(r.code)
		if err != nil {
			return 0, 0, err
		}
		renewal := renewable(p)
		if p.State != domain.CertRichiesta && !renewal {
			continue // changed since it was read: leave it alone
		}
		p.Updated = tx.Now
		if r.err != nil {
			failed++
			if err := recordIssueFailure(tx, src, p, r.err); err != nil {
				return 0, 0, err
			}
			continue
		}
		if renewal {
			err = renewIssued(tx, env, src, p, r)
		} else {
			err = activateIssued(tx, env, src, p, r)
		}
		if err != nil {
			return 0, 0, err
		}
		codes = append(codes, p.Code)
		activated = append(activated, p)
		issued++
	}
	if len(codes) == 0 {
		return issued, failed, nil
	}
	if _, err := lifecycle.QueueFirstCertificate(tx, src, istat, activated); err != nil {
		return 0, 0, err
	}
	b, err := tx.NewBundle(istat, tx.Now, env.Loc, codes)
	if err != nil {
		return 0, 0, err
	}
	return issued, failed, tx.Record(src, "bundle.crea", "bundle", b.ID(), fmt.Sprintf("%d certificati: %v", len(codes), codes))
}

// recordIssueFailure keeps a failed issuance on postazione p, which stays
// RICHIESTA: one more attempt, the error, a history entry.
func recordIssueFailure(tx *store.Tx, src store.Source, p *domain.Postazione, issueErr error) error {
	p.Attempts++
	p.LastError = issueErr.Error()
	if err := tx.PutPostazione(p); err != nil {
		return err
	}
	return tx.Record(src, "postazione.errore", "postazione", p.Code,
		fmt.Sprintf("emissione fallita (tentativo %d): %v", p.Attempts, issueErr))
}

// activateIssued makes postazione p ATTIVO with the certificate of r, its
// PKCS#12 and password sealed, with a history entry.
func activateIssued(tx *store.Tx, env *Env, src store.Source, p *domain.Postazione, r *certResult) error {
	serial := fmt.Sprintf("%X", r.cert.SerialNumber)
	p.State = domain.CertAttivo
	p.Serial = serial
	p.NotAfter = r.cert.NotAfter
	p.CertDER = r.cert.Raw
	p.Issuer = r.issuer
	p.P12Sealed = env.Sealer.Seal(r.p12, domain.P12SealContext(p.Code))
	p.PasswordSealed = env.Sealer.Seal([]byte(r.password), domain.PasswordSealContext(p.Code))
	p.LastError = ""
	if err := tx.PutPostazione(p); err != nil {
		return err
	}
	return tx.Record(src, "postazione.attiva", "postazione", p.Code,
		fmt.Sprintf("certificato emesso, seriale %s, scade %s", serial, r.cert.NotAfter.UTC().Format("2006-01-02")))
}

// signingCA is the current CA (docs/rules.md#ca-rollover), opened: every
// certificate of a batch is issued by it.
type signingCA struct {
	*pki.CA
	issuer *IssuerCA
}

// renewable reports whether p has a renewal the certificati batch may
// issue now: pending, on an ATTIVO certificate.
func renewable(p *domain.Postazione) bool {
	return p.Renewal != nil && p.State == domain.CertAttivo
}

// renewIssued makes the certificate of r the current one of postazione p,
// which had a pending renewal (lifecycle.Supersede): the certificate it
// replaces stays valid for pki.renew_overlap; the new PKCS#12 and
// password are sealed; one history entry links the two serials.
func renewIssued(tx *store.Tx, env *Env, src store.Source, p *domain.Postazione, r *certResult) error {
	serial := fmt.Sprintf("%X", r.cert.SerialNumber)
	old := p.Serial
	overlap := env.Config.PKI.RenewOverlap
	lifecycle.Supersede(p, serial, r.cert.Raw, r.cert.NotAfter, tx.Now, overlap)
	p.Issuer = r.issuer // the current CA's: a renewal moves the certificate to it
	p.P12Sealed = env.Sealer.Seal(r.p12, domain.P12SealContext(p.Code))
	p.PasswordSealed = env.Sealer.Seal([]byte(r.password), domain.PasswordSealContext(p.Code))
	p.LastError = ""
	p.Attempts = 0
	if err := tx.PutPostazione(p); err != nil {
		return err
	}
	return tx.Record(src, "postazione.rinnovata", "postazione", p.Code,
		fmt.Sprintf("certificato rinnovato, seriale %s, scade %s; sostituisce %s, valido fino al %s o all'installazione del nuovo",
			serial, r.cert.NotAfter.UTC().Format("2006-01-02"), old, tx.Now.Add(overlap).UTC().Format(time.RFC3339)))
}

// finalizeSupersessions records every predecessor whose overlap is over
// (lifecycle.FinalizeSupersessions), one transaction per postazione; the
// CRL and OCSP already answer it revoked (superseded) from that moment.
func finalizeSupersessions(env *Env, run *Run) error {
	var codes []string
	if err := env.Store.View(func(tx *store.Tx) error {
		all, err := tx.PostazioniWithPredecessors()
		if err != nil {
			return err
		}
		for _, code := range all {
			p, err := tx.Postazione(code)
			if err != nil {
				return fmt.Errorf("postazione %s: %w", code, err)
			}
			for _, pc := range p.Predecessors {
				if pc.Final.IsZero() && !tx.Now.Before(pc.SupersededAt()) {
					codes = append(codes, code)
					break
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	var errs []error
	for _, code := range codes {
		changed := false
		err := env.Store.Update(func(tx *store.Tx) error {
			p, err := tx.Postazione(code)
			if err != nil {
				return err
			}
			changed, err = lifecycle.FinalizeSupersessions(tx, store.Source{Actor: CertActor}, p)
			if err != nil || !changed {
				return err
			}
			return tx.PutPostazione(p)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("certificati: sostituzione di %s: %w", code, err))
			continue
		}
		if changed {
			run.Add("superseded", 1)
		}
	}
	return errors.Join(errs...)
}

// issueOne makes the certificate and PKCS#12 of one postazione, with key
// (from the pool) or, when key is nil, a fresh key of algorithm alg; the
// certificate names the CRL and OCSP URLs of disc, the PKCS#12 carries the
// CA's chain.
func issueOne(ca *signingCA, key crypto.Signer, code, istat, comune, alg, encoding string, days int, pwAlphabet string, pwLen int, disc pki.Discovery) certResult {
	r := certResult{code: code, istat: istat, issuer: ca.issuer.KeyID}
	if key == nil {
		var err error
		if key, err = pki.GenerateKey(alg); err != nil {
			r.err = err
			return r
		}
	}
	cert, _, err := ca.IssueWorkstation(pki.WorkstationRequest{Code: code, Comune: comune, PublicKey: key.Public(), ValidityDays: days, Discovery: disc})
	if err != nil {
		r.err = err
		return r
	}
	pw, err := pki.NewPassword(pwAlphabet, pwLen)
	if err != nil {
		r.err = err
		return r
	}
	p12, err := pki.EncodeP12(key, cert, ca.issuer.Chain(), pw, encoding, code)
	if err != nil {
		r.err = err
		return r
	}
	r.cert, r.p12, r.password = cert, p12, pw
	return r
}

// publishPending publishes every pending bundle.
func publishPending(ctx context.Context, env *Env, run *Run) error {
	var ids []string
	if err := env.Store.View(func(tx *store.Tx) error {
		var err error
		ids, err = tx.PendingBundles()
		return err
	}); err != nil {
		return err
	}
	var errs []error
	for n, id := range ids {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if n%16 == 15 {
			releaseStoreMemory(env)
		}
		if err := publishBundle(ctx, env, id, CertActor); err != nil {
			errs = append(errs, fmt.Errorf("certificati: bundle %s: %w", id, err))
			continue
		}
		run.Add("bundles", 1)
	}
	return errors.Join(errs...)
}

// publishBundle builds pending bundle id from the store, writes it and
// marks it published, with a history entry by actor (the job publishing it).
func publishBundle(ctx context.Context, env *Env, id, actor string) error {
	var b *store.Bundle
	var entries []bundle.Entry
	if err := env.Store.View(func(tx *store.Tx) error {
		var err error
		if b, err = tx.Bundle(id); err != nil {
			return err
		}
		entries, err = bundle.Entries(tx, env.Sealer, b)
		return err
	}); err != nil {
		return err
	}
	if b.State != store.BundlePending {
		return nil
	}
	loc := env.Loc
	if loc == nil {
		loc = time.UTC
	}
	data, err := bundle.Build(ctx, entries, b.Created.In(loc)) // ZIP times in the zone of the name
	if err != nil {
		return err
	}
	// The certificates must be durable before the ZIP announces them: a
	// power cut must not take back what a comune already holds (as for
	// receipts, ingest.Inbox.publish, and the CRL).
	if err := env.Store.Sync(); err != nil {
		return err
	}
	name := bundle.Path(b.ISTAT, b.Stamp)
	if err := env.Drop.Write(ctx, name, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("scrittura di %s: %w", name, err)
	}
	return env.Store.Update(func(tx *store.Tx) error {
		cur, err := tx.Bundle(id)
		if err != nil {
			return err
		}
		if cur.State != store.BundlePending {
			return nil
		}
		cur.State = store.BundlePublished
		cur.Published = tx.Now
		cur.File = name
		if err := tx.PutBundle(cur); err != nil {
			return err
		}
		return tx.Record(store.Source{Actor: actor, File: name}, "bundle.pubblicato", "bundle", id,
			fmt.Sprintf("%d certificati in %s", len(cur.Codes), name))
	})
}

// completeRevocations makes every REVOCATA IN LAVORAZIONE certificate
// whose undo window is over (RevokedAt + pki.revoke_grace <= now, see
// RevokeFinal) REVOCATO, for good, at the next batch
// (docs/rules.md#postazione-lifecycle), one transaction each with its
// history entry; the others wait for a later batch, or for annulla-revoca.
// The next CRL lists it with the reason of its revocation instead of
// certificateHold.
func completeRevocations(env *Env, run *Run) error {
	var codes []string
	if err := env.Store.View(func(tx *store.Tx) error {
		var err error
		codes, err = tx.PostazioniInState(domain.CertRevocaInCorso)
		return err
	}); err != nil {
		return err
	}
	sort.Strings(codes)
	var errs []error
	for _, code := range codes {
		done := false
		err := env.Store.Update(func(tx *store.Tx) error {
			done = false
			p, err := tx.Postazione(code)
			if err != nil {
				return err
			}
			if p.State != domain.CertRevocaInCorso {
				return nil // changed since it was read
			}
			if !lifecycle.RevokeFinal(p, env.Config.PKI.RevokeGrace, tx.Now) {
				return nil // still inside the undo window (pki.revoke_grace)
			}
			p.State = domain.CertRevocato
			p.PrevState = ""
			p.Updated = tx.Now
			if p.RevokedAt.IsZero() {
				p.RevokedAt = tx.Now
			}
			if err := tx.PutPostazione(p); err != nil {
				return err
			}
			done = true
			return tx.Record(store.Source{Actor: CertActor}, "postazione.revocata", "postazione", p.Code,
				fmt.Sprintf("revoca definitiva, seriale %s, motivo CRL %s (%s)", p.Serial,
					pki.ReasonName(p.RevocationReason), p.Reason))
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("certificati: revoca di %s: %w", code, err))
			continue
		}
		if done {
			run.Add("revoked", 1)
		}
	}
	return errors.Join(errs...)
}
