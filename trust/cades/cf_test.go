package cades

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"
)

// certWithSubject issues a card certificate of the given subject from a
// development CA.
func certWithSubject(t *testing.T, subject pkix.Name) *x509.Certificate {
	t.Helper()
	now := time.Now()
	ca := pastCA(t, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	card := pastCard(t, ca, now.Add(-time.Hour), now.AddDate(0, 6, 0))
	tmpl := *card.Cert
	tmpl.Subject = subject
	tmpl.RawSubject = nil
	cert, err := x509CreateFrom(&tmpl, ca.Cert, card, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCFIsReadFromSerialNumberOrCNSCommonName(t *testing.T) {
	for _, tt := range []struct {
		name    string
		subject pkix.Name
		want    string // "" = refused
	}{
		{"TINIT", pkix.Name{CommonName: "MARIO ROSSI", SerialNumber: "TINIT-" + testCF}, testCF},
		{"TINIT minuscolo", pkix.Name{CommonName: "MARIO ROSSI", SerialNumber: "tinit-rssmra80a01h501u"}, testCF},
		{"IT: dei certificati meno recenti", pkix.Name{CommonName: "MARIO ROSSI", SerialNumber: "IT:" + testCF}, testCF},
		{"CNS", pkix.Name{CommonName: testCF + "/7420000000000000.Ab3dEf5hIj7lMn9pQr1tUv3xYz5="}, testCF},
		{"serialNumber prima del CN", pkix.Name{CommonName: "VRDGPP80A01H501X/1234.abc=", SerialNumber: "TINIT-" + testCF}, testCF},
		{"nessun CF", pkix.Name{CommonName: "MARIO ROSSI"}, ""},
		{"serialNumber senza prefisso", pkix.Name{CommonName: "MARIO ROSSI", SerialNumber: testCF}, ""},
		{"CN di solo CF", pkix.Name{CommonName: testCF}, testCF},
		{"CN con nome", pkix.Name{CommonName: "ROSSI MARIO/7420000000000000.abc="}, ""},
		{"CF con controllo errato", pkix.Name{SerialNumber: "TINIT-RSSMRA80A01H501X"}, ""},
		{"partita IVA", pkix.Name{SerialNumber: "VATIT-01234567890"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cf, err := signerCF(certWithSubject(t, tt.subject))
			if tt.want == "" {
				if err == nil || err.Code != FirmatarioSenzaCF {
					t.Fatalf("got CF %q, err %v; want %s", cf, err, FirmatarioSenzaCF)
				}
				return
			}
			if err != nil || cf != tt.want {
				t.Fatalf("got CF %q, err %v; want %q", cf, err, tt.want)
			}
		})
	}
}

func TestCertificateNotForSigningIsNotTrusted(t *testing.T) {
	now := time.Now()
	ca := pastCA(t, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	card := pastCard(t, ca, now.Add(-time.Hour), now.AddDate(0, 6, 0))
	tmpl := *card.Cert
	tmpl.KeyUsage = x509.KeyUsageKeyEncipherment
	cert, err := x509CreateFrom(&tmpl, ca.Cert, card, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign([]byte(testDoc), cert, card.Key, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(nil, sig, false, devAnchors(t, ca), now)
	wantCode(t, err, CertificatoNonFidato, "non è abilitato alla firma")
}

func TestEnvelopeWithTrailingNewlineIsAccepted(t *testing.T) {
	ca, card := devCard(t)
	sig, err := Sign([]byte(testDoc), card.Cert, card.Key, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Verify(nil, append(sig, "\r\n\x00"...), false, devAnchors(t, ca), time.Now())
	wantAccepted(t, s, err)
}
