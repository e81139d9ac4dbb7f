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
//  2. Each comune commits in one transaction, as soon as all its
//     postazioni are issued, while the workers go on: ATTIVO, serial, expiry,
//     certificate, sealed P12 and password, history, and a pending bundle
//     record; with the comune's first workstation certificates, the
//     first one's e-mail to the ASC is queued
//     (lifecycle.QueueFirstCertificate); a renewal makes the new
//     certificate the current one and the old one its predecessor
//     (renewIssued). A failed issuance leaves the postazione in RICHIESTA
//     (or its renewal pending) with LastError and Attempts (retried next
//     run). Predecessors past their overlap are recorded superseded
//     (finalizeSupersessions).
//  3. The bundle just committed is built from the same PKCS#12 and
//     passwords (still in memory), verified and written atomically to the
//     drop once the store is synced, then marked published, while the
//     batch goes on; every other pending bundle (one left by a crash, or
//     whose publication failed in an earlier run) is built from the store.
//     Re-publishing gives the same name and content.
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
	var handled map[string]bool
	if len(todo) > 0 {
		var err error
		if handled, err = issueAndCommit(ctx, env, run, todo, names); err != nil {
			errs = append(errs, err)
		}
	}
	if err := publishPending(ctx, env, run, handled); err != nil {
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

// issueAndCommit issues todo on runtime.NumCPU() workers and, while they
// work, commits each comune in one transaction as soon as all its results
// are in (comuni in the order of todo), then hands its new bundle, with the
// PKCS#12 and passwords still in memory, to a publisher (bundlePublisher)
// that writes it to the drop meanwhile. A comune's results leave memory
// once published, so the batch holds only those in flight. A cancelled ctx
// stops handing out postazioni: the comuni committed stay, the others stay
// pending. It returns the IDs of the bundles it handed to the publisher,
// published or not: publishPending leaves them to the next run.
func issueAndCommit(ctx context.Context, env *Env, run *Run, todo []*domain.Postazione, names map[string]string) (map[string]bool, error) {
	pc := env.Config.PKI
	issuer, err := CurrentCA(env)
	if err != nil {
		return nil, fmt.Errorf("certificati: CA: %w", err)
	}
	ca, err := issuer.Load()
	if err != nil {
		return nil, fmt.Errorf("certificati: CA: %w", err)
	}
	certBusy.Add(1) // pool-chiavi starts no new batch meanwhile
	defer certBusy.Add(-1)
	order, members := comuniOf(todo)
	left := make(map[string]int, len(order))
	for _, istat := range order {
		left[istat] = len(members[istat])
	}
	results := make([]certResult, len(todo))
	done := make(chan int, runtime.NumCPU())
	keys := &poolTaker{env: env, run: run, alg: poolAlg(pc.KeyAlgorithm), left: len(todo)}
	go issueAll(ctx, env, &signingCA{ca, issuer}, todo, keys, names, results, done)
	pub := newBundlePublisher(ctx, env)
	var errs []error
	next := 0
	for i := range done {
		left[todo[i].ISTAT]--
		for ; next < len(order) && left[order[next]] == 0; next++ {
			istat := order[next]
			rs := make([]*certResult, len(members[istat]))
			for j, k := range members[istat] {
				rs[j] = &results[k]
			}
			if err := commitComune(env, run, pub, istat, rs); err != nil {
				errs = append(errs, fmt.Errorf("certificati: comune %s: %w", istat, err))
			}
			for _, r := range rs {
				*r = certResult{}
			}
		}
	}
	run.Add("pool_keys", keys.taken) // done is closed: issueAll is over
	run.Add("fresh_keys", len(todo)-keys.taken)
	handled, err := pub.wait(run)
	if err != nil {
		errs = append(errs, err)
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err) // the comuni not committed stay pending
	}
	return handled, errors.Join(errs...)
}

// comuniOf returns the comuni of todo in the order of their first
// postazione, and the indexes in todo of each one's postazioni.
func comuniOf(todo []*domain.Postazione) (order []string, members map[string][]int) {
	members = map[string][]int{}
	for i, p := range todo {
		if _, ok := members[p.ISTAT]; !ok {
			order = append(order, p.ISTAT)
		}
		members[p.ISTAT] = append(members[p.ISTAT], i)
	}
	return order, members
}

// commitComune commits the results rs of comune istat in one transaction
// (commitCertsOfComune) and hands the new bundle, if any, to pub.
func commitComune(env *Env, run *Run, pub *bundlePublisher, istat string, rs []*certResult) error {
	issued, failed := 0, 0
	var nb *newBundle
	err := env.Store.Update(func(tx *store.Tx) error {
		var err error
		issued, failed, nb, err = commitCertsOfComune(tx, env, istat, rs)
		return err
	})
	if err != nil {
		return err
	}
	run.Add("issued", issued)
	run.Add("failed", failed)
	if nb != nil {
		pub.add(nb)
	}
	return nil
}

// poolChunk is the most keys certificati takes from the pool in one
// transaction: the keys wait sealed in memory only for the next
// postazioni, whatever pki.batch_max (a variable for the tests).
var poolChunk = 256

// poolTaker hands out the pool's keys to the batch in order, taking them
// from the pool poolChunk at a time (takePoolKeys), each chunk in one
// transaction before any of its keys is used: a key taken by a run that
// then fails is lost, never reused. Once the pool is empty or unavailable,
// the rest of the batch generates its keys.
type poolTaker struct {
	env   *Env
	run   *Run
	alg   string
	left  int // keys the batch may still ask for
	taken int
	keys  []store.PoolKey
	dry   bool
}

// next returns the next pooled key, nil when there is none.
func (t *poolTaker) next() *store.PoolKey {
	if len(t.keys) == 0 && !t.dry && t.left > 0 {
		keys, err := takePoolKeys(t.env, t.alg, min(t.left, poolChunk))
		if err != nil {
			t.run.Log.Warn("certificati: key pool unavailable, generating the other keys", "err", err)
		}
		t.keys, t.dry = keys, len(keys) < min(t.left, poolChunk)
	}
	t.left--
	if len(t.keys) == 0 {
		return nil
	}
	k := &t.keys[0]
	t.keys = t.keys[1:]
	t.taken++
	return k
}

// issueAll issues todo on runtime.NumCPU() workers, in order, with the
// keys of the pool while it has some, into results, sending the index of
// each result done on done, which it closes at the end; a cancelled ctx
// stops handing out postazioni.
func issueAll(ctx context.Context, env *Env, ca *signingCA, todo []*domain.Postazione, pool *poolTaker, names map[string]string, results []certResult, done chan<- int) {
	type job struct {
		i   int
		key *store.PoolKey
	}
	jobsCh := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobsCh {
				results[j.i] = issueTodo(env, ca, todo[j.i], j.key, names[todo[j.i].ISTAT])
				done <- j.i
			}
		}()
	}
feed:
	for i := range todo {
		if ctx.Err() != nil {
			break
		}
		j := job{i, pool.next()}
		select {
		case jobsCh <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobsCh)
	wg.Wait()
	close(done)
}

// issueTodo issues postazione p with pooled, a key of the pool, or with a
// fresh key when pooled is nil.
func issueTodo(env *Env, ca *signingCA, p *domain.Postazione, pooled *store.PoolKey, comune string) certResult {
	pc := env.Config.PKI
	var key crypto.Signer
	if pooled != nil {
		k, err := openPoolKey(env.Sealer, *pooled)
		if err != nil {
			return certResult{code: p.Code, istat: p.ISTAT, err: err}
		}
		key = k
	}
	return issueOne(ca, key, p.Code, p.ISTAT, comune, pc.KeyAlgorithm, pc.Encoding, pc.ValidityDays, pc.PasswordAlphabet, pc.PasswordLength, ca.issuer.Discovery(env.Config))
}

// newBundle is a pending bundle just committed, with its entries: the
// PKCS#12 and passwords that the transaction sealed into the store.
type newBundle struct {
	b       *store.Bundle
	entries []bundle.Entry
}

// commitCertsOfComune commits, in tx, the results of comune istat whose
// postazione is still RICHIESTA (or has its renewal pending) and of that
// comune: a failure is recorded on the postazione, an issued certificate
// makes it ATTIVO; the issued ones go into a new pending bundle, returned
// with its entries (nil when none was issued). It returns how many were
// issued and how many failed.
func commitCertsOfComune(tx *store.Tx, env *Env, istat string, rs []*certResult) (issued, failed int, nb *newBundle, err error) {
	src := store.Source{Actor: CertActor}
	var codes []string
	var activated []*domain.Postazione
	var entries []bundle.Entry
	for _, r := range rs {
		p, err := tx.Postazione(r.code)
		if err != nil {
			return 0, 0, nil, err
		}
		renewal := renewable(p)
		if (p.State != domain.CertRichiesta && !renewal) || p.ISTAT != istat {
			continue // changed since it was read: leave it alone
		}
		p.Updated = tx.Now
		if r.err != nil {
			failed++
			if err := recordIssueFailure(tx, src, p, r.err); err != nil {
				return 0, 0, nil, err
			}
			continue
		}
		if renewal {
			err = renewIssued(tx, env, src, p, r)
		} else {
			err = activateIssued(tx, env, src, p, r)
		}
		if err != nil {
			return 0, 0, nil, err
		}
		codes = append(codes, p.Code)
		activated = append(activated, p)
		entries = append(entries, bundle.Entry{Code: p.Code, P12: r.p12, Password: r.password})
		issued++
	}
	if len(codes) == 0 {
		return issued, failed, nil, nil
	}
	if _, err := lifecycle.QueueFirstCertificate(tx, src, istat, activated); err != nil {
		return 0, 0, nil, err
	}
	b, err := tx.NewBundle(istat, tx.Now, env.Loc, codes)
	if err != nil {
		return 0, 0, nil, err
	}
	if err := tx.Record(src, "bundle.crea", "bundle", b.ID(), fmt.Sprintf("%d certificati: %v", len(codes), codes)); err != nil {
		return 0, 0, nil, err
	}
	return issued, failed, &newBundle{b, entries}, nil
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

// publishPending publishes every pending bundle but those of skip (handed
// to the publisher of this run's batch: one that failed waits for the next
// run).
func publishPending(ctx context.Context, env *Env, run *Run, skip map[string]bool) error {
	var ids []string
	if err := env.Store.View(func(tx *store.Tx) error {
		var err error
		ids, err = tx.PendingBundles()
		return err
	}); err != nil {
		return err
	}
	var todo []string
	for _, id := range ids {
		if !skip[id] {
			todo = append(todo, id)
		}
	}
	return publishBundles(ctx, env, run, todo, CertActor, "certificati")
}

// publishBundles publishes the pending bundles ids, each with a history
// entry by actor; a failed one is named in the errors (prefixed with the
// job) and the others go on. Every 16 bundles the store's mapped pages and
// pooled allocators are dropped.
func publishBundles(ctx context.Context, env *Env, run *Run, ids []string, actor, job string) error {
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := publishBundle(ctx, env, id, actor); err != nil {
			errs = append(errs, fmt.Errorf("%s: bundle %s: %w", job, id, err))
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
	// The certificates must be durable before the ZIP announces them: a
	// power cut must not take back what a comune already holds (as for
	// receipts, ingest.Inbox.publish, and the CRL).
	if err := env.Store.Sync(); err != nil {
		return err
	}
	return writeBundle(ctx, env, b, entries, actor)
}

// writeBundle builds the ZIP of pending bundle b from entries (its
// certificates as the store holds them), writes it to the drop and marks b
// published, with a history entry by actor. The store must have been
// synced since b was committed.
func writeBundle(ctx context.Context, env *Env, b *store.Bundle, entries []bundle.Entry, actor string) error {
	loc := env.Loc
	if loc == nil {
		loc = time.UTC
	}
	data, err := bundle.Build(ctx, entries, b.Created.In(loc)) // ZIP times in the zone of the name
	if err != nil {
		return err
	}
	name := bundle.Path(b.ISTAT, b.Stamp)
	if err := env.Drop.Write(ctx, name, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("scrittura di %s: %w", name, err)
	}
	id := b.ID()
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

// bundlePublisher publishes the bundles a batch commits while the batch
// goes on issuing: one goroutine takes every bundle committed since its
// last turn, syncs the store once for all of them (the certificates are
// durable before a ZIP announces them) and writes them one after the
// other (writeBundle). add blocks while publisherQueue bundles wait, so
// that a slow drop holds the batch back instead of filling the memory.
type bundlePublisher struct {
	ctx       context.Context
	env       *Env
	queue     chan *newBundle
	done      chan struct{}
	handled   map[string]bool
	published int
	errs      []error
}

// publisherQueue is the most bundles committed and waiting for the
// publisher.
const publisherQueue = 32

func newBundlePublisher(ctx context.Context, env *Env) *bundlePublisher {
	p := &bundlePublisher{ctx: ctx, env: env, queue: make(chan *newBundle, publisherQueue),
		done: make(chan struct{}), handled: map[string]bool{}}
	go p.loop()
	return p
}

// add hands a committed bundle to the publisher.
func (p *bundlePublisher) add(nb *newBundle) { p.queue <- nb }

// wait waits for every bundle added to be published (but, once ctx is
// done, it publishes no more), counts them in run ("bundles") and returns
// the IDs of all those added and the errors of those that failed.
func (p *bundlePublisher) wait(run *Run) (map[string]bool, error) {
	close(p.queue)
	<-p.done
	run.Add("bundles", p.published)
	return p.handled, errors.Join(p.errs...)
}

func (p *bundlePublisher) loop() {
	defer close(p.done)
	n := 0
	for nb := range p.queue {
		batch := []*newBundle{nb}
	more:
		for {
			select {
			case nb, ok := <-p.queue:
				if !ok {
					break more
				}
				batch = append(batch, nb)
			default:
				break more
			}
		}
		syncErr := p.env.Store.Sync()
		for _, nb := range batch {
			id := nb.b.ID()
			p.handled[id] = true
			if p.ctx.Err() != nil {
				continue // pending: the next run publishes it
			}
			err := syncErr
			if err == nil {
				n++
				err = writeBundle(p.ctx, p.env, nb.b, nb.entries, CertActor)
			}
			if err != nil {
				p.errs = append(p.errs, fmt.Errorf("certificati: bundle %s: %w", id, err))
				continue
			}
			p.published++
		}
	}
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
