package pkihttp

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/secret"
	"anprsec/store"
)

// withOCSP adds a responder to the fixture's options (loads counts the
// loads of the CA).
func (f *fixture) withOCSP(rate float64) (*Responder, *atomic.Int32) {
	f.t.Helper()
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, secret.KeySize))
	if err != nil {
		f.t.Fatal(err)
	}
	var loads atomic.Int32
	r, err := NewResponder(ResponderOptions{Store: f.st, Sealer: sealer, CACert: f.ca.Cert,
		LoadCA:   func() (*pki.CA, error) { loads.Add(1); return f.ca, nil },
		Validity: time.Hour, NonceRate: rate, Log: f.opt.Log})
	if err != nil {
		f.t.Fatal(err)
	}
	f.opt.OCSP = r
	return r, &loads
}

// activate stores an ATTIVO postazione holding c, as the certificati job
// leaves it.
func (f *fixture) activate(code string, c *x509.Certificate) {
	f.t.Helper()
	p := &domain.Postazione{Code: code, ISTAT: code[:6], State: domain.CertAttivo, Serial: fmt.Sprintf("%X", c.SerialNumber),
		NotAfter: c.NotAfter, CertDER: c.Raw, Created: time.Now(), Updated: time.Now()}
	if err := f.st.Update(func(tx *store.Tx) error { return tx.PutPostazione(p) }); err != nil {
		f.t.Fatal(err)
	}
}

// opensslOCSP asks the server about pemPath (or a serial: "-serial 0x...")
// with `openssl ocsp` and returns its output; the response must verify
// against the CA.
func (f *fixture) opensslOCSP(openssl string, args ...string) string {
	f.t.Helper()
	all := append([]string{"ocsp", "-issuer", f.caPath, "-CAfile", f.caPath, "-url", f.disc.OCSP, "-resp_text"}, args...)
	out, err := run(f.t, f.dir, openssl, all...)
	if err != nil {
		f.t.Fatalf("openssl %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	if !strings.Contains(out, "Response verify OK") {
		f.t.Fatalf("the response does not verify against the CA:\n%s", out)
	}
	return out
}

// The whole life of a certificate as a relying party sees it with
// `openssl ocsp`, each change answered at once: good; on hold after a
// block; good after the unblock; revoked on hold right after a revoke, for
// good with its reason once final, good again after an undone revoke;
// unknown for a serial never issued. Every response is signed by the
// delegated responder and verifies against the CA, with the client's nonce.
func TestOpenSSLSeesEveryChangeOverOCSPAtOnce(t *testing.T) {
	openssl := tool(t, "openssl")
	f := newFixture(t)
	f.withOCSP(100)
	f.serve()
	a, aPEM := f.issue("058091-PC-0001")
	b, bPEM := f.issue("058091-PC-0002")
	f.activate("058091-PC-0001", a)
	f.activate("058091-PC-0002", b)
	src := store.Source{Actor: "back-office"}
	change := func(op lifecycle.Op, code, motivo string) {
		t.Helper()
		if _, err := lifecycle.ChangePostazione(f.st, src, op, code, motivo); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("openssl ocsp lacks %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, "WARNING: no nonce") || strings.Contains(out, "Nonce Verify error") {
			t.Errorf("the nonce was not echoed:\n%s", out)
		}
	}
	out := f.opensslOCSP(openssl, "-cert", aPEM)
	expect(out, aPEM+": good", "OCSP Nonce", "anprsec OCSP responder")

	change(lifecycle.OpBlockPostazione, "058091-PC-0001", "verifica in corso")
	expect(f.opensslOCSP(openssl, "-cert", aPEM), aPEM+": revoked", "Reason: certificateHold")
	change(lifecycle.OpUnblockPostazione, "058091-PC-0001", "verifica conclusa")
	expect(f.opensslOCSP(openssl, "-cert", aPEM), aPEM+": good")

	expect(f.opensslOCSP(openssl, "-cert", bPEM), bPEM+": good")
	change(lifecycle.OpRevokePostazione, "058091-PC-0002", "furto del PC")
	expect(f.opensslOCSP(openssl, "-cert", bPEM), bPEM+": revoked", "Reason: certificateHold")
	if _, err := lifecycle.UndoRevocation(f.st, src, "058091-PC-0002", "revoca per errore", time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	expect(f.opensslOCSP(openssl, "-cert", bPEM), bPEM+": good")
	change(lifecycle.OpRevokePostazione, "058091-PC-0002", "furto del PC")
	// the certificati batch makes it final after the undo window
	if err := f.st.Update(func(tx *store.Tx) error {
		p, err := tx.Postazione("058091-PC-0002")
		if err != nil {
			return err
		}
		p.State = domain.CertRevocato
		return tx.PutPostazione(p)
	}); err != nil {
		t.Fatal(err)
	}
	out = f.opensslOCSP(openssl, "-cert", bPEM)
	expect(out, bPEM+": revoked", "Reason: keyCompromise", "Revocation Time:")
	if strings.Contains(out, "certificateHold") {
		t.Errorf("a final revocation still on hold:\n%s", out)
	}

	// a made-up serial, under the same issuer
	out = f.opensslOCSP(openssl, "-serial", "0x4A11CE5EED")
	expect(out, "0x4A11CE5EED: unknown")
	// the other one is still good
	expect(f.opensslOCSP(openssl, "-cert", aPEM), aPEM+": good")
}

// Without a nonce the kept response is served until the certificate
// changes; a changed status is signed again at once.
func TestResponsesAreKeptUntilTheCertificateChanges(t *testing.T) {
	f := newFixture(t)
	r, _ := f.withOCSP(0)
	c, _ := f.issue("058091-PC-0001")
	f.activate("058091-PC-0001", c)
	req, err := ocsp.CreateRequest(c, f.ca.Cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := r.Respond(req)
	if !first.Cacheable {
		t.Fatal("a response about a known certificate is not kept")
	}
	for range 5 {
		if again := r.Respond(req); !bytes.Equal(again.DER, first.DER) {
			t.Fatal("the kept response was signed again")
		}
	}
	hits, signed, _ := r.Stats()
	if hits != 5 || signed != 1 {
		t.Errorf("hits %d, signed %d; want 5, 1", hits, signed)
	}
	if _, err := lifecycle.ChangePostazione(f.st, store.Source{Actor: "t"}, lifecycle.OpBlockPostazione, "058091-PC-0001", "verifica"); err != nil {
		t.Fatal(err)
	}
	resp, err := ocsp.ParseResponseForCert(r.Respond(req).DER, c, f.ca.Cert)
	if err != nil || resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.CertificateHold {
		t.Fatalf("after the block: %+v, %v", resp, err)
	}
}

// A request with a nonce gets a fresh response while the rate allows, and
// the kept one (without the nonce) beyond; a serial never issued beyond
// the rate gets tryLater.
func TestNonceResponsesAreBoundedByTheRate(t *testing.T) {
	f := newFixture(t)
	r, _ := f.withOCSP(2)
	now := time.Now()
	r.o.Now = func() time.Time { return now }
	c, _ := f.issue("058091-PC-0001")
	f.activate("058091-PC-0001", c)
	s := r.Signer()
	id, err := s.CertID(crypto.SHA1, c.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	withNonce := func(n byte) []byte { return requestWithNonce(t, id, bytes.Repeat([]byte{n}, 16)) }
	nonced := 0
	for i := range 4 {
		a := r.Respond(withNonce(byte(i + 1)))
		if a.Cacheable {
			continue
		}
		nonced++
	}
	if nonced != 2 {
		t.Errorf("%d fresh responses with a nonce at a rate of 2 a second, want 2", nonced)
	}
	unknown, _ := s.CertID(crypto.SHA1, big.NewInt(0x1234567))
	if a := r.Respond(wrapRequest(unknown)); !bytes.Equal(a.DER, ocsp.TryLaterErrorResponse) {
		t.Errorf("an unknown serial beyond the rate: %x, want tryLater", a.DER)
	}
	now = now.Add(time.Second)
	resp, err := ocsp.ParseResponse(r.Respond(wrapRequest(unknown)).DER, f.ca.Cert)
	if err != nil || resp.Status != ocsp.Unknown {
		t.Errorf("an unknown serial a second later: %+v, %v", resp, err)
	}
}

// The responder certificate is issued once, kept sealed in the store, used
// again by the next responder without loading the CA, and renewed when it
// is due; a due one stays in use while the CA cannot be loaded.
func TestResponderCertificateIsKeptAndRenewedBeforeItExpires(t *testing.T) {
	f := newFixture(t)
	r, loads := f.withOCSP(0)
	first := r.Signer().Cert
	if loads.Load() != 1 {
		t.Fatalf("CA loaded %d times for the first responder certificate", loads.Load())
	}
	entries, err := f.st.History(0, 0, func(e *store.Entry) bool { return e.Action == "ocsp.responder" })
	if err != nil {
		t.Fatal(err)
	}
	if history := len(entries); history != 1 {
		t.Errorf("%d history entries of a responder certificate, want 1", len(entries))
	}
	r2, loads2 := f.withOCSP(0)
	if !bytes.Equal(r2.Signer().Cert.Raw, first.Raw) || loads2.Load() != 0 {
		t.Fatalf("a second responder did not reuse the stored certificate (CA loaded %d times)", loads2.Load())
	}
	c, _ := f.issue("058091-PC-0001")
	f.activate("058091-PC-0001", c)
	req, _ := ocsp.CreateRequest(c, f.ca.Cert, nil)
	before := r2.Respond(req).DER

	// 21 days later it is due: a new one, the kept responses dropped
	later := time.Now().Add(pki.OCSPResponderValidity - pki.OCSPResponderRenewBefore + time.Hour)
	r2.o.Now = func() time.Time { return later }
	if err := r2.Ensure(); err != nil {
		t.Fatal(err)
	}
	renewed := r2.Signer().Cert
	if bytes.Equal(renewed.Raw, first.Raw) || loads2.Load() != 1 || !renewed.NotAfter.After(first.NotAfter) {
		t.Fatalf("not renewed: loads %d, not after %v", loads2.Load(), renewed.NotAfter)
	}
	resp, err := ocsp.ParseResponseForCert(r2.Respond(req).DER, c, f.ca.Cert)
	if err != nil || bytes.Equal(resp.Raw, before) || !bytes.Equal(resp.Certificate.Raw, renewed.Raw) {
		t.Fatalf("the kept response of the old responder was served: %v", err)
	}

	// due, and the CA cannot be loaded: the old one stays in use
	r3, _ := f.withOCSP(0)
	r3.o.LoadCA = func() (*pki.CA, error) { return nil, errors.New("HSM unreachable") }
	r3.o.Now = func() time.Time {
		return later.Add(pki.OCSPResponderValidity - pki.OCSPResponderRenewBefore + time.Hour)
	}
	if err := r3.Ensure(); err == nil {
		t.Fatal("no error without the CA")
	}
	if r3.Signer() == nil || !bytes.Equal(r3.Signer().Cert.Raw, renewed.Raw) {
		t.Fatal("the due but valid responder certificate was dropped")
	}
}

// GET (base64 in the path, with "/" and "+" URL-encoded or not) and POST
// give the same answer; other methods are refused; a malformed request
// gets malformedRequest; another CA's certificate unauthorized.
func TestOCSPOverGETAndPOST(t *testing.T) {
	f := newFixture(t)
	f.withOCSP(0)
	f.serve()
	c, _ := f.issue("058091-PC-0001")
	f.activate("058091-PC-0001", c)
	req, _ := ocsp.CreateRequest(c, f.ca.Cert, nil)
	check := func(name string, do func() (*http.Response, error)) *ocsp.Response {
		t.Helper()
		resp, err := do()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		r, err := ocsp.ParseResponseForCert(body, c, f.ca.Cert)
		if err != nil || r.Status != ocsp.Good {
			t.Fatalf("%s: %+v, %v", name, r, err)
		}
		return r
	}
	post := check("POST", func() (*http.Response, error) {
		return http.Post(f.disc.OCSP, "application/ocsp-request", bytes.NewReader(req))
	})
	b64 := base64.StdEncoding.EncodeToString(req)
	got := check("GET", func() (*http.Response, error) { return http.Get(f.disc.OCSP + "/" + url.PathEscape(b64)) })
	if !bytes.Equal(got.Raw, post.Raw) {
		t.Error("GET and POST answered differently")
	}
	check("GET, raw base64", func() (*http.Response, error) { return http.Get(f.disc.OCSP + "/" + b64) })
	resp, err := http.Get(f.disc.OCSP + "/" + url.PathEscape(b64))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "must-revalidate") {
		t.Errorf("GET headers %v", resp.Header)
	}
	cond, _ := http.NewRequest(http.MethodGet, f.disc.OCSP+"/"+url.PathEscape(b64), nil)
	cond.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if resp, err := http.DefaultClient.Do(cond); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET of an unchanged response: %v %v", resp.StatusCode, err)
	}

	status := func(body io.Reader) []byte {
		t.Helper()
		resp, err := http.Post(f.disc.OCSP, "application/ocsp-request", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	if got := status(strings.NewReader("not DER")); !bytes.Equal(got, ocsp.MalformedRequestErrorResponse) {
		t.Errorf("garbage: %x", got)
	}
	if got := status(bytes.NewReader(make([]byte, maxRequest+1))); len(got) > 0 && bytes.Equal(got, ocsp.MalformedRequestErrorResponse) {
		// refused before parsing: a 413 body
		t.Errorf("an oversized request was parsed")
	}
	other := newFixture(t)
	stranger, _ := other.issue("058091-PC-0001")
	oreq, _ := ocsp.CreateRequest(stranger, other.ca.Cert, nil)
	if got := status(bytes.NewReader(oreq)); !bytes.Equal(got, ocsp.UnauthorizedErrorResponse) {
		t.Errorf("another CA's certificate: %x", got)
	}
	put, _ := http.NewRequest(http.MethodPut, f.disc.OCSP, bytes.NewReader(req))
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v", resp.StatusCode, err)
	}
}

// Precompute signs the response of every current certificate ahead of
// the requests, which are then all answered from the kept responses.
func TestPrecomputeAnswersEveryCertificateAhead(t *testing.T) {
	f := newFixture(t)
	r, _ := f.withOCSP(0)
	var reqs [][]byte
	for i := 1; i <= 5; i++ {
		c, _ := f.issue(domain.WorkstationCode("058091", i))
		f.activate(domain.WorkstationCode("058091", i), c)
		req, _ := ocsp.CreateRequest(c, f.ca.Cert, nil)
		reqs = append(reqs, req)
	}
	n, err := r.Precompute()
	if err != nil || n != 5 {
		t.Fatalf("Precompute: %d, %v", n, err)
	}
	for _, req := range reqs {
		r.Respond(req)
	}
	if hits, signed, _ := r.Stats(); hits != 5 || signed != 5 {
		t.Errorf("hits %d, signed %d after precomputing; want 5, 5", hits, signed)
	}
}

// requestWithNonce is the DER of an OCSP request for certID with a nonce
// extension, as OpenSSL writes it (an OCTET STRING in the extension value).
func requestWithNonce(t *testing.T, certID, nonce []byte) []byte {
	t.Helper()
	type ext struct {
		ID    asn1.ObjectIdentifier
		Value []byte
	}
	v, _ := asn1.Marshal(nonce)
	single, _ := asn1.Marshal(struct{ ID asn1.RawValue }{asn1.RawValue{FullBytes: certID}})
	der, err := asn1.Marshal(struct {
		TBS struct {
			List []asn1.RawValue
			Ext  []ext `asn1:"explicit,tag:2"`
		}
	}{TBS: struct {
		List []asn1.RawValue
		Ext  []ext `asn1:"explicit,tag:2"`
	}{List: []asn1.RawValue{{FullBytes: single}}, Ext: []ext{{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}, v}}}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A certificate replaced by a renewal answers good through the overlap,
// also from a kept response, and revoked with reason superseded from the
// end of the overlap on, without any change of the store: a response kept
// during the overlap is not served past its end. Its successor answers
// good throughout.
func TestPredecessorIsGoodThroughTheOverlapThenSuperseded(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	now := time.Now()
	f.opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	sealer, err := store.NewSealer(bytes.Repeat([]byte{9}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResponder(ResponderOptions{Store: f.st, Sealer: sealer, CACert: f.ca.Cert,
		LoadCA: func() (*pki.CA, error) { return f.ca, nil }, Validity: 4 * time.Hour, Log: f.opt.Log,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := f.issue("058091-PC-0001")
	next, _ := f.issue("058091-PC-0001")
	code := "058091-PC-0001"
	end := now.Add(time.Hour).UTC()
	p := &domain.Postazione{Code: code, ISTAT: "058091", State: domain.CertAttivo, Serial: fmt.Sprintf("%X", next.SerialNumber),
		NotAfter: next.NotAfter, CertDER: next.Raw, PrevSerial: fmt.Sprintf("%X", old.SerialNumber), Created: now, Updated: now,
		Predecessors: []domain.PrevCert{{Serial: fmt.Sprintf("%X", old.SerialNumber), NotAfter: old.NotAfter, CertDER: old.Raw,
			SupersededBy: fmt.Sprintf("%X", next.SerialNumber), Replaced: now, OverlapUntil: end}}}
	if err := f.st.Update(func(tx *store.Tx) error { return tx.PutPostazione(p) }); err != nil {
		t.Fatal(err)
	}
	ask := func(c *x509.Certificate) *ocsp.Response {
		t.Helper()
		req, err := ocsp.CreateRequest(c, f.ca.Cert, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ocsp.ParseResponseForCert(r.Respond(req).DER, c, f.ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if a, b := ask(old), ask(old); a.Status != ocsp.Good || b.Status != ocsp.Good {
		t.Fatalf("during the overlap: %v, %v", a.Status, b.Status)
	}
	if ask(next).Status != ocsp.Good {
		t.Fatal("the successor is not good")
	}
	mu.Lock()
	now = end.Add(time.Minute)
	mu.Unlock()
	resp := ask(old)
	if resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.Superseded || !resp.RevokedAt.Equal(end.Truncate(time.Second)) {
		t.Errorf("after the overlap: status %v, reason %d, at %v (end %v)", resp.Status, resp.RevocationReason, resp.RevokedAt, end)
	}
	if ask(next).Status != ocsp.Good {
		t.Error("the successor is not good after the overlap")
	}
}
