package pkihttp

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"anprsec/domain"
	"anprsec/pki"
	"anprsec/secret"
	"anprsec/store"
)

// After a CA rollover the one OCSP path answers for both CAs, each with
// its own responder, chosen by the request's issuer key hash (the CAs
// share their name); a serial of one CA asked under the other is unknown,
// never good; each CA's CRL and certificate are at their own paths.
func TestAfterARolloverEachCAAnswersOnlyForItsOwnCertificates(t *testing.T) {
	f := newFixture(t)
	oldCert, _ := f.issue("058091-PC-0001")
	f.activate(oldCert.Subject.CommonName, oldCert) // no issuer record: the first CA's
	f.withOCSP(10)

	key, err := pki.GenerateKey(pki.KeyRSA2048)
	if err != nil {
		t.Fatal(err)
	}
	next, err := pki.NewRolloverCA(f.ca.Cert, key, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	cross, err := f.ca.CrossSign(next.Cert)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, _ := pki.GenerateKey(pki.KeyECDSAP256)
	newCert, _, err := next.IssueWorkstation(pki.WorkstationRequest{Code: "081025-PC-0001", Comune: "Misiliscemi", PublicKey: leafKey.Public()})
	if err != nil {
		t.Fatal(err)
	}
	p := &domain.Postazione{Code: "081025-PC-0001", ISTAT: "081025", State: domain.CertBloccato, Serial: fmt.Sprintf("%X", newCert.SerialNumber),
		NotAfter: newCert.NotAfter, CertDER: newCert.Raw, Issuer: pki.KeyID(next.Cert), HoldSince: time.Now(), Created: time.Now(), Updated: time.Now()}
	if err := f.st.Update(func(tx *store.Tx) error { return tx.PutPostazione(p) }); err != nil {
		t.Fatal(err)
	}
	// A certificate of the old CA renewed under the new one, in its overlap.
	renewedOld, _ := f.issue("058091-PC-0002")
	renewedKey, _ := pki.GenerateKey(pki.KeyECDSAP256)
	renewedNew, _, err := next.IssueWorkstation(pki.WorkstationRequest{Code: "058091-PC-0002", Comune: "Roma", PublicKey: renewedKey.Public()})
	if err != nil {
		t.Fatal(err)
	}
	r := &domain.Postazione{Code: "058091-PC-0002", ISTAT: "058091", State: domain.CertAttivo, Serial: fmt.Sprintf("%X", renewedNew.SerialNumber),
		NotAfter: renewedNew.NotAfter, CertDER: renewedNew.Raw, Issuer: pki.KeyID(next.Cert), Created: time.Now(), Updated: time.Now(),
		Predecessors: []domain.PrevCert{{Serial: fmt.Sprintf("%X", renewedOld.SerialNumber), NotAfter: renewedOld.NotAfter,
			SupersededBy: fmt.Sprintf("%X", renewedNew.SerialNumber), Replaced: time.Now(), OverlapUntil: time.Now().Add(time.Hour)}}}
	if err := f.st.Update(func(tx *store.Tx) error { return tx.PutPostazione(r) }); err != nil {
		t.Fatal(err)
	}
	sealer, _ := store.NewSealer(bytes.Repeat([]byte{9}, secret.KeySize))
	later, err := NewResponder(ResponderOptions{Store: f.st, Sealer: sealer, CACert: next.Cert, Later: true,
		LoadCA: func() (*pki.CA, error) { return next, nil }, Validity: time.Hour, NonceRate: 10, Log: f.opt.Log})
	if err != nil {
		t.Fatal(err)
	}
	const tag = "20270115"
	f.opt.Later = []LaterCA{{Tag: tag, Cert: next.Cert, Cross: cross, OCSP: later,
		CRLURL: f.base + "/crl/anprsec-" + tag + ".crl", CAIssuersURL: f.base + "/ca/anprsec-" + tag + ".crt"}}
	f.serve()

	ask := func(c, issuer *x509.Certificate) *ocsp.Response {
		t.Helper()
		req, err := ocsp.CreateRequest(c, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(f.disc.OCSP, "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		r, err := ocsp.ParseResponse(body.Bytes(), issuer)
		if err != nil {
			t.Fatalf("response about %X under CA %s: %v", c.SerialNumber, pki.KeyID(issuer), err)
		}
		if r.SerialNumber.Cmp(c.SerialNumber) != 0 {
			t.Fatalf("response about %X, asked %X", r.SerialNumber, c.SerialNumber)
		}
		return r
	}
	if r := ask(oldCert, f.ca.Cert); r.Status != ocsp.Good {
		t.Errorf("old CA's certificate: status %d", r.Status)
	}
	if r := ask(newCert, next.Cert); r.Status != ocsp.Revoked || r.RevocationReason != ocsp.CertificateHold {
		t.Errorf("new CA's held certificate: status %d reason %d", r.Status, r.RevocationReason)
	}
	// The serials asked under the other CA.
	if r := ask(newCert, f.ca.Cert); r.Status != ocsp.Unknown {
		t.Errorf("new CA's serial under the old CA: status %d, want unknown", r.Status)
	}
	if r := ask(oldCert, next.Cert); r.Status != ocsp.Unknown {
		t.Errorf("old CA's serial under the new CA: status %d, want unknown", r.Status)
	}
	// The replaced certificate is still the old CA's, the new one the new CA's.
	if r := ask(renewedOld, f.ca.Cert); r.Status != ocsp.Good {
		t.Errorf("the replaced certificate in its overlap under the old CA: status %d", r.Status)
	}
	if r := ask(renewedOld, next.Cert); r.Status != ocsp.Unknown {
		t.Errorf("the replaced certificate under the new CA: status %d, want unknown", r.Status)
	}
	if r := ask(renewedNew, next.Cert); r.Status != ocsp.Good {
		t.Errorf("the renewed certificate under the new CA: status %d", r.Status)
	}
	if r := ask(renewedNew, f.ca.Cert); r.Status != ocsp.Unknown {
		t.Errorf("the renewed certificate under the old CA: status %d, want unknown", r.Status)
	}
	// A CA that is neither.
	stranger, _ := pki.GenerateKey(pki.KeyRSA2048)
	other, _ := pki.NewRolloverCA(f.ca.Cert, stranger, time.Now())
	req, _ := ocsp.CreateRequest(oldCert, other.Cert, nil)
	if a := f.srv.respond(req); !bytes.Equal(a.DER, ocsp.UnauthorizedErrorResponse) {
		t.Error("a request naming a third CA is not unauthorized")
	}

	// Each CA's CRL and certificate.
	f.putCRL(1)
	der, err := next.CreateCRL(nil, big.NewInt(2), time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Update(func(tx *store.Tx) error {
		return tx.PutCRLOf(tag, &store.CRL{Number: 2, ThisUpdate: time.Now().UTC(), DER: der})
	}); err != nil {
		t.Fatal(err)
	}
	if code, _, body := get(t, f.base+"/crl/anprsec-"+tag+".crl"); code != 200 || !bytes.Equal(body, der) {
		t.Errorf("later CA's CRL: %d", code)
	}
	if code, _, body := get(t, f.disc.CRL); code != 200 || bytes.Equal(body, der) {
		t.Errorf("first CA's CRL: %d, the later one's: %v", code, bytes.Equal(body, der))
	}
	if code, _, body := get(t, f.base+"/ca/anprsec-"+tag+".crt"); code != 200 || !bytes.Equal(body, cross.Raw) {
		t.Errorf("later CA's CA issuers: %d, not the cross certificate", code)
	}
	if code, _, body := get(t, f.disc.CAIssuers); code != 200 || !bytes.Equal(body, f.ca.Cert.Raw) {
		t.Errorf("first CA's certificate: %d", code)
	}
}
