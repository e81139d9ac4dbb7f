package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/export/audit"
	"anprsec/secret"
	"anprsec/store"
)

var rome = func() *time.Location {
	l, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		panic(err)
	}
	return l
}()

// now is the fixed clock of the fixture: 20 November 2026, 10:00 in Rome.
var now = time.Date(2026, 11, 20, 10, 0, 0, 0, rome)

// Formula-like values that must arrive as text.
const (
	evilSurname = "=HYPERLINK(\"http://x\";\"clic\")"
	evilLabel   = "=1+1"
	evilName    = "+39 06 1234"
	evilPEC     = "@SUM(1;2)"
	evilEmail   = "-2+3@example.it"
)

type fixture struct {
	st   *store.Store
	out  string // drop root
	drop *drop.Local
}

func certDER(t testing.TB, notBefore, notAfter time.Time) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "058091-PC-0001"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type personSpec struct {
	cf, surname, name string
	card              domain.CardState // "" = no card
	activated         time.Time
	expires           time.Time
}

type utenzaSpec struct {
	istat, cf string
	profiles  []domain.Profile
	state     domain.UtenzaState
	email     string
	pec       string
}

// newFixture builds a small store:
//
//	058091 ROMA: ASC (active card), ALS (blocked card), ALP (active card
//	  expiring in 10 days), an operator with a formula for a surname, a
//	  person with utenze in three comuni; PC-0001 ATTIVO expiring in 10
//	  days, PC-0002 REVOCATO in October, labelled "=1+1"; a refused request.
//	001272 TORINO: ASC without card, ALS without card, no ALP.
//	015146 MILANO: only the person of the three comuni.
//	063049 NAPOLI: no utenze at all.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	clock := now.Add(-time.Hour) // history entries an hour before the export
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{3}, secret.KeySize),
		Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	out := filepath.Join(dir, "drop")
	d, err := drop.NewLocal(out)
	if err != nil {
		t.Fatal(err)
	}
	oct := time.Date(2026, 10, 15, 9, 30, 0, 0, rome)
	persons := []personSpec{
		{"RSSMRA68A01H501Y", "ROSSI", "MARIO", domain.CardAttiva, oct, now.AddDate(3, 0, 0)},
		{"BNCLCU80A41H501X", "BIANCHI", "LUCIA", domain.CardBloccata, oct, now.AddDate(3, 0, 0)},
		{"VRDGPP75C12H501Z", "VERDI", "GIUSEPPE", domain.CardAttiva, now.AddDate(0, 0, -3), now.AddDate(0, 0, 10)},
		{"NRILGU90D15H501A", evilSurname, evilName, "", time.Time{}, time.Time{}},
		{"GLLNNA85E50F205B", "GIALLI", "ANNA", "", time.Time{}, time.Time{}},
		{"BRNPLA70A01L219C", "BRUNO", "PAOLA", "", time.Time{}, time.Time{}},
		{"NREFBA60B02L219D", "NERI", "FABIO", "", time.Time{}, time.Time{}},
	}
	utenze := []utenzaSpec{
		{"058091", "RSSMRA68A01H501Y", []domain.Profile{domain.ASC}, domain.UtenzaAttiva, "mario.rossi@example.it", ""},
		{"058091", "BNCLCU80A41H501X", []domain.Profile{domain.ALS}, domain.UtenzaAttiva, "lucia@example.it", "lucia@pec.example.it"},
		{"058091", "VRDGPP75C12H501Z", []domain.Profile{domain.Operatore, domain.ALP}, domain.UtenzaAttiva, "gv@example.it", ""},
		{"058091", "NRILGU90D15H501A", []domain.Profile{domain.Operatore}, domain.UtenzaBloccata, evilEmail, evilPEC},
		{"058091", "GLLNNA85E50F205B", []domain.Profile{domain.Consultazione}, domain.UtenzaAttiva, "anna@example.it", ""},
		{"001272", "GLLNNA85E50F205B", []domain.Profile{domain.Consultazione}, domain.UtenzaAttiva, "anna@example.it", ""},
		{"015146", "GLLNNA85E50F205B", []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, "anna@example.it", ""},
		{"001272", "BRNPLA70A01L219C", []domain.Profile{domain.ASC}, domain.UtenzaAttiva, "paola@example.it", ""},
		{"001272", "NREFBA60B02L219D", []domain.Profile{domain.ALS}, domain.UtenzaAttiva, "fabio@example.it", ""},
	}
	err = st.Update(func(tx *store.Tx) error {
		for _, c := range []domain.Comune{
			{ISTAT: "058091", Name: "Roma", Province: "058", Created: oct, Updated: oct},
			{ISTAT: "001272", Name: "Torino", Province: "001", Created: oct, Updated: oct},
			{ISTAT: "015146", Name: "Milano", Province: "015", Created: oct, Updated: oct},
			{ISTAT: "063049", Name: "Napoli", Province: "063", Created: oct, Updated: oct},
		} {
			if err := tx.PutComune(&c); err != nil {
				return err
			}
		}
		for i, p := range persons {
			rec := domain.Person{CF: p.cf, Surname: p.surname, Name: p.name, Updated: oct}
			if p.card != "" {
				rec.Card = "SC" + strings.Repeat("0", 6) + string(rune('1'+i))
				card := domain.SmartCard{Serial: rec.Card, CF: p.cf, ISTAT: "058091", State: p.card,
					Requested: oct, Updated: oct, Activated: p.activated, Expires: p.expires}
				if err := tx.InsertCard(&card); err != nil {
					return err
				}
			}
			if err := tx.PutPerson(&rec); err != nil {
				return err
			}
		}
		for _, u := range utenze {
			rec := domain.Utenza{ISTAT: u.istat, CF: u.cf, Email: u.email, PEC: u.pec, Profiles: u.profiles,
				Environments: []domain.Environment{domain.Produzione}, State: u.state, Created: oct, Updated: oct}
			for _, p := range u.profiles {
				if info, _ := domain.LookupProfile(string(p)); info.NeedsCard {
					rec.NeedsCard = true
				}
			}
			if err := tx.PutUtenza(&rec); err != nil {
				return err
			}
		}
		posts := []domain.Postazione{
			{Code: "058091-PC-0001", ISTAT: "058091", Label: "Anagrafe 1", State: domain.CertAttivo, Serial: "0a1b",
				NotAfter: now.AddDate(0, 0, 10), CertDER: certDER(t, oct, now.AddDate(0, 0, 10)), Created: oct, Updated: oct},
			{Code: "058091-PC-0002", ISTAT: "058091", Label: evilLabel, State: domain.CertRevocato, Serial: "0c2d",
				NotAfter: now.AddDate(1, 0, 0), RevokedAt: oct.Add(48 * time.Hour), Created: oct, Updated: oct},
			{Code: "058091-CO-9999", ISTAT: "058091", Server: true, State: domain.CertRichiesta, Created: oct, Updated: oct},
			{Code: "001272-PC-0001", ISTAT: "001272", State: domain.CertRichiesta, Created: oct, Updated: oct},
		}
		for i := range posts {
			if err := tx.PutPostazione(&posts[i]); err != nil {
				return err
			}
		}
		if err := tx.Record(store.Source{Actor: "censimento", File: "censimento/italia.xlsx", Sheet: "Utenti", Row: 2},
			"utenza.crea", "utenza", "058091/RSSMRA68A01H501Y", "profili ASC"); err != nil {
			return err
		}
		return tx.Record(store.Source{Actor: "BNCLCU80A41H501X", File: "comuni/058091/richieste/r1.csv", Row: 3},
			audit.RefusedAction, "richiesta", "058091/REGISTRA_POSTAZIONE", "l'operatore non ha il profilo ALP")
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, out: out, drop: d}
}

func (fx *fixture) exporter(t testing.TB) *audit.Exporter {
	return &audit.Exporter{Store: fx.st, Target: fx.drop, TempDir: t.TempDir(), Location: rome,
		Now: func() time.Time { return now }}
}

func (fx *fixture) read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fx.out, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var _ = context.Background
