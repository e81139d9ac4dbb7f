package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/domain"
	"anprsec/secret"
)

// sealedFixture is what a rotation test puts in the store: every kind of
// sealed value, with its plaintext.
type sealedFixture struct {
	plain map[string][]byte // context -> plaintext
}

const (
	fixturePostazioni = 150
	fixtureCards      = 150
	fixturePool       = 300
)

// fillSealed puts postazioni with PKCS#12 and password, smart cards with
// both halves, pooled keys and an OCSP responder key, all sealed with s,
// and the seal check value.
func fillSealed(t *testing.T, st *Store, s *Sealer) *sealedFixture {
	t.Helper()
	fx := &sealedFixture{plain: map[string][]byte{}}
	seal := func(plain, context string) []byte {
		fx.plain[context] = []byte(plain)
		return s.Seal([]byte(plain), context)
	}
	must(t, st.Update(func(tx *Tx) error {
		for i := 0; i < fixturePostazioni; i++ {
			code := fmt.Sprintf("058091-PC-%04d", i)
			p := &domain.Postazione{Code: code, ISTAT: "058091", State: domain.CertAttivo,
				P12Sealed:      seal("p12 of "+code, domain.P12SealContext(code)),
				PasswordSealed: seal("pw of "+code, domain.PasswordSealContext(code))}
			if err := tx.PutPostazione(p); err != nil {
				return err
			}
		}
		for i := 0; i < fixtureCards; i++ {
			serial := fmt.Sprintf("SC%010d", i)
			c := &domain.SmartCard{Serial: serial, CF: "RSSMRA68A01H501Y", State: domain.CardRichiesta,
				FirstSealed:  seal("first of "+serial, domain.CardSecretsSealContext(serial, "prima")),
				SecondSealed: seal("second of "+serial, domain.CardSecretsSealContext(serial, "seconda"))}
			if i%3 == 0 {
				c.FirstSealed = nil // already published: erased
				delete(fx.plain, domain.CardSecretsSealContext(serial, "prima"))
			}
			if err := tx.PutCard(c); err != nil {
				return err
			}
		}
		for i := 0; i < fixturePool; i++ {
			if _, err := tx.PutPoolKey("rsa2048", func(c string) []byte { return seal("der "+c, c) }); err != nil {
				return err
			}
		}
		return tx.PutOCSPResponder(&OCSPResponder{CAKeyID: "abcd", CertDER: []byte("cert"),
			KeySealed: seal("responder key", OCSPResponderSealContext("abcd"))})
	}))
	if _, err := st.CheckSealKey(s); err != nil {
		t.Fatal(err)
	}
	return fx
}

// sealedValues returns every sealed value in the store with its context.
func sealedValues(t *testing.T, st *Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	must(t, st.View(func(tx *Tx) error {
		for _, prefix := range sealedPrefixes {
			err := tx.scan(prefix, true, func(k string, v []byte) (bool, error) {
				collect := func(sealed []byte, context string) ([]byte, bool, error) {
					out[context] = sealed
					return sealed, false, nil
				}
				_, _, err := resealRecordWith(k, v, collect)
				return err == nil, err
			})
			if err != nil {
				return err
			}
		}
		return nil
	}))
	return out
}

// writeSealKey writes a seal key file in dir and returns its path.
func writeSealKey(t *testing.T, dir string, k []byte) string {
	t.Helper()
	p := filepath.Join(dir, "seal.key")
	if err := os.WriteFile(p, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkRotated asserts that every value of fx opens with the key now in
// sealPath and none with old, that old is archived, and that the history
// verifies with one chiavi.rotazione entry.
func checkRotated(t *testing.T, st *Store, fx *sealedFixture, sealPath string, old []byte) {
	t.Helper()
	cur, err := secret.ReadKey(sealPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cur, old) {
		t.Fatal("the seal key file still holds the old key")
	}
	newS, _ := NewSealer(cur)
	oldS, _ := NewSealer(old)
	vals := sealedValues(t, st)
	if len(vals) != len(fx.plain)+1 { // + the seal check value
		t.Errorf("%d sealed values in the store, want %d", len(vals), len(fx.plain)+1)
	}
	for context, want := range fx.plain {
		sealed, ok := vals[context]
		if !ok {
			t.Errorf("%s: lost", context)
			continue
		}
		got, err := newS.Open(sealed, context)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: new key opens %q, %v; want %q", context, got, err, want)
		}
		if _, err := oldS.Open(sealed, context); err == nil {
			t.Errorf("%s: the old key still opens it", context)
		}
	}
	if _, err := st.CheckSealKey(newS); err != nil {
		t.Errorf("check with the new key: %v", err)
	}
	if _, err := st.CheckSealKey(oldS); !errors.Is(err, ErrSealKey) {
		t.Errorf("check with the old key = %v, want ErrSealKey", err)
	}
	archives, _ := filepath.Glob(sealPath + ".*.old")
	if len(archives) != 1 {
		t.Fatalf("archived keys %v, want one", archives)
	}
	if a, _ := os.ReadFile(archives[0]); !bytes.Equal(a, old) {
		t.Error("the archive does not hold the old key")
	}
	if fi, _ := os.Stat(archives[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %04o, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Lstat(sealPath + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.new left behind (%v)", sealPath, err)
	}
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("history: %v", err)
	}
	es, err := st.History(0, 0, func(e *Entry) bool { return e.Action == "chiavi.rotazione" })
	if err != nil || len(es) != 1 {
		t.Fatalf("chiavi.rotazione entries %v, %v; want one", es, err)
	}
	if d := es[0].Detail; strings.Contains(d, string(old)) || strings.Contains(d, string(cur)) || !strings.Contains(d, KeyFingerprint(old)) {
		t.Errorf("history detail %q: want the fingerprints, no key material", d)
	}
}

func TestSealKeyRotationResealsEveryValue(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, filepath.Join(dir, "data"))
	defer st.Close()
	old := bytes.Repeat([]byte{1}, secret.KeySize)
	sealPath := writeSealKey(t, dir, old)
	fx := fillSealed(t, st, sealerOf(t, 1))
	res, err := st.RotateSealKey(sealPath, Source{Actor: "test"}, SealRotationOptions{Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(fx.plain) + 1; res.Resealed != want {
		t.Errorf("resealed %d values, want %d", res.Resealed, want)
	}
	checkRotated(t, st, fx, sealPath, old)
}

// A rotation stopped after its first batch leaves the store refusing the
// seal key, with a message saying to run the rotation again; the next run
// completes it and nothing is lost.
func TestSealKeyRotationStoppedAfterABatchResumes(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, filepath.Join(dir, "data"))
	defer st.Close()
	old := bytes.Repeat([]byte{1}, secret.KeySize)
	sealPath := writeSealKey(t, dir, old)
	fx := fillSealed(t, st, sealerOf(t, 1))
	stop := errors.New("stopped")
	_, err := st.RotateSealKey(sealPath, Source{Actor: "test"}, SealRotationOptions{Batch: 64,
		AfterBatch: func(int) error { return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("first run = %v, want stopped", err)
	}
	if err := st.SealRotationPending(); !errors.Is(err, ErrSealRotationPending) {
		t.Errorf("SealRotationPending during the rotation = %v", err)
	}
	for _, k := range [][]byte{old, mustRead(t, sealPath+".new")} {
		s, _ := NewSealer(k)
		if _, err := st.CheckSealKey(s); !errors.Is(err, ErrSealRotationPending) || !strings.Contains(err.Error(), "keys rotate seal") {
			t.Errorf("check during the rotation = %v, want ErrSealRotationPending saying to run it again", err)
		}
	}
	res, err := st.RotateSealKey(sealPath, Source{Actor: "test"}, SealRotationOptions{Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Resealed >= len(fx.plain)+1 || res.Resealed == 0 {
		t.Errorf("second run: resumed %v, resealed %d; want a resumed run that sealed what the first left", res.Resumed, res.Resealed)
	}
	checkRotated(t, st, fx, sealPath, old)
}

// A rotation stopped after the key files were swapped, before it left
// the meta, finishes on the next run with the new key in place.
func TestSealKeyRotationStoppedAfterTheSwapFinishes(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, filepath.Join(dir, "data"))
	defer st.Close()
	old := bytes.Repeat([]byte{1}, secret.KeySize)
	sealPath := writeSealKey(t, dir, old)
	fx := fillSealed(t, st, sealerOf(t, 1))
	stop := errors.New("stopped")
	_, err := st.RotateSealKey(sealPath, Source{Actor: "test"}, SealRotationOptions{AfterSwap: func() error { return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("first run = %v, want stopped", err)
	}
	s, _ := NewSealer(mustRead(t, sealPath))
	if _, err := st.CheckSealKey(s); !errors.Is(err, ErrSealRotationPending) {
		t.Errorf("check with the swapped key before the end = %v, want ErrSealRotationPending", err)
	}
	res, err := st.RotateSealKey(sealPath, Source{Actor: "test"}, SealRotationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Resealed != 0 || !strings.HasSuffix(res.Archive, ".old") {
		t.Errorf("resumed after the swap: resumed %v, resealed %d, archive %q", res.Resumed, res.Resealed, res.Archive)
	}
	checkRotated(t, st, fx, sealPath, old)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
