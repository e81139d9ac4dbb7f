package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"anprsec/domain"
	"anprsec/secret"
)

func sealerOf(t *testing.T, b byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{b}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A new store takes the first seal key it is checked with, and from then
// on refuses any other.
func TestSealCheckValueRefusesAnotherKey(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	right, wrong := sealerOf(t, 1), sealerOf(t, 2)
	if written, err := s.CheckSealKey(right); err != nil || !written {
		t.Fatalf("first check = %v, %v; want the check value written", written, err)
	}
	if written, err := s.CheckSealKey(right); err != nil || written {
		t.Errorf("same key again = %v, %v; want ok, nothing written", written, err)
	}
	if _, err := s.CheckSealKey(wrong); !errors.Is(err, ErrSealKey) {
		t.Errorf("another key = %v, want ErrSealKey", err)
	}
}

// A store made before the check value existed gets one only when the key
// opens a value already sealed in it; a key that does not is refused,
// naming the value, and nothing is written.
func TestSealCheckOfAnOlderStoreTriesItsSealedValues(t *testing.T) {
	right, wrong := sealerOf(t, 1), sealerOf(t, 2)
	for _, tc := range []struct {
		name, what string
		put        func(tx *Tx) error
	}{
		{"pooled key", "pooled key", func(tx *Tx) error {
			_, err := tx.PutPoolKey("rsa2048", func(c string) []byte { return right.Seal([]byte("der"), c) })
			return err
		}},
		{"postazione", "postazione 058091-PC-0001", func(tx *Tx) error {
			return tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0001", ISTAT: "058091", State: domain.CertAttivo,
				PasswordSealed: right.Seal([]byte("pw"), domain.PasswordSealContext("058091-PC-0001"))})
		}},
		{"smart card", "smart card SC0000000001", func(tx *Tx) error {
			return tx.PutCard(&domain.SmartCard{Serial: "SC0000000001", CF: "RSSMRA68A01H501Y", State: domain.CardRichiesta,
				SecondSealed: right.Seal([]byte("pin"), domain.CardSecretsSealContext("SC0000000001", "seconda"))})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, t.TempDir())
			defer s.Close()
			if err := s.Update(tc.put); err != nil {
				t.Fatal(err)
			}
			_, err := s.CheckSealKey(wrong)
			if !errors.Is(err, ErrSealKey) || !strings.Contains(err.Error(), tc.what) {
				t.Fatalf("wrong key = %v, want ErrSealKey naming %q", err, tc.what)
			}
			var check []byte
			if err := s.View(func(tx *Tx) error { return tx.Meta(sealCheckMeta, &check) }); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a check value was written for the wrong key (%v)", err)
			}
			if written, err := s.CheckSealKey(right); err != nil || !written {
				t.Fatalf("right key = %v, %v; want the check value written", written, err)
			}
			if _, err := s.CheckSealKey(wrong); !errors.Is(err, ErrSealKey) {
				t.Errorf("wrong key after the check value = %v", err)
			}
		})
	}
}

// A store just set up (only its check value) is empty for a restore, and
// the restore replaces its check value with the backup's: the restored
// store takes the seal key of the site it came from.
func TestRestoreBringsTheBackupsSealCheck(t *testing.T) {
	bkey := bytes.Repeat([]byte{9}, secret.KeySize)
	src := openTest(t, t.TempDir())
	siteA, siteB := sealerOf(t, 1), sealerOf(t, 2)
	if _, err := src.CheckSealKey(siteA); err != nil {
		t.Fatal(err)
	}
	src.Update(func(tx *Tx) error { return tx.Record(Source{Actor: "t"}, "prova", "k", "1", "") })
	var buf bytes.Buffer
	if err := src.Backup(&buf, bkey); err != nil {
		t.Fatal(err)
	}
	src.Close()

	dst := openTest(t, t.TempDir())
	defer dst.Close()
	if _, err := dst.CheckSealKey(siteB); err != nil {
		t.Fatal(err)
	}
	if empty, err := dst.IsEmpty(); err != nil || !empty {
		t.Fatalf("a store holding only its check value: empty = %v, %v", empty, err)
	}
	if err := dst.Restore(&buf, bkey); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.CheckSealKey(siteB); !errors.Is(err, ErrSealKey) {
		t.Errorf("the target's own seal key after the restore = %v, want ErrSealKey", err)
	}
	if _, err := dst.CheckSealKey(siteA); err != nil {
		t.Errorf("the source's seal key after the restore = %v", err)
	}
}
