package jobs

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"anprsec/pki"
	"anprsec/store"
)

// PoolActor is the history actor of the pool-chiavi job.
const PoolActor = "pool-chiavi"

// poolBatch is the number of keys generated and committed per transaction
// by pool-chiavi: small, so that the job yields quickly to certificati and
// to a stop (a variable for the tests).
var poolBatch = 50

// certBusy counts the certificate issuances in progress (issueAndCommit):
// pool-chiavi does not compete with them for the cores.
var certBusy atomic.Int32

// othersBusy counts the runs in progress of every job but pool-chiavi, and
// the commands callers run through the daemon's control socket (Running):
// the pool starts no new batch while another job or a command works, so
// that filling it never slows what people wait for.
var othersBusy atomic.Int32

// Running marks a run of job name (or "control", a caller's command) in
// progress until done is called; the runner and the control socket call it
// around every run and command.
func Running(name string) (done func()) {
	if name == poolJob.Name {
		return func() {}
	}
	othersBusy.Add(1)
	return func() { othersBusy.Add(-1) }
}

// poolJob keeps the key pool full (docs/rules.md#certificates, key pool).
// It tops the pool of pki.key_algorithm up to pki.key_pool
// keys, generated outside any transaction on runtime.NumCPU() workers, in
// batches of poolBatch keys, each committed in one transaction with one
// history entry "pool.ricarica" (a count, never key material). Goroutines
// cannot be reniced, so "low priority" means: small batches, a stop between
// batches as soon as the context is done, and no new batch while a
// certificati run is issuing. Keys of another algorithm (after a change of
// pki.key_algorithm) are deleted ("pool.scarta").
var poolJob = Job{
	Name:        "pool-chiavi",
	Description: "tiene una riserva cifrata di chiavi di postazione pregenerate (pki.key_pool) per certificati",
	Run:         runPoolChiavi,
}

func poolAlg(alg string) string {
	a := strings.ToLower(strings.TrimSpace(alg))
	if a == "" {
		return pki.KeyRSA2048
	}
	return a
}

func runPoolChiavi(ctx context.Context, env *Env, run *Run) error {
	if env.Sealer == nil {
		return errors.New("pool-chiavi: manca la chiave di sigillo (keys.seal; eseguire `anprsec init`)")
	}
	pc := env.Config.PKI
	alg := poolAlg(pc.KeyAlgorithm)
	src := store.Source{Actor: PoolActor}
	if err := env.Store.Update(func(tx *store.Tx) error {
		n, err := tx.PurgePoolKeys(alg)
		if err != nil || n == 0 {
			return err
		}
		run.Add("purged", n)
		return tx.Record(src, "pool.scarta", "keypool", alg, fmt.Sprintf("%d chiavi di un altro algoritmo eliminate", n))
	}); err != nil {
		return fmt.Errorf("pool-chiavi: %w", err)
	}
	start, made := time.Now(), 0
	for {
		if err := ctx.Err(); err != nil {
			return nil // stopped: what is committed stays, the next run goes on
		}
		if certBusy.Load() > 0 || othersBusy.Load() > 0 {
			run.Add("yielded", 1)
			return nil
		}
		var size int
		if err := env.Store.View(func(tx *store.Tx) error {
			var err error
			size, err = tx.PoolSize(alg)
			return err
		}); err != nil {
			return fmt.Errorf("pool-chiavi: %w", err)
		}
		need := pc.KeyPool - size
		if need <= 0 {
			return nil
		}
		if need > poolBatch {
			need = poolBatch
		}
		ders, err := generatePoolKeys(ctx, alg, need)
		if err != nil {
			return fmt.Errorf("pool-chiavi: %w", err)
		}
		if len(ders) == 0 {
			return nil // stopped while generating
		}
		added := 0
		if err := env.Store.Update(func(tx *store.Tx) error {
			added = 0
			size, err := tx.PoolSize(alg) // again: never beyond the target
			if err != nil {
				return err
			}
			for _, der := range ders {
				if size+added >= pc.KeyPool {
					break
				}
				if _, err := tx.PutPoolKey(alg, func(c string) []byte { return env.Sealer.Seal(der, c) }); err != nil {
					return err
				}
				added++
			}
			if added == 0 {
				return nil
			}
			return tx.Record(src, "pool.ricarica", "keypool", alg,
				fmt.Sprintf("%d chiavi %s aggiunte, %d nel pool", added, alg, size+added))
		}); err != nil {
			return fmt.Errorf("pool-chiavi: %w", err)
		}
		for _, der := range ders {
			clear(der)
		}
		run.Add("keys", added)
		made += added
		// Progress of a long refill (2,000 RSA keys take minutes on two
		// cores): keys made, the pool's size and target, the rate.
		run.Log.Info("pool-chiavi: keys added", "made", made, "pool", size+added, "target", pc.KeyPool,
			"per_second", math.Round(float64(made)/time.Since(start).Seconds()*10)/10)
		if added < len(ders) {
			return nil
		}
	}
}

// generatePoolKeys makes n keys on runtime.NumCPU() workers and returns
// their PKCS#8 DER; fewer when ctx is done.
func generatePoolKeys(ctx context.Context, alg string, n int) ([][]byte, error) {
	out := make([][]byte, n)
	errs := make([]error, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				k, err := pki.GenerateKey(alg)
				if err == nil {
					out[i], err = x509.MarshalPKCS8PrivateKey(k)
				}
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ders := out[:0]
	for _, d := range out {
		if d != nil {
			ders = append(ders, d)
		}
	}
	return ders, nil
}

// takePoolKeys removes up to n keys of alg from the pool in one transaction
// (with a history entry "pool.prelievo", a count) and returns them sealed.
// A key taken is never put back: if the run then fails, it is lost.
func takePoolKeys(env *Env, alg string, n int) ([]store.PoolKey, error) {
	var keys []store.PoolKey
	err := env.Store.Update(func(tx *store.Tx) error {
		var err error
		keys, err = tx.TakePoolKeys(alg, n)
		if err != nil || len(keys) == 0 {
			return err
		}
		return tx.Record(store.Source{Actor: CertActor}, "pool.prelievo", "keypool", alg,
			fmt.Sprintf("%d chiavi %s prelevate per l'emissione", len(keys), alg))
	})
	return keys, err
}

// openPoolKey unseals and parses a pooled key.
func openPoolKey(s *store.Sealer, k store.PoolKey) (crypto.Signer, error) {
	der, err := s.Open(k.Sealed, store.PoolSealContext(k.Seq))
	if err != nil {
		return nil, fmt.Errorf("chiave del pool %d: %w", k.Seq, err)
	}
	defer clear(der)
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("chiave del pool %d: %w", k.Seq, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("chiave del pool %d: %T non è una chiave di firma", k.Seq, key)
	}
	return signer, nil
}
