package bundle_test

import (
	"bytes"
	"testing"

	"anprsec/domain"
	"anprsec/export/bundle"
	"anprsec/secret"
	"anprsec/store"
)

// TestBundleNeverHoldsAnotherComunesCertificate: a bundle of comune B that
// names a certificate of comune A (however it came to name it) is not
// built: the ZIP for B's folder never holds A's P12 and password.
func TestBundleNeverHoldsAnotherComunesCertificate(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{2}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := store.NewSealer(bytes.Repeat([]byte{4}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	const codeA, codeB = "058091-PC-0001", "001272-PC-0001"
	var b *store.Bundle
	if err := st.Update(func(tx *store.Tx) error {
		for _, w := range []struct{ code, istat string }{{codeA, "058091"}, {codeB, "001272"}} {
			if err := tx.PutPostazione(&domain.Postazione{Code: w.code, ISTAT: w.istat, State: domain.CertAttivo,
				P12Sealed: s.Seal([]byte("p12 di "+w.code), domain.P12SealContext(w.code)), PasswordSealed: s.Seal([]byte("pw"), domain.PasswordSealContext(w.code)),
				Created: tx.Now, Updated: tx.Now}); err != nil {
				return err
			}
		}
		b, err = tx.NewBundle("001272", tx.Now, nil, []string{codeB, codeA})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var entries []bundle.Entry
	err = st.View(func(tx *store.Tx) (err error) {
		entries, err = bundle.Entries(tx, s, b)
		return err
	})
	if err == nil {
		t.Fatalf("B's bundle built with %d entries, A's certificate among them", len(entries))
	}
}
