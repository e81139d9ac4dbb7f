package cades

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

const testDoc = "OPERAZIONE;CF;PROFILO\r\nINSERISCI_UTENZA;VRDGPP80A01H501X;ALS\r\n"

// stdFiles are the CA "ca" and the card "card" (serialNumber=TINIT-testCF)
// that every stdLab starts with: made by openssl once, copied into each lab.
var stdFiles struct {
	once  sync.Once
	files map[string][]byte
}

// stdLab makes a lab with CA "ca", the card "card" and the document
// "doc.txt".
func stdLab(t *testing.T) *lab {
	l := newLab(t)
	stdFiles.once.Do(func() {
		first := &lab{t: t, dir: t.TempDir(), bin: l.bin}
		first.ca("ca", "Prova Card CA")
		first.card("card", "ca", "/C=IT/O=Comune di Prova/CN=MARIO ROSSI/serialNumber=TINIT-"+testCF, 365)
		stdFiles.files = map[string][]byte{}
		for _, f := range []string{"ca.pem", "ca.key", "card.pem", "card.key"} {
			stdFiles.files[f] = first.read(f)
		}
	})
	if stdFiles.files == nil {
		t.Fatal("the openssl CA and card could not be made")
	}
	for name, data := range stdFiles.files {
		l.write(name, data)
	}
	l.write("doc.txt", []byte(testDoc))
	return l
}

// wantCode checks that err is an *Error with the code, whose message holds
// every word of words.
func wantCode(t *testing.T, err error, code string, words ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code %s (%s), want %s", e.Code, e.Message, code)
	}
	for _, w := range words {
		if !strings.Contains(e.Message, w) {
			t.Errorf("message %q lacks %q", e.Message, w)
		}
	}
}

func wantAccepted(t *testing.T, s *Signer, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	if s.CF != testCF {
		t.Errorf("CF %q, want %q", s.CF, testCF)
	}
	if string(s.Content) != testDoc {
		t.Errorf("content %q, want %q", s.Content, testDoc)
	}
}

func TestEnvelopingSignatureFromOpenSSLIsAccepted(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach")
	s, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantAccepted(t, s, err)
	if s.Cert.SerialNumber.Cmp(l.cert("card").SerialNumber) != 0 {
		t.Errorf("signer certificate serial %x, want the card's", s.Cert.SerialNumber)
	}
	if d := time.Since(s.SigningTime); d < 0 || d > time.Minute {
		t.Errorf("signing time %v is not the time of signing", s.SigningTime)
	}
	if len(s.Chain) != 2 || !s.Chain[1].Equal(l.cert("ca")) {
		t.Errorf("chain of %d certificates does not end at the CA", len(s.Chain))
	}
}

func TestDetachedSignatureFromOpenSSLIsAccepted(t *testing.T) {
	l := stdLab(t)
	p7s := l.sign("doc.txt.p7s", "doc.txt", "card", "-cades", "-md", "sha256")
	s, err := Verify([]byte(testDoc), p7s, true, l.anchors("ca"), time.Now())
	wantAccepted(t, s, err)
}

func TestArmouredEnvelopeIsAccepted(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach", "-outform", "PEM")
	if !bytes.HasPrefix(p7m, []byte("-----BEGIN")) {
		t.Fatalf("openssl wrote no PEM: %.40q", p7m)
	}
	s, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantAccepted(t, s, err)

	var bare []byte // the base64 lines alone, as some tools write a .p7m
	for _, line := range bytes.Split(p7m, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("-----")) {
			bare = append(append(bare, line...), '\r', '\n')
		}
	}
	s, err = Verify(nil, bare, false, l.anchors("ca"), time.Now())
	wantAccepted(t, s, err)
}

func TestStreamedBEREnvelopeIsAccepted(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach", "-stream")
	if p7m[1] != 0x80 {
		t.Fatalf("openssl -stream wrote a definite length (% x): the test needs BER", p7m[:4])
	}
	s, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantAccepted(t, s, err)
}

func TestSigningCertificateV1WithSHA1IsAccepted(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha1", "-nodetach")
	if !bytes.Contains(p7m, mustOID(t, oidSigningCertificate)) || bytes.Contains(p7m, mustOID(t, oidSigningCertificateV2)) {
		t.Fatal("openssl -md sha1 -cades did not write signing-certificate v1")
	}
	s, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantAccepted(t, s, err)
}

func TestCNSCommonNameCarriesTheCF(t *testing.T) {
	l := stdLab(t)
	l.card("cns", "ca", `/C=IT/O=Regione di Prova/CN=`+strings.ToLower(testCF)+`\/7420000000000000.a1B2c3D4e5F6g7H8=`, 365)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "cns", "-cades", "-md", "sha256", "-nodetach")
	s, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantAccepted(t, s, err)
}

func TestSignatureFromAnotherCAIsNotTrusted(t *testing.T) {
	l := stdLab(t)
	l.ca("other", "Altra CA")
	l.card("stranger", "other", "/C=IT/CN=MARIO ROSSI/serialNumber=TINIT-"+testCF, 365)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "stranger", "-cades", "-md", "sha256", "-nodetach")
	_, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantCode(t, err, CertificatoNonFidato, "MARIO ROSSI", "Altra CA", "non è emesso da un'autorità di certificazione riconosciuta")

	// Expired as well: not trusted is what the operator needs to hear.
	_, err = Verify(nil, p7m, false, l.anchors("ca"), time.Now().AddDate(2, 0, 0))
	wantCode(t, err, CertificatoNonFidato)
}

func TestDetachedSignatureOverOtherContentIsInvalid(t *testing.T) {
	l := stdLab(t)
	p7s := l.sign("doc.txt.p7s", "doc.txt", "card", "-cades", "-md", "sha256")
	other := strings.Replace(testDoc, "ALS", "ASC", 1)
	_, err := Verify([]byte(other), p7s, true, l.anchors("ca"), time.Now())
	wantCode(t, err, FirmaNonValida, "non corrisponde al contenuto")
}

func TestEnvelopeWithAlteredContentIsInvalid(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach")
	i := bytes.Index(p7m, []byte("ALS"))
	if i < 0 {
		t.Fatal("content not found in the envelope")
	}
	altered := bytes.Clone(p7m)
	copy(altered[i:], "ASC")
	_, err := Verify(nil, altered, false, l.anchors("ca"), time.Now())
	wantCode(t, err, FirmaNonValida, "modificato dopo la firma")
}

func TestEnvelopeNotHoldingTheExpectedContentIsInvalid(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach")
	_, err := Verify([]byte("altro"), p7m, false, l.anchors("ca"), time.Now())
	wantCode(t, err, FirmaNonValida, "documento diverso")
}

func TestDetachedSignatureGivenAsEnvelopeIsInvalid(t *testing.T) {
	l := stdLab(t)
	p7s := l.sign("doc.txt.p7s", "doc.txt", "card", "-cades", "-md", "sha256")
	_, err := Verify(nil, p7s, false, l.anchors("ca"), time.Now())
	wantCode(t, err, FirmaNonValida, "non contiene il documento")
}

func TestCertificateExpiredAtCheckTimeIsRefused(t *testing.T) {
	l := stdLab(t)
	l.card("short", "ca", "/C=IT/CN=MARIO ROSSI/serialNumber=TINIT-"+testCF, 1)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "short", "-cades", "-md", "sha256", "-nodetach")
	if _, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now()); err != nil {
		t.Fatalf("refused while the card is valid: %v", err)
	}
	_, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now().AddDate(0, 0, 3))
	wantCode(t, err, CertificatoScaduto, "MARIO ROSSI", "è scaduto il")
}

func TestSignatureMadeWithAnExpiredCardIsRefused(t *testing.T) {
	l := stdLab(t)
	// openssl x509 cannot backdate, so Go issues the expired card from the
	// openssl CA; openssl signs with it all the same.
	card, err := IssueCard(&DevCA{Cert: l.cert("ca"), Key: l.key("ca")}, testCF, "MARIO ROSSI", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *card.Cert
	tmpl.NotBefore, tmpl.NotAfter = time.Now().AddDate(-2, 0, 0), time.Now().AddDate(-1, 0, 0)
	der, err := x509CreateFrom(&tmpl, l.cert("ca"), card, l.key("ca"))
	if err != nil {
		t.Fatal(err)
	}
	pemData, _ := (&Card{Cert: der, Key: card.Key}).PEM()
	l.write("old.pem", pemData)
	l.write("old.key", pemData)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "old", "-cades", "-md", "sha256", "-nodetach")
	_, err = Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantCode(t, err, CertificatoScaduto, "è scaduto il")
}

func TestDeclaredSigningTimeOutsideCertificateValidityIsInvalid(t *testing.T) {
	// A CA and card of the past; the card signs today (the signing time Sign
	// declares) and is checked at a time it was valid.
	now := time.Now()
	ca := pastCA(t, now.AddDate(-3, 0, 0), now.AddDate(5, 0, 0))
	card := pastCard(t, ca, now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0))
	p7m, err := Sign([]byte(testDoc), card.Cert, card.Key, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(nil, p7m, false, devAnchors(t, ca), now.AddDate(0, -18, 0))
	wantCode(t, err, FirmaNonValida, "ora di firma dichiarata", stamp(card.Cert.NotAfter))
}

func TestRevokedCertificateIsRefused(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach")
	a := l.anchors("ca")
	revokedAt := time.Now().Add(time.Hour)
	if err := a.AddCRL(l.crl("ca", 1, revokedAt, l.cert("card"))); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(nil, p7m, false, a, revokedAt.Add(time.Minute))
	wantCode(t, err, CertificatoRevocato, "MARIO ROSSI", "è revocato dal "+stamp(revokedAt), "Prova Card CA")

	// Before its revocation time the certificate was good.
	if _, err := Verify(nil, p7m, false, a, time.Now()); err != nil {
		t.Errorf("refused before its revocation: %v", err)
	}
}

func TestSuspendedCertificateIsRefused(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach")
	a := l.anchors("ca")
	l.write("ca.crl", l.crl("ca", 6, time.Now().Add(-time.Second), l.cert("card")))
	if err := a.AddCRLFile(l.path("ca.crl")); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(nil, p7m, false, a, time.Now())
	wantCode(t, err, CertificatoRevocato, "è sospeso dal")
}

func TestCRLWithoutTheCertificateLetsItPass(t *testing.T) {
	l := stdLab(t)
	l.card("other", "ca", "/C=IT/CN=GIUSEPPE VERDI/serialNumber=TINIT-VRDGPP80A01H501X", 365)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach")
	a := l.anchors("ca")
	if err := a.AddCRL(l.crl("ca", 1, time.Now().Add(-time.Second), l.cert("other"))); err != nil {
		t.Fatal(err)
	}
	s, err := Verify(nil, p7m, false, a, time.Now())
	wantAccepted(t, s, err)
}

func TestCRLNotSignedByAnAnchorIsRefused(t *testing.T) {
	l := stdLab(t)
	l.ca("other", "Altra CA")
	a := l.anchors("ca")
	if err := a.AddCRL(l.crl("other", 1, time.Now())); err == nil {
		t.Fatal("a CRL of an untrusted CA was added")
	}
}

func TestSignatureWithoutESSAttributeIsInvalid(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-md", "sha256", "-nodetach")
	_, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantCode(t, err, FirmaNonValida, "signing-certificate-v2", "non è una firma CAdES")
}

func TestSignatureWithoutSignedAttributesIsInvalid(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-md", "sha256", "-nodetach", "-noattr")
	_, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantCode(t, err, FirmaNonValida, "attributi firmati")
}

func TestSigningCertificateNamingAnotherCertificateIsInvalid(t *testing.T) {
	ca, card := devCard(t)
	other, err := IssueCard(ca, testCF, "MARIO ROSSI", time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ess, err := essFor(other.Cert)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := pkcs7.NewSignedData([]byte(testDoc))
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(card.Cert, card.Key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{{Type: oidSigningCertificateV2, Value: ess}}}); err != nil {
		t.Fatal(err)
	}
	p7m, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(nil, p7m, false, devAnchors(t, ca), time.Now())
	wantCode(t, err, FirmaNonValida, "signing-certificate non corrisponde")
}

func TestGarbageIsInvalid(t *testing.T) {
	l := stdLab(t)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "card", "-cades", "-md", "sha256", "-nodetach")
	a := l.anchors("ca")
	for name, sig := range map[string][]byte{
		"testo":         []byte(testDoc),
		"binario":       {0x00, 0xff, 0x13, 0x37, 0x42},
		"troncato":      p7m[:len(p7m)/2],
		"solo intestaz": {0x30, 0x82, 0xff, 0xff},
		"certificato":   l.read("card.pem"),
		"coda estranea": append(bytes.Clone(p7m), "coda"...),
	} {
		_, err := Verify(nil, sig, false, a, time.Now())
		t.Run(name, func(t *testing.T) { wantCode(t, err, FirmaNonValida) })
	}
}

func TestEmptySignatureIsAbsent(t *testing.T) {
	l := stdLab(t)
	for _, sig := range [][]byte{nil, {}, []byte(" \r\n")} {
		_, err := Verify([]byte(testDoc), sig, true, l.anchors("ca"), time.Now())
		wantCode(t, err, FirmaAssente, "vuoto")
	}
}

func TestEnvelopeWithoutSignersIsAbsent(t *testing.T) {
	l := stdLab(t)
	p7, err := pkcs7.DegenerateCertificate(l.cert("card").Raw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify([]byte(testDoc), p7, true, l.anchors("ca"), time.Now())
	wantCode(t, err, FirmaAssente, "non contiene alcuna firma")
}

func TestTwoSignersAreRefused(t *testing.T) {
	l := stdLab(t)
	l.card("card2", "ca", "/C=IT/CN=GIUSEPPE VERDI/serialNumber=TINIT-VRDGPP80A01H501X", 365)
	l.run("cms", "-sign", "-cades", "-binary", "-md", "sha256", "-nodetach", "-in", "doc.txt", "-outform", "DER", "-out", "two.p7m",
		"-signer", "card.pem", "-inkey", "card.key", "-signer", "card2.pem", "-inkey", "card2.key")
	_, err := Verify(nil, l.read("two.p7m"), false, l.anchors("ca"), time.Now())
	wantCode(t, err, FirmaNonValida, "2 firme")
}

func TestCertificateWithoutCFIsRefused(t *testing.T) {
	l := stdLab(t)
	l.card("nocf", "ca", "/C=IT/CN=MARIO ROSSI", 365)
	l.card("badcf", "ca", "/C=IT/CN=MARIO ROSSI/serialNumber=TINIT-RSSMRA80A01H501X", 365)
	a := l.anchors("ca")
	p7m := l.sign("nocf.p7m", "doc.txt", "nocf", "-cades", "-md", "sha256", "-nodetach")
	_, err := Verify(nil, p7m, false, a, time.Now())
	wantCode(t, err, FirmatarioSenzaCF, "MARIO ROSSI", "non riporta un codice fiscale")

	p7m = l.sign("badcf.p7m", "doc.txt", "badcf", "-cades", "-md", "sha256", "-nodetach")
	_, err = Verify(nil, p7m, false, a, time.Now())
	wantCode(t, err, FirmatarioSenzaCF, "codice fiscale non valido", "carattere di controllo")
}

func TestGoSignatureVerifiesWithOpenSSL(t *testing.T) {
	l := newLab(t)
	ca, err := NewDevCA(l.path("ca"))
	if err != nil {
		t.Fatal(err)
	}
	card, err := IssueCard(ca, strings.ToLower(testCF), "MARIO ROSSI", time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	l.write("doc.txt", []byte(testDoc))
	for _, detached := range []bool{false, true} {
		sig, err := Sign([]byte(testDoc), card.Cert, card.Key, detached)
		if err != nil {
			t.Fatal(err)
		}
		l.write("go.p7", sig)
		args := []string{"cms", "-verify", "-CAfile", "ca/" + DevCACertFile, "-binary", "-inform", "DER", "-in", "go.p7", "-out", "out.txt"}
		if detached {
			args = append(args, "-content", "doc.txt")
		}
		if out, err := l.tryRun(args...); err != nil {
			t.Fatalf("detached=%v: openssl refuses the Go signature: %v\n%s", detached, err, out)
		}
		if got := string(l.read("out.txt")); got != testDoc {
			t.Errorf("detached=%v: openssl read content %q", detached, got)
		}
		content := []byte(nil)
		if detached {
			content = []byte(testDoc)
		}
		s, err := Verify(content, sig, detached, devAnchors(t, ca), time.Now())
		wantAccepted(t, s, err)
	}
	// openssl sees the ESS signing-certificate-v2 attribute and checks it.
	out, err := l.tryRun("cms", "-cmsout", "-print", "-inform", "DER", "-in", "go.p7")
	if err != nil || !strings.Contains(out, "1.2.840.113549.1.9.16.2.47") && !strings.Contains(out, "signingCertificateV2") {
		t.Errorf("openssl does not show signing-certificate-v2: %v\n%.2000s", err, out)
	}
}

func TestOversizedSignatureIsRefusedBeforeParsing(t *testing.T) {
	ca, card := devCard(t)
	a := devAnchors(t, ca)
	a.Limits = Limits{MaxSignature: 4096, MaxContent: 8192}
	big := bytes.Repeat([]byte("x"), 9000)
	sig, err := Sign(big, card.Cert, card.Key, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(nil, sig, false, a, time.Now())
	wantCode(t, err, FirmaNonValida, "oltre il limite")

	p7s, err := Sign(big, card.Cert, card.Key, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(big, p7s, true, a, time.Now())
	wantCode(t, err, FirmaNonValida, "il file firmato è di 9000 byte, oltre il limite di 8192")

	_, err = Verify(nil, make([]byte, DefaultMaxSignature+DefaultMaxSignature/2+1), true, devAnchors(t, ca), time.Now())
	wantCode(t, err, FirmaNonValida, "oltre il limite")
}

func TestDeeplyNestedEnvelopeIsRefusedQuickly(t *testing.T) {
	ca, _ := devCard(t)
	n := 250_000 // a 1 MiB BER bomb: the CMS library would take minutes on it
	bomb := append(bytes.Repeat([]byte{0x30, 0x80}, n), 0x04, 0x01, 0x00)
	bomb = append(bomb, make([]byte, 2*n)...)
	start := time.Now()
	_, err := Verify(nil, bomb, false, devAnchors(t, ca), time.Now())
	wantCode(t, err, FirmaNonValida, "ben formata")
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v to refuse", d)
	}
}

func TestErrorsAreClassifiedByCode(t *testing.T) {
	err := error(refuse(CertificatoScaduto, errors.New("x509: expired"), "scaduto"))
	if !errors.Is(err, &Error{Code: CertificatoScaduto}) || errors.Is(err, &Error{Code: CertificatoRevocato}) {
		t.Error("errors.Is does not match by code")
	}
	if CodeOf(errors.Join(errors.New("contesto"), err)) != CertificatoScaduto || CodeOf(errors.New("altro")) != "" {
		t.Error("CodeOf does not find the code")
	}
	if err.Error() != "CERTIFICATO_SCADUTO: scaduto" {
		t.Errorf("Error() = %q", err.Error())
	}
}

func mustOID(t *testing.T, oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChainThroughAnIntermediateCarriedInTheEnvelopeIsAccepted(t *testing.T) {
	l := stdLab(t)
	l.write("inter.ext", []byte("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"))
	l.run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "inter.key", "-out", "inter.csr", "-subj", "/C=IT/O=Prova/CN=Prova Card CA intermedia")
	l.run("x509", "-req", "-in", "inter.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "7", "-out", "inter.pem", "-days", "1000", "-extfile", "inter.ext")
	l.card("deep", "inter", "/C=IT/CN=MARIO ROSSI/serialNumber=TINIT-"+testCF, 365)
	p7m := l.sign("doc.txt.p7m", "doc.txt", "deep", "-cades", "-md", "sha256", "-nodetach", "-certfile", "inter.pem")
	s, err := Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantAccepted(t, s, err)
	if len(s.Chain) != 3 {
		t.Errorf("chain of %d certificates, want card, intermediate, CA", len(s.Chain))
	}

	// Without the intermediate the card does not chain.
	p7m = l.sign("bare.p7m", "doc.txt", "deep", "-cades", "-md", "sha256", "-nodetach")
	_, err = Verify(nil, p7m, false, l.anchors("ca"), time.Now())
	wantCode(t, err, CertificatoNonFidato)
}

func TestEndOfContentsMayNotCrossItsDefiniteContainer(t *testing.T) {
	// A definite SEQUENCE of 5 bytes holding two indefinite ones whose
	// end-of-contents octets reach past it.
	in := []byte{0x30, 0x05, 0x30, 0x80, 0x30, 0x80, 0x00, 0x00, 0x01, 0x01}
	if err := checkShape(in); err == nil {
		t.Fatal("an end-of-contents past its definite container was accepted")
	}
}
