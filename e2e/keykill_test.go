package e2e

import (
	"bytes"
	be "encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/secret"
	"anprsec/store"
)

// The sealed values the key kill tests put in a store: context -> plain.
const (
	killPool       = 12000
	killPostazioni = 3000
	killCards      = 3000
)

// fillSealed writes pooled keys, postazioni with PKCS#12 and password and
// smart cards with both halves into the store of w, sealed with its seal
// key, and returns their plaintexts by seal context.
func (w *workdir) fillSealed(t *testing.T) map[string][]byte {
	t.Helper()
	k, err := secret.ReadKey(w.path("var/keys/seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.NewSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	plain := map[string][]byte{}
	seal := func(p, context string) []byte {
		plain[context] = []byte(p)
		return s.Seal([]byte(p), context)
	}
	st := w.openStore(false)
	defer st.Close()
	for i := 0; i < killPool; i += 1000 {
		err := st.Update(func(tx *store.Tx) error {
			for j := 0; j < 1000; j++ {
				if _, err := tx.PutPoolKey("rsa2048", func(c string) []byte { return seal("der "+c, c) }); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < killPostazioni; i += 500 {
		err := st.Update(func(tx *store.Tx) error {
			for j := i; j < i+500; j++ {
				code := fmt.Sprintf("058091-PC-%04d", j)
				c := &domain.SmartCard{Serial: fmt.Sprintf("SC%010d", j), CF: "RSSMRA68A01H501Y", State: domain.CardRichiesta}
				c.FirstSealed = seal("first "+c.Serial, domain.CardSecretsSealContext(c.Serial, "prima"))
				c.SecondSealed = seal("second "+c.Serial, domain.CardSecretsSealContext(c.Serial, "seconda"))
				if err := tx.PutCard(c); err != nil {
					return err
				}
				p := &domain.Postazione{Code: code, ISTAT: "058091", State: domain.CertAttivo,
					P12Sealed:      seal("p12 "+code, domain.P12SealContext(code)),
					PasswordSealed: seal("pw "+code, domain.PasswordSealContext(code))}
				if err := tx.PutPostazione(p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return plain
}

// checkSealed asserts that every value of plain opens, in the store of
// w, with the seal key in place and with no archived one.
func (w *workdir) checkSealed(t *testing.T, plain map[string][]byte) {
	t.Helper()
	k, err := secret.ReadKey(w.path("var/keys/seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := store.NewSealer(k)
	var olds []*store.Sealer
	archives, _ := filepath.Glob(w.path("var/keys/seal.key.*.old"))
	for _, a := range archives {
		b, _ := os.ReadFile(a)
		o, _ := store.NewSealer(b)
		olds = append(olds, o)
	}
	st := w.openStore(true)
	defer st.Close()
	if _, err := st.CheckSealKey(s); err != nil {
		t.Fatalf("the seal key in place: %v", err)
	}
	open := func(sealed []byte, context string) {
		got, err := s.Open(sealed, context)
		if err != nil || !bytes.Equal(got, plain[context]) {
			t.Errorf("%s: %q, %v; want %q", context, got, err, plain[context])
		}
		for _, o := range olds {
			if _, err := o.Open(sealed, context); err == nil {
				t.Errorf("%s: an archived key opens it", context)
			}
		}
		delete(plain, context)
	}
	err = st.View(func(tx *store.Tx) error {
		for i := 0; i < killPostazioni; i++ {
			code := fmt.Sprintf("058091-PC-%04d", i)
			p, err := tx.Postazione(code)
			if err != nil {
				return err
			}
			open(p.P12Sealed, domain.P12SealContext(code))
			open(p.PasswordSealed, domain.PasswordSealContext(code))
			c, err := tx.Card(fmt.Sprintf("SC%010d", i))
			if err != nil {
				return err
			}
			open(c.FirstSealed, domain.CardSecretsSealContext(c.Serial, "prima"))
			open(c.SecondSealed, domain.CardSecretsSealContext(c.Serial, "seconda"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.RawScan(func(k, v []byte) error {
		if tail, ok := bytes.CutPrefix(k, []byte("k/rsa2048/")); ok && len(tail) == 8 {
			open(v, store.PoolSealContext(be.BigEndian.Uint64(tail)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 0 {
		t.Errorf("%d sealed values lost", len(plain))
	}
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("history: %v", err)
	}
}

// rotations counts the chiavi.rotazione entries of key (seal or store).
func (w *workdir) rotations(key string) int {
	w.t.Helper()
	st := w.openStore(true)
	defer st.Close()
	es, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "chiavi.rotazione" && e.Key == key })
	if err != nil {
		w.t.Fatal(err)
	}
	return len(es)
}

// TestKillDuringKeyRotation kills `anprsec keys rotate seal|store` with
// SIGKILL at random points; between kills a job refuses to start with the
// message to run the rotation again (or runs, when the kill came before
// the rotation began or after it ended); the next rotate finishes it, and
// every sealed value opens with the new seal key, the store with the new
// store key, the history verifies, one rotation recorded.
func TestKillDuringKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and rotates keys of a store of 40,000 sealed values several times")
	}
	bin := binary(t)
	base := t.TempDir()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	t.Logf("kill delays drawn with seed %d", seed)
	for _, kind := range []string{"seal", "store"} {
		t.Run(kind, func(t *testing.T) {
			ref := newWorkdir(t, bin, filepath.Join(base, kind+"-ref"), nil)
			ref.fillSealed(t)
			start := time.Now()
			ref.run("keys", "rotate", kind)
			aim := time.Since(start)
			t.Logf("reference rotation: %v", aim)

			// The kills aim at the rotations they observe: when one ends
			// before its kill (a loaded machine makes the reference slow and
			// the next run fast), its own duration becomes the aim, and the
			// campaign starts again on a fresh store, a few times at most.
			var w *workdir
			var plain map[string][]byte
			hits, done := 0, false
			for attempt := 0; attempt < 5 && hits == 0; attempt++ {
				w = newWorkdir(t, bin, filepath.Join(base, fmt.Sprintf("%s-%d", kind, attempt)), nil)
				plain = w.fillSealed(t)
				kills := 0
				done = false
				for round := 0; round < 8 && !done; round++ {
					d := time.Duration(float64(aim) * (0.1 + 0.8*rng.Float64()))
					killed, ran, stderr := w.killCmdWithin(d, "keys", "rotate", kind)
					kills++
					if !killed {
						if stderr != "" {
							t.Fatalf("the rotation ended before its kill, with: %s", tail(stderr, 2000))
						}
						done = true
						if hits == 0 {
							aim = ran // aim at what a run takes now
							t.Logf("attempt %d: the rotation ended in %v, before its kill: aiming there", attempt, ran.Round(time.Millisecond))
						}
						break
					}
					hits++
					_, serr, err := w.try(nil, "jobs", "run", "scadenze")
					if err != nil && !strings.Contains(serr, "è a metà: rieseguire `anprsec keys rotate "+kind+"`") {
						t.Fatalf("after kill %d (%v): a job failed otherwise than saying to finish the rotation:\n%s", kills, d, tail(serr, 2000))
					}
					t.Logf("kill %d after %v: job refused: %v", kills, d.Round(time.Millisecond), err != nil)
					if err == nil && w.rotations(kind) == 1 {
						done = true // the kill came after the end
					}
				}
			}
			if hits == 0 {
				t.Errorf("no kill hit a running rotation in 5 attempts")
			}
			if !done {
				w.run("keys", "rotate", kind)
			}
			if _, serr, err := w.try(nil, "jobs", "run", "scadenze"); err != nil {
				t.Fatalf("after the rotation: %v\n%s", err, tail(serr, 2000))
			}
			if n := w.rotations(kind); n != 1 {
				t.Errorf("%d rotations of the %s key recorded, want 1", n, kind)
			}
			for _, p := range []string{"var/keys/" + kind + ".key.new", "var/data.new", "var/data.rotate"} {
				if _, err := os.Lstat(w.path(p)); err == nil {
					t.Errorf("%s left behind", p)
				}
			}
			archives, _ := filepath.Glob(w.path("var/keys/" + kind + ".key.*.old"))
			if len(archives) != 1 {
				t.Errorf("archived keys %v, want one", archives)
			}
			w.checkSealed(t, plain)
		})
	}
}
