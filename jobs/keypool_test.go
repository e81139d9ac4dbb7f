package jobs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"regexp"
	"slices"
	"testing"

	"anprsec/config"
	"anprsec/domain"
	"anprsec/store"
)

var errPeek = errors.New("peek: roll back")

func poolSize(t *testing.T, c *certEnv, alg string) int {
	t.Helper()
	var n int
	if err := c.env.Store.View(func(tx *store.Tx) error {
		var err error
		n, err = tx.PoolSize(alg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// poolPublicKeys returns the DER public keys of the pooled keys, by peeking
// (a transaction that is never committed).
func poolPublicKeys(t *testing.T, c *certEnv, alg string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	c.env.Store.Update(func(tx *store.Tx) error {
		// Taken in a transaction that is rolled back: a peek.
		ks, err := tx.TakePoolKeys(alg, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			s, err := openPoolKey(c.env.Sealer, k)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := x509.MarshalPKIXPublicKey(s.Public())
			out[string(der)] = true
		}
		return errPeek
	})
	return out
}

func TestPoolChiaviRefill(t *testing.T) {
	defer func(n int) { poolBatch = n }(poolBatch)
	poolBatch = 3
	c := newCertEnv(t)
	c.env.Config.PKI.KeyAlgorithm = "ecdsa-p256" // fast keys: the logic is the same
	c.env.Config.PKI.KeyPool = 7
	counts, err := c.run(poolJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["keys"] != 7 || poolSize(t, c, "ecdsa-p256") != 7 {
		t.Fatalf("counts %v, pool %d; want 7", counts, poolSize(t, c, "ecdsa-p256"))
	}
	// Full: nothing more.
	counts, err = c.run(poolJob)
	if err != nil || counts["keys"] != 0 || poolSize(t, c, "ecdsa-p256") != 7 {
		t.Fatalf("second run: %v %v, pool %d", counts, err, poolSize(t, c, "ecdsa-p256"))
	}
	// One batch per transaction, one history entry each: 3+3+1.
	es, err := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "pool.ricarica" })
	if err != nil || len(es) != 3 {
		t.Fatalf("pool.ricarica entries = %d (%v), want 3", len(es), err)
	}
	pubs := poolPublicKeys(t, c, "ecdsa-p256")
	if len(pubs) != 7 {
		t.Errorf("distinct pooled keys = %d", len(pubs))
	}
	// No key material in the history: only a count.
	re := regexp.MustCompile(`^[0-9]+ chiavi ecdsa-p256 aggiunte, [0-9]+ nel pool$`)
	var privs [][]byte
	c.env.Store.Update(func(tx *store.Tx) error {
		ks, _ := tx.TakePoolKeys("ecdsa-p256", 100)
		for _, k := range ks {
			der, err := c.env.Sealer.Open(k.Sealed, store.PoolSealContext(k.Seq))
			if err != nil {
				t.Fatal(err)
			}
			privs = append(privs, der, k.Sealed)
		}
		return errPeek
	})
	all, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return true })
	for _, e := range es {
		if !re.MatchString(e.Detail) || e.Key != "ecdsa-p256" {
			t.Errorf("history entry %q %q", e.Key, e.Detail)
		}
	}
	for _, e := range all {
		for _, p := range privs {
			for _, frag := range []string{hex.EncodeToString(p[len(p)-16:]), string(p[len(p)-16:])} {
				if bytes.Contains([]byte(e.Detail+e.Key), []byte(frag)) {
					t.Errorf("key material in history entry %+v", e)
				}
			}
		}
	}
	// A lower target does not shrink the pool; another algorithm purges it.
	c.env.Config.PKI.KeyPool = 2
	if counts, _ := c.run(poolJob); counts["keys"] != 0 || poolSize(t, c, "ecdsa-p256") != 7 {
		t.Errorf("lower target: %v, pool %d", counts, poolSize(t, c, "ecdsa-p256"))
	}
	c.env.Config.PKI.KeyPool = 0
	c.env.Config.PKI.KeyAlgorithm = "rsa2048"
	if counts, _ := c.run(poolJob); counts["purged"] != 7 || poolSize(t, c, "ecdsa-p256") != 0 {
		t.Errorf("after a change of algorithm: %v, pool %d", counts, poolSize(t, c, "ecdsa-p256"))
	}
	if _, err := c.env.Store.VerifyHistory(); err != nil {
		t.Error(err)
	}
}

func TestPoolChiaviYields(t *testing.T) {
	c := newCertEnv(t)
	c.env.Config.PKI.KeyAlgorithm = "ecdsa-p256"
	certBusy.Add(1)
	counts, err := c.run(poolJob)
	certBusy.Add(-1)
	if err != nil || counts["keys"] != 0 || counts["yielded"] != 1 {
		t.Errorf("while certificati runs: %v %v", counts, err)
	}
	// Any other job's run: the pool waits for it too; once it is over,
	// the pool fills.
	done := Running("ingest-censimento")
	counts, err = c.run(poolJob)
	if err != nil || counts["keys"] != 0 || counts["yielded"] != 1 {
		t.Errorf("while another job runs: %v %v", counts, err)
	}
	done()
	c.env.Config.PKI.KeyPool = 3
	if counts, err := c.run(poolJob); err != nil || counts["keys"] != 3 {
		t.Errorf("with no other job running: %v %v", counts, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &Run{ID: "t", Log: discardLog(), Counts: map[string]int{}}
	if err := poolJob.Run(ctx, c.env, r); err != nil || r.Counts["keys"] != 0 {
		t.Errorf("stopped: %v %v", r.Counts, err)
	}
	c.env.Sealer = nil
	if _, err := c.run(poolJob); err == nil {
		t.Error("ran without a seal key")
	}
}

// TestCertificatiPoolKeys: certificati takes pool keys first (removing
// them), generates the remainder, and no key is ever used twice.
func TestCertificatiPoolKeys(t *testing.T) {
	c := newCertEnv(t)
	c.census() // four requests, RSA-2048
	c.env.Config.PKI.BatchMax = 3
	c.env.Config.PKI.KeyPool = 2
	if _, err := c.run(poolJob); err != nil {
		t.Fatal(err)
	}
	first := poolPublicKeys(t, c, "rsa2048")
	if len(first) != 2 {
		t.Fatalf("pool = %d keys", len(first))
	}
	counts, err := c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["issued"] != 3 || counts["pool_keys"] != 2 || counts["fresh_keys"] != 1 {
		t.Errorf("first run counts = %v, want 3 issued, 2 from the pool, 1 fresh", counts)
	}
	if n := poolSize(t, c, "rsa2048"); n != 0 {
		t.Errorf("pool after the run = %d, want 0", n)
	}
	if _, err := c.run(poolJob); err != nil {
		t.Fatal(err)
	}
	second := poolPublicKeys(t, c, "rsa2048")
	counts, err = c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["issued"] != 1 || counts["pool_keys"] != 1 || counts["fresh_keys"] != 0 {
		t.Errorf("second run counts = %v, want 1 issued from the pool", counts)
	}
	if n := poolSize(t, c, "rsa2048"); n != 1 {
		t.Errorf("pool after the second run = %d, want 1", n)
	}
	left := poolPublicKeys(t, c, "rsa2048")

	used := map[string]string{}
	fromFirst, fromSecond := 0, 0
	for code, p := range c.postazioni() {
		if p.State != domain.CertAttivo {
			t.Fatalf("%s: %s", code, p.State)
		}
		cert, err := x509.ParseCertificate(p.CertDER)
		if err != nil {
			t.Fatal(err)
		}
		pub := string(cert.RawSubjectPublicKeyInfo)
		if other, ok := used[pub]; ok {
			t.Errorf("%s and %s share a key", code, other)
		}
		used[pub] = code
		if first[pub] {
			fromFirst++
		}
		if second[pub] {
			fromSecond++
		}
		if left[pub] {
			t.Errorf("%s: its key is still in the pool", code)
		}
	}
	if fromFirst != 2 || fromSecond != 1 {
		t.Errorf("certificates with first-pool keys %d (want 2), second-pool keys %d (want 1)", fromFirst, fromSecond)
	}
	es, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "pool.prelievo" })
	if len(es) != 2 {
		t.Errorf("pool.prelievo entries = %d, want 2", len(es))
	}
	checkHistory(t, c.env.Store, 4)
	zs := c.zips()
	if len(zs) != 2 {
		t.Fatalf("bundles = %v", zs)
	}
}

// TestCertificatiTakesPoolKeysByChunksEachOnce: a batch larger than a
// chunk takes the pool's keys chunk after chunk, each chunk in its own
// transaction with its history entry, uses every key once, and generates
// the keys the pool no longer has.
func TestCertificatiTakesPoolKeysByChunksEachOnce(t *testing.T) {
	defer func(n int) { poolChunk = n }(poolChunk)
	poolChunk = 2
	c := newCertEnv(t)
	c.census() // four requests, RSA-2048
	c.env.Config.PKI.KeyPool = 3
	if _, err := c.run(poolJob); err != nil {
		t.Fatal(err)
	}
	pooled := poolPublicKeys(t, c, "rsa2048")
	counts, err := c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["issued"] != 4 || counts["pool_keys"] != 3 || counts["fresh_keys"] != 1 {
		t.Errorf("counts = %v, want 4 issued, 3 from the pool, 1 fresh", counts)
	}
	if n := poolSize(t, c, "rsa2048"); n != 0 {
		t.Errorf("pool after the run = %d, want 0", n)
	}
	used := map[string]string{}
	fromPool := 0
	for code, p := range c.postazioni() {
		cert, err := x509.ParseCertificate(p.CertDER)
		if err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		pub := string(cert.RawSubjectPublicKeyInfo)
		if other, ok := used[pub]; ok {
			t.Errorf("%s and %s share a key", code, other)
		}
		used[pub] = code
		if pooled[pub] {
			fromPool++
		}
	}
	if fromPool != 3 {
		t.Errorf("certificates with pool keys = %d, want 3", fromPool)
	}
	es, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "pool.prelievo" })
	if len(es) != 2 || es[0].Detail != "2 chiavi rsa2048 prelevate per l'emissione" || es[1].Detail != "1 chiavi rsa2048 prelevate per l'emissione" {
		var details []string
		for _, e := range es {
			details = append(details, e.Detail)
		}
		t.Errorf("pool.prelievo entries = %q, want a chunk of 2 then the last key", details)
	}
}

func TestPoolChiaviConfig(t *testing.T) {
	c := config.Default(t.TempDir())
	if c.PKI.KeyPool != 2000 || c.Schedules["pool-chiavi"] != "*/2 * * * *" {
		t.Errorf("defaults: key_pool %d, schedule %q", c.PKI.KeyPool, c.Schedules["pool-chiavi"])
	}
	if !slices.Contains(Names, "pool-chiavi") || Names[len(Names)-1] != "pool-chiavi" {
		t.Errorf("Names = %v", Names)
	}
	found := false
	for _, j := range All() {
		found = found || j.Name == "pool-chiavi"
	}
	if !found {
		t.Error("pool-chiavi not in All()")
	}
	c.PKI.KeyPool = -1
	if err := c.Validate(); err == nil {
		t.Error("negative pki.key_pool accepted")
	}
}
