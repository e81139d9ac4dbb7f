package jobs

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

func (c *certEnv) rollOver() *Rollover {
	c.t.Helper()
	res, err := RollOverCA(c.env, store.Source{Actor: lifecycle.BackOfficeActor}, time.Now(), 2048)
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

func (c *certEnv) cas() []*IssuerCA {
	c.t.Helper()
	var cas []*IssuerCA
	if err := c.env.Store.View(func(tx *store.Tx) error {
		var err error
		cas, err = CAs(c.env.Config, tx)
		return err
	}); err != nil {
		c.t.Fatal(err)
	}
	return cas
}

// A rollover interrupted before its switch leaves the old CA current (the
// certificati batch still issues under it); the rerun resumes it with the
// key already made, which is never made twice nor overwritten.
func TestInterruptedRolloverKeepsTheOldCAAndResumesWithTheSameKey(t *testing.T) {
	c := newCertEnv(t)
	old, err := CurrentCA(c.env)
	if err != nil {
		t.Fatal(err)
	}
	tag := time.Now().In(c.env.Loc).Format("20060102")
	certPath, keyPath, crossPath, err := CAFiles(c.env.Config, tag)
	if err != nil {
		t.Fatal(err)
	}
	// The cross certificate cannot be written: something holds its name.
	if err := os.Mkdir(crossPath, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := RollOverCA(c.env, store.Source{Actor: "t"}, time.Now(), 2048); err == nil || !strings.Contains(err.Error(), "certificato incrociato") {
		t.Fatalf("rollover with the cross certificate's name taken: %v", err)
	}
	key1, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatalf("the key of the interrupted rollover: %v", err)
	}
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}
	if cur, err := CurrentCA(c.env); err != nil || cur.KeyID != old.KeyID {
		t.Fatalf("current CA after an interrupted rollover: %v, %v; want the old one %s", cur, err, old.KeyID)
	}
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	for code, p := range c.postazioni() {
		if p.Issuer != old.KeyID {
			t.Errorf("%s issued by %q during the interrupted rollover, want the old CA %s", code, p.Issuer, old.KeyID)
		}
	}

	os.Remove(crossPath)
	res := c.rollOver()
	if !res.Resumed {
		t.Error("the rerun did not resume the interrupted rollover")
	}
	if len(res.Made) != 1 || res.Made[0] != crossPath {
		t.Errorf("the rerun made %v, want only the cross certificate", res.Made)
	}
	key2, _ := os.ReadFile(keyPath)
	if !bytes.Equal(key1, key2) {
		t.Fatal("the key file changed")
	}
	signer, err := pki.ParsePrivateKeyPEM(key1)
	if err != nil {
		t.Fatal(err)
	}
	if !signer.Public().(*rsa.PublicKey).Equal(res.New.Cert.PublicKey) || res.New.CertPath != certPath {
		t.Error("the new CA is not the key of the interrupted rollover")
	}
	cas := c.cas()
	current := 0
	for _, ca := range cas {
		if ca.Current {
			current++
		}
	}
	if len(cas) != 2 || current != 1 || !cas[1].Current || cas[1].KeyID != res.New.KeyID || cas[0].KeyID != old.KeyID {
		t.Errorf("CAs after the rollover: %+v", cas)
	}
	if n := len(c.history("ca.rinnovo")); n != 1 {
		t.Errorf("%d ca.rinnovo entries", n)
	}
	h := c.history("ca.rinnovo")[0].Detail
	for _, fp := range []string{pki.Fingerprint(res.New.Cert), pki.Fingerprint(res.New.Cross), pki.Fingerprint(old.Cert)} {
		if !strings.Contains(h, fp) {
			t.Errorf("ca.rinnovo %q lacks the fingerprint %s", h, fp)
		}
	}
	// The same day again: refused, nothing made.
	if _, err := RollOverCA(c.env, store.Source{Actor: "t"}, time.Now(), 2048); !errors.Is(err, ErrRolledOver) {
		t.Errorf("a second rollover the same day: %v", err)
	}
}

// After a rollover every certificate is issued by the new CA, its P12
// carries the cross certificate and the new CA; each CA's CRL lists only
// its own certificates, certificates without an issuer record being the
// first CA's.
func TestAfterARolloverTheNewCAIssuesAndEachCRLListsItsOwn(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	ps := c.postazioni()
	// A certificate from before issuers were recorded.
	legacy := ps["058091-PC-0003"]
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		p, err := tx.Postazione(legacy.Code)
		if err != nil {
			return err
		}
		p.Issuer = ""
		return tx.PutPostazione(p)
	}); err != nil {
		t.Fatal(err)
	}
	src := store.Source{Actor: lifecycle.BackOfficeActor}
	for _, code := range []string{"058091-PC-0001", legacy.Code} {
		if _, err := lifecycle.ChangePostazione(c.env.Store, src, lifecycle.OpBlockPostazione, code, "prova"); err != nil {
			t.Fatal(err)
		}
	}
	res := c.rollOver()
	// A new request, issued after the rollover.
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		p, err := tx.Postazione("058091-PC-0002")
		if err != nil {
			return err
		}
		p.State, p.Serial, p.CertDER, p.Issuer = domain.CertRichiesta, "", nil, ""
		return tx.PutPostazione(p)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	renewed := c.postazioni()["058091-PC-0002"]
	if renewed.Issuer != res.New.KeyID {
		t.Fatalf("issued after the rollover by %q, want %s", renewed.Issuer, res.New.KeyID)
	}
	cert, err := x509.ParseCertificate(renewed.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(res.New.Cert); err != nil {
		t.Errorf("not signed by the new CA: %v", err)
	}
	if !strings.Contains(strings.Join(cert.CRLDistributionPoints, " "), "-"+res.New.Tag+".crl") && c.env.Config.PKI.CRLURL != "" {
		t.Errorf("CRL distribution point %v", cert.CRLDistributionPoints)
	}
	if _, err := lifecycle.ChangePostazione(c.env.Store, src, lifecycle.OpBlockPostazione, renewed.Code, "prova"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	oldCRL := c.crlFile(CRLFileDER, res.Old.Cert)
	newDER, _ := res.New.CRLFiles()
	newCRL := c.crlFile(newDER, res.New.Cert)
	if r := reasons(oldCRL); len(r) != 2 || r[ps["058091-PC-0001"].Serial] != pki.ReasonCertificateHold || r[legacy.Serial] != pki.ReasonCertificateHold {
		t.Errorf("old CA's CRL: %v", r)
	}
	if r := reasons(newCRL); len(r) != 1 || r[renewed.Serial] != pki.ReasonCertificateHold {
		t.Errorf("new CA's CRL: %v", r)
	}
	if oldCRL.Number.Cmp(newCRL.Number) == 0 {
		t.Error("both CRLs have the same number")
	}
}

// crlFile reads a published CRL and checks it is signed by ca.
func (c *certEnv) crlFile(name string, ca *x509.Certificate) *x509.RevocationList {
	c.t.Helper()
	der, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(name)))
	if err != nil {
		c.t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		c.t.Errorf("%s: %v", name, err)
	}
	return crl
}

// The previous CA publishes its CRL until its last certificate has expired
// or been replaced; then it is retired, once, with a history entry.
// It is so whether the serial index is complete (read from it) or not yet
// (read from the postazioni).
func TestThePreviousCARetiresWithItsLastCertificate(t *testing.T) {
	for _, indexed := range []bool{false, true} {
		t.Run(map[bool]string{false: "postazioni", true: "index"}[indexed], func(t *testing.T) {
			testPreviousCARetires(t, indexed)
		})
	}
}

func testPreviousCARetires(t *testing.T, indexed bool) {
	c := newCertEnv(t)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	if indexed {
		if _, err := c.env.Store.IndexSerials(0); err != nil {
			t.Fatal(err)
		}
	}
	res := c.rollOver()
	counts, err := c.run(crlJob)
	if err != nil || counts["ca_retired"] != 0 {
		t.Fatalf("crl with the old CA's certificates valid: %v %v", counts, err)
	}
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		return tx.EachPostazioneIn([]domain.CertState{domain.CertAttivo}, func(p *domain.Postazione) error {
			p.NotAfter = tx.Now.Add(-time.Hour)
			return tx.PutPostazione(p)
		})
	}); err != nil {
		t.Fatal(err)
	}
	if counts, err = c.run(crlJob); err != nil || counts["ca_retired"] != 1 {
		t.Fatalf("crl after the old CA's last certificate expired: %v %v", counts, err)
	}
	last := c.crlFile(CRLFileDER, res.Old.Cert)
	if !last.NextUpdate.Equal(res.Old.Cert.NotAfter) {
		t.Errorf("the retired CA's last CRL: nextUpdate %v, want the CA's end %v", last.NextUpdate, res.Old.Cert.NotAfter)
	}
	before, _ := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(CRLFileDER)))
	if counts, err = c.run(crlJob); err != nil || counts["ca_retired"] != 0 {
		t.Fatalf("crl after the retirement: %v %v", counts, err)
	}
	after, _ := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(CRLFileDER)))
	if !bytes.Equal(before, after) {
		t.Error("the retired CA's CRL was signed again")
	}
	cas := c.cas()
	if cas[0].Retired.IsZero() || !cas[1].Retired.IsZero() || !cas[1].Current || cas[1].KeyID != res.New.KeyID {
		t.Errorf("CAs: %+v %+v", cas[0], cas[1])
	}
	if n := len(c.history("ca.ritirata")); n != 1 {
		t.Errorf("%d ca.ritirata entries", n)
	}
}

// scadenze warns of the current CA's expiry at 180, 90 and 30 days, once
// each.
func TestScadenzeWarnsOfTheCAExpiryOncePerThreshold(t *testing.T) {
	c := newCertEnv(t)
	writeShortCA(t, c.env.Config.PKI.CACert, c.env.Config.PKI.CAKey, 100*24*time.Hour)
	for range 2 {
		if _, err := c.run(scadenzeJob); err != nil {
			t.Fatal(err)
		}
	}
	es := c.history("ca.scadenza")
	if len(es) != 1 || !strings.Contains(es[0].Detail, "soglia 180") || !strings.Contains(es[0].Detail, "anprsec ca rinnova") {
		t.Fatalf("ca.scadenza entries: %+v", es)
	}
	writeShortCA(t, c.env.Config.PKI.CACert, c.env.Config.PKI.CAKey, 20*24*time.Hour)
	if _, err := c.run(scadenzeJob); err != nil {
		t.Fatal(err)
	}
	// the same key: the warned threshold is the key's
	es = c.history("ca.scadenza")
	if len(es) != 2 || !strings.Contains(es[1].Detail, "soglia 30") {
		t.Fatalf("ca.scadenza entries: %+v", es)
	}
}

// writeShortCA replaces the CA certificate at certPath with one of the
// same key valid for d.
func writeShortCA(t *testing.T, certPath, keyPath string, d time.Duration) {
	t.Helper()
	key, err := pki.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	ski, _ := pki.SubjectKeyID(key.Public())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "short CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(d),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, SubjectKeyId: ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A rollover interrupted right after its key was made resumes with that
// key: the rerun makes only the certificates.
func TestRolloverInterruptedAfterTheKeyResumesWithIt(t *testing.T) {
	c := newCertEnv(t)
	old, err := CurrentCA(c.env)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath, crossPath, err := CAFiles(c.env.Config, time.Now().In(c.env.Loc).Format("20060102"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(certPath, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := RollOverCA(c.env, store.Source{Actor: "t"}, time.Now(), 2048); err == nil {
		t.Fatal("the rollover went through with its certificate's name taken")
	}
	if _, err := os.Stat(crossPath); err == nil {
		t.Error("a cross certificate was made before the CA certificate")
	}
	key1, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := CurrentCA(c.env); cur.KeyID != old.KeyID {
		t.Fatal("the current CA changed before the switch")
	}
	os.Remove(certPath)
	res := c.rollOver()
	if !res.Resumed || len(res.Made) != 2 || res.Made[0] != certPath || res.Made[1] != crossPath {
		t.Errorf("rerun: resumed %v, made %v", res.Resumed, res.Made)
	}
	if key2, _ := os.ReadFile(keyPath); !bytes.Equal(key1, key2) {
		t.Fatal("the key file changed")
	}
	if cur, _ := CurrentCA(c.env); cur.KeyID != res.New.KeyID || cur.KeyID == old.KeyID {
		t.Error("the new CA is not current after the rerun")
	}
}

// After a second rollover a certificate of the third CA verifies, with
// OpenSSL, under the first CA alone through the cross certificates its P12
// carries.
func TestAfterASecondRolloverTheP12ChainReachesTheFirstCA(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	c := newCertEnv(t)
	first, err := CurrentCA(c.env)
	if err != nil {
		t.Fatal(err)
	}
	src := store.Source{Actor: "t"}
	// the first rollover yesterday (the tag is the day)
	if _, err := RollOverCA(c.env, src, time.Now().AddDate(0, 0, -1), 2048); err != nil {
		t.Fatal(err)
	}
	third, err := RollOverCA(c.env, src, time.Now(), 2048)
	if err != nil {
		t.Fatal(err)
	}
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	p := c.postazioni()["058091-PC-0001"]
	if p.Issuer != third.New.KeyID {
		t.Fatalf("issued by %s, want the third CA %s", p.Issuer, third.New.KeyID)
	}
	dir := t.TempDir()
	write := func(name string, der ...[]byte) string {
		var b bytes.Buffer
		for _, d := range der {
			pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: d})
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// The CA certificates of the P12, as OpenSSL reads them.
	p12, err := c.env.Sealer.Open(p.P12Sealed, domain.P12SealContext(p.Code))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := c.env.Sealer.Open(p.PasswordSealed, domain.PasswordSealContext(p.Code))
	if err != nil {
		t.Fatal(err)
	}
	p12Path := filepath.Join(dir, "pc.p12")
	if err := os.WriteFile(p12Path, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	chainPath := filepath.Join(dir, "chain.pem")
	if out, err := exec.Command(openssl, "pkcs12", "-in", p12Path, "-passin", "pass:"+string(pw), "-nokeys", "-cacerts", "-out", chainPath).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs12: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(chainPath)
	if n := strings.Count(string(data), "BEGIN CERTIFICATE"); n != 3 {
		t.Fatalf("the P12 carries %d CA certificates, want the two cross certificates and the CA", n)
	}
	out, err := exec.Command(openssl, "verify", "-CAfile", write("first.pem", first.Cert.Raw),
		"-untrusted", chainPath, write("leaf.pem", p.CertDER)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "leaf.pem: OK") {
		t.Errorf("openssl verify under the first CA: %v\n%s", err, out)
	}
}

// A renewal after a rollover moves the certificate to the new CA; the
// certificate it replaces stays the old CA's: in the old CA's CRL, reason
// superseded, once its overlap is over, never in the new CA's; the old CA
// is not retired while a replaced certificate is still in its overlap.
func TestARenewalAfterARolloverMovesTheCertificateToTheNewCA(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	res := c.rollOver()
	before := c.postazioni()["058091-PC-0001"]
	c.env.Config.PKI.RenewOverlap = 0 // superseded at once
	if _, err := lifecycle.RequestRenewal(c.env.Store, store.Source{Actor: lifecycle.BackOfficeActor}, before.Code, "rinnovo"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	p := c.postazioni()[before.Code]
	if p.Serial == before.Serial || p.Issuer != res.New.KeyID || len(p.Predecessors) != 1 || p.Predecessors[0].Issuer != res.Old.KeyID {
		t.Fatalf("renewed: serial %s (was %s), issuer %s, predecessors %+v", p.Serial, before.Serial, p.Issuer, p.Predecessors)
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	newDER, _ := res.New.CRLFiles()
	oldCRL, newCRL := reasons(c.crlFile(CRLFileDER, res.Old.Cert)), reasons(c.crlFile(newDER, res.New.Cert))
	if oldCRL[before.Serial] != pki.ReasonSuperseded || len(newCRL) != 0 {
		t.Errorf("old CA's CRL %v, new CA's %v; want %s superseded in the old one only", oldCRL, newCRL, before.Serial)
	}
}
