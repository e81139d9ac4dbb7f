package jobs

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

// crlOf reads and checks the published CRL files.
func (c *certEnv) crlOf() *x509.RevocationList {
	c.t.Helper()
	der, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(CRLFileDER)))
	if err != nil {
		c.t.Fatal(err)
	}
	pemData, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(CRLFilePEM)))
	if err != nil {
		c.t.Fatal(err)
	}
	if b, _ := pem.Decode(pemData); b == nil || b.Type != "X509 CRL" || string(b.Bytes) != string(der) {
		c.t.Fatal("the PEM CRL is not the DER one")
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		c.t.Fatal(err)
	}
	ca, err := pki.LoadCA(c.env.Config.PKI.CACert, c.env.Config.PKI.CAKey)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
		c.t.Errorf("CRL signature: %v", err)
	}
	if got := crl.NextUpdate.Sub(crl.ThisUpdate); got != c.env.Config.PKI.CRLValidity {
		c.t.Errorf("nextUpdate - thisUpdate = %v", got)
	}
	return crl
}

func reasons(crl *x509.RevocationList) map[string]int {
	out := map[string]int{}
	for _, e := range crl.RevokedCertificateEntries {
		out[fmt.Sprintf("%X", e.SerialNumber)] = e.ReasonCode
	}
	return out
}

// TestCRL: block one certificate and revoke another; the CRL lists both on
// hold (the revocation is not final yet); after unblock the held one is
// gone; after the batch the revoked one is there for good with its reason.
// OpenSSL reads the CRL and refuses the held and revoked certificates.
func TestCRL(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	ps := c.postazioni()
	held, gone, fine := ps["058091-PC-0001"], ps["058091-PC-0002"], ps["058091-PC-0003"]
	st := c.env.Store

	// An empty CRL first.
	counts, err := c.run(crlJob)
	if err != nil {
		t.Fatal(err)
	}
	if crl := c.crlOf(); crl.Number.Int64() != 1 || len(crl.RevokedCertificateEntries) != 0 || counts["crl_number"] != 1 {
		t.Errorf("first CRL: number %v, %d entries, counts %v", crl.Number, len(crl.RevokedCertificateEntries), counts)
	}

	src := store.Source{Actor: lifecycle.BackOfficeActor}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpBlockPostazione, held.Code, "prova"); err != nil {
		t.Fatal(err)
	}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpRevokePostazione, gone.Code, "furto"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	counts, err = c.run(crlJob)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("crl run: %v in %v", counts, time.Since(start))
	crl := c.crlOf()
	r := reasons(crl)
	if crl.Number.Int64() != 2 || len(r) != 2 || r[held.Serial] != pki.ReasonCertificateHold || r[gone.Serial] != pki.ReasonCertificateHold {
		t.Errorf("CRL 2: number %v, reasons %v; want %s and %s on hold", crl.Number, r, held.Serial, gone.Serial)
	}
	if counts["crl_held"] != 2 || counts["crl_revoked"] != 0 {
		t.Errorf("counts = %v", counts)
	}
	text := c.openSSLCRL(t)
	if text != "" {
		for _, want := range []string{held.Serial, gone.Serial, "Certificate Hold", "X509v3 CRL Number:", "CN = " + pki.DevCACommonName} {
			if !strings.Contains(text, want) {
				t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
			}
		}
		if !regexp.MustCompile(`X509v3 CRL Number:\s*\n\s*2\n`).MatchString(text) {
			t.Errorf("openssl crl -text: CRL number is not 2:\n%s", text)
		}
		c.openSSLVerify(t, held, false)
		c.openSSLVerify(t, gone, false)
		c.openSSLVerify(t, fine, true)
	}

	// Unblock: the held serial is gone from the next CRL.
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpUnblockPostazione, held.Code, "errore"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	crl = c.crlOf()
	if r := reasons(crl); crl.Number.Int64() != 3 || len(r) != 1 || r[gone.Serial] != pki.ReasonCertificateHold {
		t.Errorf("CRL 3: number %v, reasons %v; want only %s", crl.Number, r, gone.Serial)
	}
	if text := c.openSSLCRL(t); text != "" {
		if strings.Contains(text, held.Serial) {
			t.Errorf("unblocked serial still in the CRL:\n%s", text)
		}
		c.openSSLVerify(t, held, true)
	}

	// The batch makes the revocation final: keyCompromise (motivo "furto").
	c.env.Config.PKI.RevokeGrace = 0 // no undo window
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	if p := c.postazioni()[gone.Code]; p.State != domain.CertRevocato {
		t.Fatalf("%s = %s", gone.Code, p.State)
	}
	counts, err = c.run(crlJob)
	if err != nil {
		t.Fatal(err)
	}
	crl = c.crlOf()
	if r := reasons(crl); crl.Number.Int64() != 4 || len(r) != 1 || r[gone.Serial] != pki.ReasonKeyCompromise || counts["crl_revoked"] != 1 {
		t.Errorf("CRL 4: number %v, reasons %v, counts %v; want %s keyCompromise", crl.Number, r, counts, gone.Serial)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if want := c.postazioni()[gone.Code].RevokedAt.Truncate(time.Second); !e.RevocationTime.Equal(want) {
			t.Errorf("revocation time %v, want %v (the revoke request)", e.RevocationTime, want)
		}
	}
	if text := c.openSSLCRL(t); text != "" {
		if !strings.Contains(text, "Key Compromise") || strings.Contains(text, "Certificate Hold") {
			t.Errorf("openssl crl -text after the batch:\n%s", text)
		}
		c.openSSLVerify(t, gone, false)
	}

	var last *store.CRL
	st.View(func(tx *store.Tx) (err error) { last, err = tx.LastCRL(); return err })
	if last == nil || last.Number != 4 || last.Published.IsZero() || len(last.Files) != 2 {
		t.Errorf("last CRL record = %+v", last)
	}
	es, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "crl.firmata" })
	if len(es) != 4 {
		t.Errorf("crl.firmata entries = %d, want 4", len(es))
	}
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("history verify: %v", err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(c.root, "crl", ".*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// openSSLCRL returns `openssl crl -text` of the published DER CRL, or ""
// when openssl is not installed.
func (c *certEnv) openSSLCRL(t *testing.T) string {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not installed: CRL checks with openssl skipped")
		return ""
	}
	out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", filepath.Join(c.root, "crl", "anprsec.crl"), "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	return string(out)
}

// openSSLVerify runs openssl verify -crl_check on p's certificate with the
// published PEM CRL.
func (c *certEnv) openSSLVerify(t *testing.T, p *domain.Postazione, wantOK bool) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		return
	}
	f := filepath.Join(t.TempDir(), p.Code+".pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.CertDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "verify", "-crl_check", "-CAfile", c.env.Config.PKI.CACert,
		"-CRLfile", filepath.Join(c.root, "crl", "anprsec.crl.pem"), f).CombinedOutput()
	switch {
	case wantOK && err != nil:
		t.Errorf("%s: openssl verify failed: %v\n%s", p.Code, err, out)
	case !wantOK && err == nil:
		t.Errorf("%s: openssl verify accepted a held or revoked certificate:\n%s", p.Code, out)
	case !wantOK && !strings.Contains(string(out), "certificate revoked"):
		t.Errorf("%s: openssl verify: want \"certificate revoked\":\n%s", p.Code, out)
	}
}

func TestCRLStoreRefusesNoSerial(t *testing.T) {
	c := newCertEnv(t)
	c.env.Store.Update(func(tx *store.Tx) error {
		return tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0001", ISTAT: "058091", State: domain.CertBloccato})
	})
	if _, err := c.run(crlJob); err == nil || !strings.Contains(err.Error(), "non ha il numero di serie del certificato") {
		t.Errorf("CRL with a held certificate without serial: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.root, "crl", "anprsec.crl")); err == nil {
		t.Error("CRL published anyway")
	}
}

// TestCRLValidityFromConfig: nextUpdate - thisUpdate is pki.crl_validity;
// a validity of 1h or less is refused.
func TestCRLValidityFromConfig(t *testing.T) {
	c := newCertEnv(t)
	c.env.Config.PKI.CRLValidity = 3 * time.Hour
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	if crl := c.crlOf(); crl.NextUpdate.Sub(crl.ThisUpdate) != 3*time.Hour {
		t.Errorf("validity %v, want 3h", crl.NextUpdate.Sub(crl.ThisUpdate))
	}
	c.env.Config.PKI.CRLValidity = time.Hour
	if _, err := c.run(crlJob); err == nil || !strings.Contains(err.Error(), "pki.crl_validity") {
		t.Errorf("crl_validity 1h: %v", err)
	}
}
