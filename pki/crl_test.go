package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

func TestCreateCRL(t *testing.T) {
	for name, ca := range map[string]*CA{"ecdsa": ecCA(t), "rsa": func() *CA { ca, _, _ := devCA(t); return ca }()} {
		t.Run(name, func(t *testing.T) {
			now := time.Now().UTC()
			_, held := issue(t, ca, KeyECDSAP256, "058091-PC-0001")
			_, gone := issue(t, ca, KeyECDSAP256, "058091-PC-0002")
			_, dismissed := issue(t, ca, KeyECDSAP256, "058091-PC-0003")
			_, unspec := issue(t, ca, KeyECDSAP256, "058091-PC-0004")
			entries := []CRLEntry{
				{Serial: held.SerialNumber, RevokedAt: now.Add(-time.Hour), Reason: ReasonCertificateHold},
				{Serial: gone.SerialNumber, RevokedAt: now.Add(-2 * time.Hour), Reason: ReasonKeyCompromise},
				{Serial: dismissed.SerialNumber, RevokedAt: now, Reason: ReasonCessationOfOperation},
				{Serial: unspec.SerialNumber, Reason: ReasonUnspecified},
			}
			der, err := ca.CreateCRL(entries, big.NewInt(42), now, now.Add(25*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("signature: %v", err)
			}
			if crl.Number.Int64() != 42 || !bytes.Equal(crl.AuthorityKeyId, ca.Cert.SubjectKeyId) ||
				!bytes.Equal(crl.RawIssuer, ca.Cert.RawSubject) {
				t.Errorf("number %v, AKI %x (CA SKI %x), issuer %v", crl.Number, crl.AuthorityKeyId, ca.Cert.SubjectKeyId, crl.Issuer)
			}
			if !crl.ThisUpdate.Equal(now.Truncate(time.Second)) || !crl.NextUpdate.Equal(now.Add(25*time.Hour).Truncate(time.Second)) {
				t.Errorf("thisUpdate %v nextUpdate %v", crl.ThisUpdate, crl.NextUpdate)
			}
			if len(crl.RevokedCertificateEntries) != len(entries) {
				t.Fatalf("%d entries, want %d", len(crl.RevokedCertificateEntries), len(entries))
			}
			for i, e := range crl.RevokedCertificateEntries {
				want := entries[i]
				at := want.RevokedAt
				if at.IsZero() {
					at = now
				}
				if e.SerialNumber.Cmp(want.Serial) != 0 || e.ReasonCode != want.Reason || !e.RevocationTime.Equal(at.Truncate(time.Second)) {
					t.Errorf("entry %d = %X reason %d at %v, want %X reason %d at %v", i, e.SerialNumber, e.ReasonCode, e.RevocationTime, want.Serial, want.Reason, at)
				}
			}
			// Unspecified is written without the reasonCode extension.
			if n := len(crl.RevokedCertificateEntries[3].Extensions); n != 0 {
				t.Errorf("unspecified entry has %d extensions", n)
			}
			// An empty CRL is valid too.
			if _, err := ca.CreateCRL(nil, big.NewInt(1), now, now.Add(time.Hour)); err != nil {
				t.Errorf("empty CRL: %v", err)
			}
			b, _ := pem.Decode(CRLPEM(der))
			if b == nil || b.Type != "X509 CRL" || !bytes.Equal(b.Bytes, der) {
				t.Errorf("CRLPEM")
			}
		})
	}
}

func TestCreateCRLRefuses(t *testing.T) {
	ca := ecCA(t)
	now := time.Now()
	one := []CRLEntry{{Serial: big.NewInt(7), Reason: ReasonCertificateHold}}
	cases := map[string]func() ([]byte, error){
		"no number":   func() ([]byte, error) { return ca.CreateCRL(one, nil, now, now.Add(time.Hour)) },
		"zero number": func() ([]byte, error) { return ca.CreateCRL(one, big.NewInt(0), now, now.Add(time.Hour)) },
		"next before": func() ([]byte, error) { return ca.CreateCRL(one, big.NewInt(1), now, now.Add(-time.Hour)) },
		"no serial":   func() ([]byte, error) { return ca.CreateCRL([]CRLEntry{{}}, big.NewInt(1), now, now.Add(time.Hour)) },
		"unknown reason": func() ([]byte, error) {
			return ca.CreateCRL([]CRLEntry{{Serial: big.NewInt(1), Reason: 9}}, big.NewInt(1), now, now.Add(time.Hour))
		},
		"no crlSign (KU)": func() ([]byte, error) {
			c := *ca.Cert
			c.KeyUsage = x509.KeyUsageCertSign
			return (&CA{Cert: &c, Signer: ca.Signer}).CreateCRL(one, big.NewInt(1), now, now.Add(time.Hour))
		},
		"no SKI": func() ([]byte, error) {
			c := *ca.Cert
			c.SubjectKeyId = nil
			return (&CA{Cert: &c, Signer: ca.Signer}).CreateCRL(one, big.NewInt(1), now, now.Add(time.Hour))
		},
	}
	for name, f := range cases {
		if _, err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRevocationReason(t *testing.T) {
	for motivo, want := range map[string]int{
		"furto":                          ReasonKeyCompromise,
		"PC rubato in ufficio":           ReasonKeyCompromise,
		"smarrimento del portatile":      ReasonKeyCompromise,
		"chiave compromessa":             ReasonKeyCompromise,
		"portatile perso":                ReasonKeyCompromise,
		"postazione dismessa":            ReasonCessationOfOperation,
		"Dismissione ufficio anagrafe":   ReasonCessationOfOperation,
		"sostituita da nuova postazione": ReasonCessationOfOperation,
		"prova":                          ReasonUnspecified,
		"richiesta del personale":        ReasonUnspecified,
		"":                               ReasonUnspecified,
	} {
		if got := RevocationReason(motivo); got != want {
			t.Errorf("RevocationReason(%q) = %s, want %s", motivo, ReasonName(got), ReasonName(want))
		}
	}
}

func TestParseSerialHex(t *testing.T) {
	if n, err := ParseSerialHex("4A0F"); err != nil || n.Int64() != 0x4a0f {
		t.Errorf("ParseSerialHex = %v, %v", n, err)
	}
	for _, bad := range []string{"", "XYZ", "0", "-5"} {
		if _, err := ParseSerialHex(bad); err == nil {
			t.Errorf("ParseSerialHex(%q) accepted", bad)
		}
	}
}
