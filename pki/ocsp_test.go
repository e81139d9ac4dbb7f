package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

func ocspSigner(t testing.TB, ca *CA) *OCSPSigner {
	t.Helper()
	key, err := ca.NewOCSPResponderKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueOCSPResponder(key.Public(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewOCSPSigner(ca.Cert, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The delegated responder certificate has the RFC 6960 profile: signed by
// the CA, id-kp-OCSPSigning only, no-check, short-lived, within the CA.
func TestOCSPResponderCertificateProfile(t *testing.T) {
	ca, caPath, _ := devCA(t)
	s := ocspSigner(t, ca)
	c := s.Cert
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) || c.KeyUsage != x509.KeyUsageDigitalSignature || c.IsCA {
		t.Errorf("EKU %v, KU %b, CA %v", c.ExtKeyUsage, c.KeyUsage, c.IsCA)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got != OCSPResponderValidity {
		t.Errorf("validity %s", got)
	}
	if _, ok := s.Key.Public().(interface{ Size() int }); !ok {
		t.Errorf("an RSA CA gets a responder key of type %T, want RSA", s.Key.Public())
	}
	openssl := tool(t, "openssl", "Debian package openssl")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.pem"), certPEM(c))
	text := mustRun(t, dir, openssl, "x509", "-noout", "-text", "-in", "r.pem")
	for _, want := range []string{"OCSP Signing", "OCSP No Check", "CN = " + OCSPResponderCommonName, "Digital Signature"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
		}
	}
	if out := mustRun(t, dir, openssl, "verify", "-CAfile", caPath, "-purpose", "ocsphelper", "r.pem"); !strings.Contains(out, "r.pem: OK") {
		t.Errorf("openssl verify: %s", out)
	}

	// near the CA's end it is shortened to the CA's end, past it refused
	end := ca.Cert.NotAfter
	c2, err := ca.IssueOCSPResponder(s.Key.Public(), end.Add(-24*time.Hour))
	if err != nil || !c2.NotAfter.Equal(end) {
		t.Errorf("near the CA's end: %v, %v", c2, err)
	}
	if _, err := ca.IssueOCSPResponder(s.Key.Public(), end.Add(time.Hour)); !errors.Is(err, ErrBeyondCA) {
		t.Errorf("after the CA's end: %v", err)
	}
}

// A response signed here parses with x/crypto/ocsp for the certificate and
// its CA: good, revoked with reason and time (certificateHold too),
// unknown; thisUpdate and nextUpdate as asked; the signature is the
// responder's, whose certificate chains to the CA.
func TestOCSPResponsesParseAndVerify(t *testing.T) {
	for _, ca := range []*CA{ecCA(t), func() *CA { c, _, _ := devCA(t); return c }()} {
		s := ocspSigner(t, ca)
		_, leaf := issue(t, ca, KeyECDSAP256, "058091-PC-0001")
		reqDER, err := ocsp.CreateRequest(leaf, ca.Cert, &ocsp.RequestOptions{Hash: crypto.SHA256})
		if err != nil {
			t.Fatal(err)
		}
		req, err := ParseOCSPRequest(reqDER)
		if err != nil {
			t.Fatal(err)
		}
		if req.Hash != crypto.SHA256 || req.Serial.Cmp(leaf.SerialNumber) != 0 || req.Nonce != nil || !s.Issued(req) {
			t.Fatalf("request %+v", req)
		}
		now := time.Now().Truncate(time.Second)
		held := now.Add(-time.Hour)
		for _, tc := range []struct {
			st     OCSPStatus
			reason int
		}{
			{OCSPStatus{Status: ocsp.Good}, 0},
			{OCSPStatus{Status: ocsp.Revoked, RevokedAt: held, Reason: ReasonCertificateHold}, ocsp.CertificateHold},
			{OCSPStatus{Status: ocsp.Revoked, RevokedAt: held, Reason: ReasonKeyCompromise}, ocsp.KeyCompromise},
			{OCSPStatus{Status: ocsp.Revoked, RevokedAt: held}, ocsp.Unspecified},
			{OCSPStatus{Status: ocsp.Unknown}, 0},
		} {
			der, err := s.Sign(req.CertID, tc.st, now, time.Hour, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ocsp.ParseResponseForCert(der, leaf, ca.Cert)
			if err != nil {
				t.Fatalf("status %d: %v", tc.st.Status, err)
			}
			if resp.Status != tc.st.Status || resp.RevocationReason != tc.reason || !resp.ThisUpdate.Equal(now) || !resp.NextUpdate.Equal(now.Add(time.Hour)) {
				t.Errorf("status %d: parsed %+v", tc.st.Status, resp)
			}
			if tc.st.Status == ocsp.Revoked && !resp.RevokedAt.Equal(held) {
				t.Errorf("revoked at %v, want %v", resp.RevokedAt, held)
			}
			if resp.Certificate == nil || !bytes.Equal(resp.Certificate.Raw, s.Cert.Raw) {
				t.Error("the responder certificate is not in the response")
			}
			if err := resp.Certificate.CheckSignatureFrom(ca.Cert); err != nil {
				t.Error(err)
			}
		}
	}
}

// Requests: a nonce is kept for the response, an oversized one refused,
// several certificates in one request refused, garbage refused.
func TestParseOCSPRequest(t *testing.T) {
	ca := ecCA(t)
	s := ocspSigner(t, ca)
	_, leaf := issue(t, ca, KeyECDSAP256, "058091-PC-0001")
	id, err := s.CertID(crypto.SHA1, leaf.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := ocsp.CreateRequest(leaf, ca.Cert, nil) // SHA-1, as OpenSSL
	req, err := ParseOCSPRequest(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req.CertID, id) {
		t.Errorf("CertID of x/crypto's request %x, CertID %x", req.CertID, id)
	}
	build := func(nonce []byte, ids ...[]byte) []byte {
		type ext struct {
			ID    asn1.ObjectIdentifier
			Value []byte
		}
		var list []asn1.RawValue
		for _, id := range ids {
			single, _ := asn1.Marshal(struct{ ID asn1.RawValue }{asn1.RawValue{FullBytes: id}})
			list = append(list, asn1.RawValue{FullBytes: single})
		}
		tbs := struct {
			List []asn1.RawValue
			Ext  []ext `asn1:"explicit,tag:2,optional"`
		}{List: list}
		if nonce != nil {
			v, _ := asn1.Marshal(nonce)
			tbs.Ext = []ext{{oidOCSPNonce, v}}
		}
		der, err := asn1.Marshal(struct{ TBS any }{tbs})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	nonce := bytes.Repeat([]byte{0xAB}, 16)
	req, err = ParseOCSPRequest(build(nonce, id))
	if err != nil {
		t.Fatal(err)
	}
	var inner []byte
	if _, err := asn1.Unmarshal(req.Nonce, &inner); err != nil || !bytes.Equal(inner, nonce) {
		t.Errorf("nonce %x", req.Nonce)
	}
	for name, der := range map[string][]byte{
		"nonce of 33 octets": build(bytes.Repeat([]byte{1}, 33), id),
		"two certificates":   build(nil, id, id),
		"no certificate":     build(nil),
		"garbage":            []byte("GET / HTTP/1.0"),
		"trailing data":      append(slices.Clone(plain), 0),
	} {
		if _, err := ParseOCSPRequest(der); !errors.Is(err, ErrOCSPMalformed) {
			t.Errorf("%s: %v, want ErrOCSPMalformed", name, err)
		}
	}
	// another CA's certificate is not ours
	other := ecCA(t)
	_, stranger := issue(t, other, KeyECDSAP256, "058091-PC-0001")
	oreq, _ := ocsp.CreateRequest(stranger, other.Cert, nil)
	r2, err := ParseOCSPRequest(oreq)
	if err != nil || s.Issued(r2) {
		t.Errorf("another CA's request: %v, issued %v", err, s.Issued(r2))
	}
}

// A response with a nonce carries it in the response extensions, where
// OpenSSL looks for it, and OpenSSL verifies the response against the CA.
func TestOCSPNonceIsWhereOpenSSLFindsIt(t *testing.T) {
	openssl := tool(t, "openssl", "Debian package openssl")
	ca, caPath, _ := devCA(t)
	s := ocspSigner(t, ca)
	_, leaf := issue(t, ca, KeyECDSAP256, "058091-PC-0001")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "leaf.pem"), certPEM(leaf))
	mustRun(t, dir, openssl, "ocsp", "-issuer", caPath, "-cert", "leaf.pem", "-reqout", "req.der")
	reqDER, err := os.ReadFile(filepath.Join(dir, "req.der"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseOCSPRequest(reqDER)
	if err != nil {
		t.Fatal(err)
	}
	if req.Nonce == nil {
		t.Fatal("OpenSSL's request has no nonce")
	}
	der, err := s.Sign(req.CertID, OCSPStatus{Status: ocsp.Good}, time.Now(), time.Hour, req.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "resp.der"), der)
	// (with -reqin, no -cert: it would make a request of its own, with another nonce)
	out, errs, ok := run(t, dir, openssl, "ocsp", "-reqin", "req.der", "-respin", "resp.der", "-CAfile", caPath, "-resp_text")
	all := out + errs
	if !ok || !strings.Contains(all, "Response verify OK") || !strings.Contains(all, "Cert Status: good") || strings.Contains(all, "Nonce Verify error") || strings.Contains(all, "WARNING") {
		t.Errorf("openssl ocsp:\n%s", all)
	}
	if !strings.Contains(all, "OCSP Nonce") {
		t.Errorf("no nonce in the response:\n%s", all)
	}
	// without the nonce the same request is answered, with a warning
	plain, err := s.Sign(req.CertID, OCSPStatus{Status: ocsp.Good}, time.Now(), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "plain.der"), plain)
	out, errs, _ = run(t, dir, openssl, "ocsp", "-reqin", "req.der", "-respin", "plain.der", "-CAfile", caPath)
	if all := out + errs; !strings.Contains(all, "WARNING: no nonce in response") {
		t.Errorf("openssl found a nonce in a response without one:\n%s", all)
	}
}
