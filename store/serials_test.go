package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"anprsec/domain"
)

// The serial index follows every change of a postazione: its state at
// once, a replaced serial is no longer found, and it holds no certificate
// or sealed secret.
func TestSerialIndexFollowsThePostazione(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	p := &domain.Postazione{Code: "058091-PC-0001", ISTAT: "058091", State: domain.CertRichiesta}
	must(t, s.Update(func(tx *Tx) error { return tx.PutPostazione(p) }))
	lookup := func(serial string) (*domain.Postazione, error) {
		var got *domain.Postazione
		err := s.View(func(tx *Tx) error {
			var err error
			got, err = tx.PostazioneBySerial(serial)
			return err
		})
		return got, err
	}
	p.State, p.Serial, p.CertDER, p.P12Sealed = domain.CertAttivo, "5A0B", []byte("cert"), []byte("p12")
	must(t, s.Update(func(tx *Tx) error { return tx.PutPostazione(p) }))
	got, err := lookup("5a0b")
	if err != nil || got.Code != p.Code || got.State != domain.CertAttivo {
		t.Fatalf("by serial: %+v, %v", got, err)
	}
	if got.CertDER != nil || got.P12Sealed != nil {
		t.Error("the index keeps the certificate or the sealed P12")
	}
	p.State, p.HoldSince = domain.CertBloccato, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	must(t, s.Update(func(tx *Tx) error { return tx.PutPostazione(p) }))
	if got, err := lookup("5A0B"); err != nil || got.State != domain.CertBloccato || !got.HoldSince.Equal(p.HoldSince) {
		t.Fatalf("after the block: %+v, %v", got, err)
	}
	p.State, p.Serial = domain.CertAttivo, "6C0D"
	must(t, s.Update(func(tx *Tx) error { return tx.PutPostazione(p) }))
	if _, err := lookup("5A0B"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the replaced serial: %v, want ErrNotFound", err)
	}
	if got, err := lookup("6C0D"); err != nil || got.Code != p.Code {
		t.Errorf("the new serial: %+v, %v", got, err)
	}
	if _, err := lookup("ABCDEF"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a serial never issued: %v", err)
	}
}

// A store written before the index existed gets it, in batches, once.
func TestIndexSerialsFillsAnOlderStoreOnce(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	const n = 23
	must(t, s.Update(func(tx *Tx) error {
		for i := 1; i <= n; i++ {
			p := &domain.Postazione{Code: domain.WorkstationCode("058091", i), ISTAT: "058091", State: domain.CertAttivo}
			if i%5 != 0 {
				p.Serial = fmt.Sprintf("%X", 0x1000+i)
			} else {
				p.State = domain.CertRichiesta
			}
			// as an older anprsec wrote it: the record and no index
			if err := tx.set("w/"+p.Code, p); err != nil {
				return err
			}
		}
		return nil
	}))
	read, err := s.IndexSerials(4)
	if err != nil || read != n {
		t.Fatalf("IndexSerials read %d, %v; want %d", read, err, n)
	}
	must(t, s.View(func(tx *Tx) error {
		for i := 1; i <= n; i++ {
			_, err := tx.PostazioneBySerial(fmt.Sprintf("%X", 0x1000+i))
			if i%5 != 0 && err != nil {
				t.Errorf("serial of %d: %v", i, err)
			}
			if i%5 == 0 && !errors.Is(err, ErrNotFound) {
				t.Errorf("postazione %d without a certificate is indexed: %v", i, err)
			}
		}
		return nil
	}))
	if again, err := s.IndexSerials(4); err != nil || again != 0 {
		t.Errorf("second IndexSerials read %d, %v; want 0", again, err)
	}
}
