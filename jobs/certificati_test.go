package jobs

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/export/bundle"
	"anprsec/istat"
	"anprsec/pki"
	"anprsec/secret"
	"anprsec/store"
	"anprsec/trust/cades"
)

// failingDrop fails the next `fails` writes under comuni/ or produttore/:
// a crash between commit and publication. The check that the folders take
// files (drop.ProbeName) passes: the drop fails only afterwards.
type failingDrop struct {
	drop.Drop
	fails atomic.Int32
}

func (d *failingDrop) Write(ctx context.Context, name string, r io.Reader) error {
	if (strings.HasPrefix(name, "comuni/") || strings.HasPrefix(name, "produttore/")) && !strings.HasPrefix(path.Base(name), drop.ProbeName) && d.fails.Add(-1) >= 0 {
		return errors.New("simulated crash before publication")
	}
	return d.Drop.Write(ctx, name, r)
}

type certEnv struct {
	t    *testing.T
	root string
	env  *Env
	fd   *failingDrop
}

func newCertEnv(t *testing.T) *certEnv { t.Helper(); return newCertEnvAt(t, nil) }

// newCertEnvAt is newCertEnv with the store's clock now (nil: the real one).
func newCertEnvAt(t *testing.T, now func() time.Time) *certEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Key: bytes.Repeat([]byte{1}, secret.KeySize), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root := filepath.Join(dir, "drop")
	d, err := drop.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default(dir)
	cfg.Drop.Settle = 0
	cfg.PKI.CACert = filepath.Join(dir, "ca.crt")
	cfg.PKI.CAKey = filepath.Join(dir, "ca.key")
	if _, err := pki.CreateDevCABits(cfg.PKI.CACert, cfg.PKI.CAKey, time.Now(), 2048); err != nil {
		t.Fatal(err)
	}
	// The card CA console requests are signed under (trust.card_ca).
	if _, err := cades.NewDevCA(filepath.Dir(cfg.Path(cfg.Trust.CardCA))); err != nil {
		t.Fatal(err)
	}
	sealer, err := store.NewSealer(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		t.Fatal(err)
	}
	fd := &failingDrop{Drop: d}
	return &certEnv{t: t, root: root, fd: fd, env: &Env{Config: cfg, Store: st, Drop: fd, Comuni: istat.Default(), Loc: loc, Sealer: sealer}}
}

func (c *certEnv) run(job Job) (map[string]int, error) {
	r := &Run{ID: "t", Log: discardLog(), Counts: map[string]int{}}
	err := job.Run(context.Background(), c.env, r)
	for k, v := range r.Values { // the tests read both; no name is both
		r.Counts[k] = v
	}
	return r.Counts, err
}

// census ingests ingest/census/testdata/casi.xlsx: comune 058091 with
// three workstations and the server in RICHIESTA IN LAVORAZIONE.
func (c *certEnv) census() {
	c.t.Helper()
	data, err := os.ReadFile("../ingest/census/testdata/casi.xlsx")
	if err != nil {
		c.t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(c.root, "censimento"), 0o755)
	if err := os.WriteFile(filepath.Join(c.root, "censimento", "casi.xlsx"), data, 0o644); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.run(censimentoJob); err != nil {
		c.t.Fatal(err)
	}
}

func (c *certEnv) zips() []string {
	c.t.Helper()
	m, _ := filepath.Glob(filepath.Join(c.root, "comuni", "058091", "certificati", "*"))
	sort.Strings(m)
	return m
}

var wantCodes = []string{"058091-CO-9999", "058091-PC-0001", "058091-PC-0002", "058091-PC-0003"}

// postazioni returns the four postazioni of the fixture.
func (c *certEnv) postazioni() map[string]*domain.Postazione {
	c.t.Helper()
	out := map[string]*domain.Postazione{}
	c.env.Store.View(func(tx *store.Tx) error {
		return tx.PostazioniOfComune("058091", func(p *domain.Postazione) error { out[p.Code] = p; return nil })
	})
	return out
}

// checkZip opens a published bundle, verifies every member and returns the
// passwords and P12s by code.
func (c *certEnv) checkZip(path string) (map[string]string, map[string][]byte) {
	t := c.t
	t.Helper()
	if !regexpZip.MatchString(filepath.Base(path)) {
		t.Errorf("bundle name %s", filepath.Base(path))
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	p12s := map[string][]byte{}
	var pwText []byte
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Method != zip.Deflate {
			t.Errorf("%s: method %d, want Deflate", f.Name, f.Method)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc) // checks the CRC
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if f.Name == bundle.PasswordFile {
			pwText = b
		} else {
			p12s[strings.TrimSuffix(f.Name, ".p12")] = b
		}
	}
	want := []string{}
	for _, c := range wantCodes {
		want = append(want, c+".p12")
	}
	want = append(want, "password.txt")
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("members = %v, want %v", names, want)
	}
	pws := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(pwText), "\n"), "\n") {
		code, pw, ok := strings.Cut(line, ";")
		if !ok || len(pw) != c.env.Config.PKI.PasswordLength || strings.Contains(line, "\r") {
			t.Errorf("password.txt line %q", line)
		}
		pws[code] = pw
	}
	if len(pws) != 4 {
		t.Errorf("password.txt = %q", pwText)
	}
	if unzip, err := exec.LookPath("unzip"); err == nil {
		if out, err := exec.Command(unzip, "-t", path).CombinedOutput(); err != nil {
			t.Errorf("unzip -t: %v\n%s", err, out)
		}
	}
	return pws, p12s
}

func TestCertificati(t *testing.T) {
	c := newCertEnv(t)
	c.census()

	start := time.Now()
	counts, err := c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first run: %v in %v", counts, time.Since(start))
	if counts["issued"] != 4 || counts["failed"] != 0 || counts["bundles"] != 1 {
		t.Errorf("counts = %v, want 4 issued, 1 bundle", counts)
	}
	zips := c.zips()
	if len(zips) != 1 {
		t.Fatalf("bundles = %v, want 1", zips)
	}
	pws, p12s := c.checkZip(zips[0])

	ca, err := pki.LoadCA(c.env.Config.PKI.CACert, c.env.Config.PKI.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	ps := c.postazioni()
	serials := map[string]string{}
	for _, code := range wantCodes {
		p := ps[code]
		if p == nil || p.State != domain.CertAttivo || p.Serial == "" || p.NotAfter.IsZero() {
			t.Fatalf("%s = %+v", code, p)
		}
		serials[code] = p.Serial
		cert, err := x509.ParseCertificate(p.CertDER)
		if err != nil || cert.Subject.CommonName != code || len(cert.Subject.Organization) != 1 {
			t.Errorf("%s: certificate %v %v", code, cert, err)
		}
		if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
			t.Errorf("%s: %v", code, err)
		}
		raw, _ := json.Marshal(p)
		if bytes.Contains(raw, []byte(pws[code])) || bytes.Contains(p.P12Sealed, []byte(pws[code])) {
			t.Errorf("%s: clear password in the stored record", code)
		}
		p12, err := c.env.Sealer.Open(p.P12Sealed, domain.P12SealContext(code))
		if err != nil || !bytes.Equal(p12, p12s[code]) {
			t.Errorf("%s: sealed P12 differs from the published one (%v)", code, err)
		}
		pw, err := c.env.Sealer.Open(p.PasswordSealed, domain.PasswordSealContext(code))
		if err != nil || string(pw) != pws[code] {
			t.Errorf("%s: sealed password %q, %v; password.txt has %q", code, pw, err, pws[code])
		}
		if _, err := c.env.Sealer.Open(p.P12Sealed, domain.PasswordSealContext(code)); err == nil {
			t.Errorf("%s: sealed P12 opens under another context", code)
		}
	}
	openSSLCheck(t, pws, p12s)
	clientsCheck(t, c.env.Config.PKI.CACert, pws, p12s)

	// Second run: nothing new.
	counts, err = c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["issued"] != 0 || counts["bundles"] != 0 {
		t.Errorf("second run counts = %v, want nothing", counts)
	}
	if z := c.zips(); len(z) != 1 {
		t.Errorf("bundles after second run = %v", z)
	}
	for code, p := range c.postazioni() {
		if p.Serial != serials[code] {
			t.Errorf("%s reissued", code)
		}
	}
	checkHistory(t, c.env.Store, 4)
}

func TestCertificatiCrashBeforePublish(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	c.fd.fails.Store(1)
	counts, err := c.run(certificatiJob)
	if err == nil || !strings.Contains(err.Error(), "simulated crash") {
		t.Fatalf("run error = %v, want the simulated crash", err)
	}
	if counts["issued"] != 4 || counts["bundles"] != 0 {
		t.Errorf("counts = %v, want 4 issued, no bundle", counts)
	}
	if z := c.zips(); len(z) != 0 {
		t.Fatalf("published despite the failure: %v", z)
	}
	var pending []string
	c.env.Store.View(func(tx *store.Tx) error { pending, _ = tx.PendingBundles(); return nil })
	if len(pending) != 1 {
		t.Fatalf("pending bundles = %v, want 1", pending)
	}
	serials := map[string]string{}
	for code, p := range c.postazioni() {
		if p.State != domain.CertAttivo {
			t.Errorf("%s: %s, want ATTIVO", code, p.State)
		}
		serials[code] = p.Serial
	}

	counts, err = c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["issued"] != 0 || counts["bundles"] != 1 {
		t.Errorf("recovery counts = %v, want 0 issued, 1 bundle", counts)
	}
	z := c.zips()
	stamp := strings.TrimPrefix(pending[0], "058091/")
	if len(z) != 1 || filepath.Base(z[0]) != "058091-certificati-"+stamp+".zip" {
		t.Fatalf("bundles = %v, want the pending one %s", z, pending[0])
	}
	pws, p12s := c.checkZip(z[0])
	openSSLCheck(t, pws, p12s)
	ps := c.postazioni()
	if len(ps) != 4 {
		t.Errorf("postazioni = %d", len(ps))
	}
	for code, p := range ps {
		if p.Serial != serials[code] {
			t.Errorf("%s: second certificate issued (%s, was %s)", code, p.Serial, serials[code])
		}
	}
	c.env.Store.View(func(tx *store.Tx) error {
		pending, _ = tx.PendingBundles()
		if n, _ := tx.Count("b/"); n != 1 {
			t.Errorf("bundle records = %d, want 1", n)
		}
		return nil
	})
	if len(pending) != 0 {
		t.Errorf("still pending: %v", pending)
	}
	checkHistory(t, c.env.Store, 4)
}

// TestCertificatiFailure: a request that cannot be issued stays RICHIESTA
// with the reason and a count of attempts, and is retried at each run; the
// others of the comune are issued.
func TestCertificatiFailure(t *testing.T) {
	c := newCertEnv(t)
	c.env.Store.Update(func(tx *store.Tx) error {
		tx.PutComune(&domain.Comune{ISTAT: "058091", Name: "Roma", Province: "058"})
		for _, code := range []string{"058091-PC-0001", "058091-PC-00X2"} { // the second is not a valid CN
			tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: "058091", State: domain.CertRichiesta})
		}
		return nil
	})
	for attempt := 1; attempt <= 2; attempt++ {
		counts, err := c.run(certificatiJob)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"failed": 1}
		if attempt == 1 {
			want = map[string]int{"issued": 1, "failed": 1, "bundles": 1}
		}
		for k, v := range want {
			if counts[k] != v {
				t.Errorf("run %d: counts = %v, want %v", attempt, counts, want)
			}
		}
		p := c.postazioni()["058091-PC-00X2"]
		if p.State != domain.CertRichiesta || p.Attempts != attempt || p.LastError == "" {
			t.Errorf("run %d: failed request = %+v", attempt, p)
		}
	}
	if p := c.postazioni()["058091-PC-0001"]; p.State != domain.CertAttivo {
		t.Errorf("valid request = %s", p.State)
	}
	var ok bool
	es, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.errore" })
	ok = len(es) == 2
	if !ok {
		t.Errorf("error history entries = %d, want 2", len(es))
	}
	checkHistory(t, c.env.Store, 1)
}

func TestCertificatiBatchMax(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	c.env.Config.PKI.BatchMax = 3
	for i, want := range []int{3, 1, 0} {
		counts, err := c.run(certificatiJob)
		if err != nil {
			t.Fatal(err)
		}
		if counts["issued"] != want {
			t.Errorf("run %d: issued %d, want %d", i+1, counts["issued"], want)
		}
	}
	// Two bundles, one second apart at least in their stamps.
	var n int
	c.env.Store.View(func(tx *store.Tx) error { n, _ = tx.Count("b/"); return nil })
	if n != 2 || len(c.zips()) != 2 {
		t.Errorf("bundle records %d, zips %v; want 2", n, c.zips())
	}
}

func TestCertificatiNoSealer(t *testing.T) {
	c := newCertEnv(t)
	c.env.Sealer = nil
	if _, err := c.run(certificatiJob); err == nil {
		t.Error("ran without a seal key")
	}
}

func checkHistory(t *testing.T, st *store.Store, activated int) {
	t.Helper()
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("history verify: %v", err)
	}
	es, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.attiva" })
	if err != nil || len(es) != activated {
		t.Errorf("postazione.attiva entries = %d (%v), want %d", len(es), err, activated)
	}
	for _, e := range es {
		if !strings.Contains(e.Detail, "seriale") {
			t.Errorf("history detail %q", e.Detail)
		}
	}
	pub, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "bundle.pubblicato" })
	if len(pub) == 0 {
		t.Error("no bundle.pubblicato entry")
	}
}

// openSSLCheck opens each P12 with the password of password.txt and checks
// the friendlyName.
func openSSLCheck(t *testing.T, pws map[string]string, p12s map[string][]byte) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not installed: P12 check skipped")
		return
	}
	dir := t.TempDir()
	for code, der := range p12s {
		f := filepath.Join(dir, code+".p12")
		if err := os.WriteFile(f, der, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(openssl, "pkcs12", "-info", "-nokeys", "-in", f, "-passin", "pass:"+pws[code]).CombinedOutput()
		if err != nil {
			t.Errorf("%s: openssl pkcs12: %v\n%s", code, err, out)
			continue
		}
		if !strings.Contains(string(out), "friendlyName: "+code) {
			t.Errorf("%s: friendlyName missing:\n%s", code, out)
		}
		if !strings.Contains(string(out), "CN=058091-") && !strings.Contains(string(out), "CN = "+code) {
			t.Errorf("%s: subject missing:\n%s", code, out)
		}
	}
}

// clientsCheck opens each P12 of the bundle, with the password of
// password.txt, as the comuni's clients will: OpenSSL chains its
// certificate to the CA, NSS's pk12util imports it, Java's keytool lists it
// under the alias = code (Java lowercases aliases). A missing tool is a skip
// with its name.
func clientsCheck(t *testing.T, caFile string, pws map[string]string, p12s map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	for code, der := range p12s {
		f := filepath.Join(dir, code+".p12")
		if err := os.WriteFile(f, der, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Run(code, func(t *testing.T) {
			if openssl, err := exec.LookPath("openssl"); err == nil {
				pem := filepath.Join(dir, code+".pem")
				if out, err := exec.Command(openssl, "pkcs12", "-in", f, "-clcerts", "-nokeys", "-passin", "pass:"+pws[code], "-out", pem).CombinedOutput(); err != nil {
					t.Fatalf("openssl pkcs12 -clcerts: %v\n%s", err, out)
				}
				if out, err := exec.Command(openssl, "verify", "-CAfile", caFile, pem).CombinedOutput(); err != nil || !strings.Contains(string(out), ": OK") {
					t.Errorf("openssl verify: %v\n%s", err, out)
				}
			} else {
				t.Log("openssl not installed: verify skipped")
			}
			if pk12util, err := exec.LookPath("pk12util"); err == nil {
				db := t.TempDir()
				if out, err := exec.Command("certutil", "-N", "-d", "sql:"+db, "--empty-password").CombinedOutput(); err != nil {
					t.Fatalf("certutil -N: %v\n%s", err, out)
				}
				if out, err := exec.Command(pk12util, "-i", f, "-d", "sql:"+db, "-W", pws[code], "-K", "").CombinedOutput(); err != nil {
					t.Errorf("pk12util -i: %v\n%s", err, out)
				}
				out, _ := exec.Command("certutil", "-L", "-d", "sql:"+db).CombinedOutput()
				if !strings.Contains(string(out), code) {
					t.Errorf("NSS database after pk12util -i lacks %s:\n%s", code, out)
				}
			} else {
				t.Log("pk12util (libnss3-tools) not installed: NSS import skipped")
			}
			if keytool, err := exec.LookPath("keytool"); err == nil {
				out, err := exec.Command(keytool, "-list", "-storetype", "PKCS12", "-keystore", f, "-storepass", pws[code]).CombinedOutput()
				if err != nil || !strings.Contains(string(out), strings.ToLower(code)+",") || !strings.Contains(string(out), "PrivateKeyEntry") {
					t.Errorf("keytool -list: %v\n%s", err, out)
				}
			} else {
				t.Log("keytool (Java) not installed: Java check skipped")
			}
		})
	}
}

var regexpZip = regexp.MustCompile(`^058091-certificati-[0-9]{8}-[0-9]{6}\.zip$`)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Every certificate of a batch names the CRL and the OCSP responder of the
// config, so a relying party finds them from the certificate alone.
func TestIssuedCertificatesNameTheConfiguredCRLAndOCSP(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	pc := &c.env.Config.PKI
	pc.CRLURL, pc.OCSPURL, pc.CAIssuersURL = "http://pki.example.it/crl/anprsec.crl", "http://pki.example.it/ocsp", "http://pki.example.it/ca/anprsec.crt"
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	ps := c.postazioni()
	if len(ps) != len(wantCodes) {
		t.Fatalf("%d postazioni", len(ps))
	}
	for code, p := range ps {
		cert, err := x509.ParseCertificate(p.CertDER)
		if err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		if !slices.Equal(cert.CRLDistributionPoints, []string{pc.CRLURL}) || !slices.Equal(cert.OCSPServer, []string{pc.OCSPURL}) ||
			!slices.Equal(cert.IssuingCertificateURL, []string{pc.CAIssuersURL}) {
			t.Errorf("%s: CDP %v, OCSP %v, CA issuers %v", code, cert.CRLDistributionPoints, cert.OCSPServer, cert.IssuingCertificateURL)
		}
	}
}
