package cades

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// devCard makes a development CA in a temporary folder and a card of testCF.
func devCard(t *testing.T) (*DevCA, *Card) {
	t.Helper()
	ca, err := NewDevCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	card, err := IssueCard(ca, testCF, "MARIO ROSSI", time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return ca, card
}

func devAnchors(t *testing.T, ca *DevCA) *Anchors {
	t.Helper()
	a, err := NewAnchors(ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// x509CreateFrom re-issues tmpl (with card's public key) from parent.
func x509CreateFrom(tmpl, parent *x509.Certificate, card *Card, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, card.Key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// pastCA makes a development-style CA valid from notBefore to notAfter.
func pastCA(t *testing.T, notBefore, notAfter time.Time) *DevCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "CA del passato"},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &DevCA{Cert: cert, Key: key}
}

// pastCard issues a card of testCF from ca valid from notBefore to notAfter.
func pastCard(t *testing.T, ca *DevCA, notBefore, notAfter time.Time) *Card {
	t.Helper()
	card, err := IssueCard(ca, testCF, "MARIO ROSSI", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *card.Cert
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	cert, err := x509CreateFrom(&tmpl, ca.Cert, card, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &Card{Cert: cert, Key: card.Key, CA: ca.Cert}
}

func TestDevCAIsWrittenOnceAndLoadsBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki", "card-ca")
	ca, err := NewDevCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, DevCAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := NewDevCA(dir); err == nil {
		t.Error("a second NewDevCA replaced the CA")
	}
	back, err := LoadDevCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(ca.Cert) {
		t.Error("LoadDevCA read another certificate")
	}
	a, err := LoadAnchors(filepath.Join(dir, DevCACertFile))
	if err != nil {
		t.Fatal(err)
	}
	card, err := IssueCard(back, testCF, "MARIO ROSSI", time.Now().AddDate(0, 6, 0))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign([]byte(testDoc), card.Cert, card.Key, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Verify(nil, sig, false, a, time.Now())
	wantAccepted(t, s, err)
}

func TestCardCarriesTheCFAsTINITSerialNumber(t *testing.T) {
	_, card := devCard(t)
	if got := card.Cert.Subject.SerialNumber; got != "TINIT-"+testCF {
		t.Errorf("subject serialNumber %q", got)
	}
	if card.Cert.KeyUsage&x509.KeyUsageContentCommitment == 0 {
		t.Error("card certificate lacks nonRepudiation")
	}
}

func TestCardPEMReadsBack(t *testing.T) {
	ca, card := devCard(t)
	data, err := card.PEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCardPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign([]byte(testDoc), back.Cert, back.Key, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Verify([]byte(testDoc), sig, true, devAnchors(t, ca), time.Now())
	wantAccepted(t, s, err)
}

func TestCardWithInvalidCFIsNotIssued(t *testing.T) {
	ca, _ := devCard(t)
	if _, err := IssueCard(ca, "RSSMRA80A01H501X", "MARIO ROSSI", time.Now().AddDate(1, 0, 0)); err == nil {
		t.Error("card issued with a wrong check letter")
	}
}

func TestSignRefusesAKeyOfAnotherCertificate(t *testing.T) {
	ca, card := devCard(t)
	other, err := IssueCard(ca, testCF, "MARIO ROSSI", time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign([]byte(testDoc), card.Cert, other.Key, false); err == nil {
		t.Error("signed with a key that is not the certificate's")
	}
}
