package store

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"anprsec/secret"
)

func TestKeyPoolTakeOnce(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	sealer, err := NewSealer(bytes.Repeat([]byte{9}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	const total = 100
	err = s.Update(func(tx *Tx) error {
		for i := 0; i < total; i++ {
			if _, err := tx.PutPoolKey("rsa2048", func(ctx string) []byte {
				return sealer.Seal([]byte(fmt.Sprintf("key-%d", i)), ctx)
			}); err != nil {
				return err
			}
		}
		// A key of another algorithm is never taken for rsa2048.
		_, err := tx.PutPoolKey("ecdsa-p256", func(ctx string) []byte { return sealer.Seal([]byte("ec"), ctx) })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Two takers at once, through store.Update, until the pool is empty.
	var mu sync.Mutex
	seen := map[uint64]int{}
	plain := map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var got []PoolKey
				if err := s.Update(func(tx *Tx) error {
					var err error
					got, err = tx.TakePoolKeys("rsa2048", 7)
					return err
				}); err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, k := range got {
					seen[k.Seq]++
					p, err := sealer.Open(k.Sealed, PoolSealContext(k.Seq))
					if err != nil {
						t.Errorf("seq %d: %v", k.Seq, err)
					}
					plain[string(p)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != total || len(plain) != total {
		t.Errorf("taken %d distinct seqs, %d distinct keys; want %d", len(seen), len(plain), total)
	}
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("seq %d taken %d times", seq, n)
		}
	}
	if plain["ec"] != 0 {
		t.Error("took a key of another algorithm")
	}
	s.View(func(tx *Tx) error {
		if n, _ := tx.PoolSize("rsa2048"); n != 0 {
			t.Errorf("rsa2048 pool = %d after taking all", n)
		}
		if n, _ := tx.PoolSize("ecdsa-p256"); n != 1 {
			t.Errorf("ecdsa pool = %d, want 1", n)
		}
		return nil
	})
	// Sequence numbers are gap-free and never reused.
	var seq uint64
	s.Update(func(tx *Tx) error {
		seq, err = tx.PutPoolKey("rsa2048", func(ctx string) []byte { return sealer.Seal([]byte("x"), ctx) })
		return err
	})
	if seq != total+2 {
		t.Errorf("next seq = %d, want %d", seq, total+2)
	}
	// A sealed key does not open under another key's context.
	s.Update(func(tx *Tx) error {
		ks, _ := tx.TakePoolKeys("rsa2048", 1)
		if len(ks) != 1 {
			t.Fatalf("took %d", len(ks))
		}
		if _, err := sealer.Open(ks[0].Sealed, PoolSealContext(ks[0].Seq+1)); err == nil {
			t.Error("pool key opens under another context")
		}
		n, err := tx.PurgePoolKeys("rsa2048")
		if n != 1 || err != nil {
			t.Errorf("purge = %d, %v; want 1", n, err)
		}
		return nil
	})
}
