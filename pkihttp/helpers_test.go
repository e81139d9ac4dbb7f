package pkihttp

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"anprsec/pki"
	"anprsec/secret"
	"anprsec/store"
)

// fixture is a store, a development CA (RSA-2048) in files and a Server
// listening on a loopback port, whose URLs the certificates it issues name.
type fixture struct {
	t      *testing.T
	dir    string
	st     *store.Store
	ca     *pki.CA
	caPath string
	base   string // http://127.0.0.1:PORT
	disc   pki.Discovery
	srv    *Server
	ln     net.Listener
	opt    Options
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{3}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	caPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if _, err := pki.CreateDevCABits(caPath, keyPath, time.Now().Add(-time.Hour), 2048); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(caPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	f := &fixture{t: t, dir: dir, st: st, ca: ca, caPath: caPath, base: base, ln: ln,
		disc: pki.Discovery{CRL: base + "/crl/anprsec.crl", OCSP: base + "/ocsp", CAIssuers: base + "/ca/anprsec.crt"}}
	f.opt = Options{Store: st, CACert: ca.Cert, CRLURL: f.disc.CRL, OCSPURL: f.disc.OCSP, CAIssuersURL: f.disc.CAIssuers,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return f
}

// serve starts the server with f.opt.
func (f *fixture) serve() {
	f.t.Helper()
	srv, err := New(f.opt)
	if err != nil {
		f.t.Fatal(err)
	}
	f.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, f.ln); err != nil {
			f.t.Error(err)
		}
	}()
	f.t.Cleanup(func() { cancel(); wg.Wait() })
}

// issue issues a workstation certificate naming the server's URLs and
// writes it to <dir>/<code>.pem.
func (f *fixture) issue(code string) (*x509.Certificate, string) {
	f.t.Helper()
	key, err := pki.GenerateKey(pki.KeyECDSAP256)
	if err != nil {
		f.t.Fatal(err)
	}
	c, _, err := f.ca.IssueWorkstation(pki.WorkstationRequest{Code: code, Comune: "Roma", PublicKey: key.Public(), Discovery: f.disc})
	if err != nil {
		f.t.Fatal(err)
	}
	p := filepath.Join(f.dir, code+".pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return c, p
}

// putCRL signs a CRL with entries and records it as the crl job does.
func (f *fixture) putCRL(n uint64, entries ...pki.CRLEntry) {
	f.t.Helper()
	now := time.Now()
	der, err := f.ca.CreateCRL(entries, new(big.Int).SetUint64(n), now, now.Add(25*time.Hour))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.Update(func(tx *store.Tx) error {
		return tx.PutCRL(&store.CRL{Number: n, ThisUpdate: now.UTC(), NextUpdate: now.Add(25 * time.Hour).UTC(), Entries: len(entries), DER: der})
	}); err != nil {
		f.t.Fatal(err)
	}
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// run runs a command in dir and returns its combined output; a failure
// is returned as the output too (openssl verify exits 2 on a revoked one).
func run(t testing.TB, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
