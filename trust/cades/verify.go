// Package cades verifies the CAdES signatures that Italian signing software
// puts on files: an enveloping "<file>.p7m" that carries the file, or a
// detached "<file>.p7s" beside it, made with the operator's smart card
// (docs/rules.md#console-requests).
//
// Verify accepts a signature when the CMS signature is valid over the
// content, there is exactly one signer, the signed attributes name the
// signer certificate (ESS signing-certificate-v2, or v1), the certificate
// chains to the configured CAs (Anchors), is valid at the time of the check
// and is not in the CRL of its CA, and its subject carries the codice fiscale
// of the holder. Every refusal is an *Error with a code a receipt carries.
//
// The CMS structure is parsed by github.com/smallstep/pkcs7; this package
// reads only the ESS attribute itself, and walks the BER headers once to
// bound nesting before the library sees the bytes.
//
// For development and tests, NewDevCA, IssueCard and Sign make a card CA,
// card certificates and CAdES-BES signatures that openssl verifies.
package cades

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
)

// Signer is an accepted signature: who signed, and what.
type Signer struct {
	CF          string              // codice fiscale of the holder, upper-case
	Cert        *x509.Certificate   // the signer (card) certificate
	Chain       []*x509.Certificate // Cert first, the trusted CA last
	SigningTime time.Time           // as declared in the signed attributes (zero when absent); not trusted
	Content     []byte              // the signed content
}

// Verify checks a CAdES signature. With detached false, sig is an
// enveloping .p7m and the signed content is the one inside it (content, when
// not nil, must be equal to it); with detached true, sig is a .p7s and
// content the file it signs. sig may be DER (or BER), PEM or bare base64.
// Certificates are judged at now; the signing time the signer declares is
// returned, never trusted. A refusal is an *Error.
func Verify(content, sig []byte, detached bool, anchors *Anchors, now time.Time) (*Signer, error) {
	if anchors == nil || anchors.pool == nil {
		return nil, refuse(CertificatoNonFidato, nil, "nessuna autorità di certificazione configurata per le firme")
	}
	lim := anchors.Limits.withDefaults()
	if detached && len(content) > lim.MaxContent {
		return nil, refuse(FirmaNonValida, nil, "il file firmato è di %d byte, oltre il limite di %d", len(content), lim.MaxContent)
	}
	p7, rerr := open(sig, detached, lim)
	if rerr != nil {
		return nil, rerr
	}
	if rerr := bindContent(p7, content, detached, lim); rerr != nil {
		return nil, rerr
	}
	cert := p7.GetOnlySigner()
	si := p7.Signers[0]
	if len(si.AuthenticatedAttributes) == 0 {
		return nil, refuse(FirmaNonValida, nil, "la firma non ha attributi firmati: non è una firma CAdES")
	}
	declaredTimeOutside := false
	if err := checkSignature(p7, now); err != nil {
		var digest *pkcs7.MessageDigestMismatchError
		var stime *pkcs7.SigningTimeNotValidError
		switch {
		case errors.As(err, &digest):
			return nil, refuse(FirmaNonValida, err, "la firma non corrisponde al contenuto del file (il documento è stato modificato dopo la firma)")
		case errors.As(err, &stime):
			// The certificate checks below say more (an expired card is the
			// usual cause); if they pass, the declared time is still refused.
			declaredTimeOutside = true
		default:
			return nil, refuse(FirmaNonValida, err, "la firma crittografica non è valida")
		}
	}
	var signingTime time.Time
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeSigningTime, &signingTime); err != nil {
		signingTime = time.Time{}
	}
	attrs := make([]signedAttr, 0, len(si.AuthenticatedAttributes))
	for _, a := range si.AuthenticatedAttributes {
		attrs = append(attrs, signedAttr{Type: a.Type, Value: a.Value.Bytes})
	}
	if err := checkAttributes(attrs, cert); err != nil {
		return nil, err
	}

	chain, rerr := checkCertificate(cert, p7.Certificates, anchors, now)
	if rerr != nil {
		return nil, rerr
	}
	if declaredTimeOutside {
		return nil, refuse(FirmaNonValida, nil, "l'ora di firma dichiarata (%s) è fuori dal periodo di validità del certificato (%s - %s)",
			stamp(signingTime), stamp(cert.NotBefore), stamp(cert.NotAfter))
	}
	if rerr := checkRevocation(cert, chain, anchors, now); rerr != nil {
		return nil, rerr
	}
	cf, rerr := signerCF(cert)
	if rerr != nil {
		return nil, rerr
	}
	return &Signer{CF: cf, Cert: cert, Chain: chain, SigningTime: signingTime, Content: p7.Content}, nil
}

// open decodes and parses a signature file into an envelope with exactly one
// signer whose certificate it carries. Sizes and nesting are checked before
// the CMS parser sees the bytes.
func open(sig []byte, detached bool, lim Limits) (*pkcs7.PKCS7, *Error) {
	if len(bytes.TrimSpace(sig)) == 0 {
		return nil, refuse(FirmaAssente, nil, "il file di firma è vuoto")
	}
	maxDER := lim.MaxSignature
	if !detached {
		maxDER += lim.MaxContent
	}
	if len(sig) > maxDER+maxDER/2 {
		return nil, refuse(FirmaNonValida, nil, "il file di firma è di %d byte, oltre il limite di %d", len(sig), maxDER)
	}
	der, err := unarmour(sig)
	if err != nil {
		return nil, refuse(FirmaNonValida, err, "il file di firma non è una busta CMS (PKCS#7): né DER né base64")
	}
	if len(der) > maxDER {
		return nil, refuse(FirmaNonValida, nil, "la busta di firma è di %d byte, oltre il limite di %d", len(der), maxDER)
	}
	if err := checkShape(der); err != nil {
		return nil, refuse(FirmaNonValida, err, "la busta di firma non è una struttura CMS (PKCS#7) ben formata")
	}
	p7, err := parse(der)
	if err != nil {
		return nil, refuse(FirmaNonValida, err, "la busta di firma non è una struttura CMS (PKCS#7) leggibile")
	}
	switch n := len(p7.Signers); {
	case n == 0:
		return nil, refuse(FirmaAssente, nil, "la busta non contiene alcuna firma")
	case n > 1:
		return nil, refuse(FirmaNonValida, nil, "la busta contiene %d firme: ne è ammessa una sola", n)
	}
	if p7.GetOnlySigner() == nil {
		return nil, refuse(FirmaNonValida, nil, "la busta non contiene il certificato del firmatario")
	}
	return p7, nil
}

// bindContent sets the content the signature is checked over: the detached
// file, or the one inside the envelope.
func bindContent(p7 *pkcs7.PKCS7, content []byte, detached bool, lim Limits) *Error {
	if detached {
		if len(p7.Content) > 0 && !bytes.Equal(p7.Content, content) {
			return refuse(FirmaNonValida, nil, "la firma staccata contiene un documento diverso dal file firmato")
		}
		p7.Content = content
		return nil
	}
	switch {
	case len(p7.Content) == 0:
		return refuse(FirmaNonValida, nil, "la busta .p7m non contiene il documento firmato (è una firma staccata?)")
	case len(p7.Content) > lim.MaxContent:
		return refuse(FirmaNonValida, nil, "il documento nella busta è di %d byte, oltre il limite di %d", len(p7.Content), lim.MaxContent)
	case content != nil && !bytes.Equal(p7.Content, content):
		return refuse(FirmaNonValida, nil, "la busta contiene un documento diverso da quello atteso")
	}
	return nil
}

// parse runs the CMS parser, turning a panic on hostile input into an error.
func parse(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("pkcs7 parser panic: %v", r)
		}
	}()
	return pkcs7.Parse(der)
}

// checkSignature checks the CMS signature (message digest over the content,
// signature over the signed attributes) without judging the certificate,
// which checkCertificate does.
func checkSignature(p7 *pkcs7.PKCS7, now time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pkcs7 verifier panic: %v", r)
		}
	}()
	return p7.VerifyWithChainAtTime(nil, now)
}

// signedAttr is one signed attribute: its type and the contents of its SET
// of values.
type signedAttr struct {
	Type  asn1.ObjectIdentifier
	Value []byte
}

// checkAttributes checks the signed attributes CAdES-BES asks for besides
// the message digest: content-type id-data, and ESS signing-certificate-v2
// (or v1) naming the signer certificate; each present at most once.
func checkAttributes(attrs []signedAttr, cert *x509.Certificate) *Error {
	seen := map[string]int{}
	var essFound bool
	for _, a := range attrs {
		seen[a.Type.String()]++
		if seen[a.Type.String()] > 1 {
			return refuse(FirmaNonValida, nil, "l'attributo firmato %s è ripetuto", a.Type)
		}
		switch {
		case a.Type.Equal(pkcs7.OIDAttributeContentType):
			var ct asn1.ObjectIdentifier
			if rest, err := asn1.Unmarshal(a.Value, &ct); err != nil || len(rest) != 0 || !ct.Equal(pkcs7.OIDData) {
				return refuse(FirmaNonValida, err, "l'attributo firmato content-type non indica un documento (id-data)")
			}
		case a.Type.Equal(oidSigningCertificateV2), a.Type.Equal(oidSigningCertificate):
			essFound = true
			v2 := a.Type.Equal(oidSigningCertificateV2)
			if err := checkESS(a.Value, v2, cert); err != nil {
				return refuse(FirmaNonValida, err, "l'attributo firmato signing-certificate non corrisponde al certificato del firmatario %s", describe(cert))
			}
		}
	}
	if seen[pkcs7.OIDAttributeContentType.String()] == 0 {
		return refuse(FirmaNonValida, nil, "manca l'attributo firmato content-type: non è una firma CAdES")
	}
	if !essFound {
		return refuse(FirmaNonValida, nil, "manca l'attributo firmato signing-certificate-v2 (ESS): non è una firma CAdES")
	}
	return nil
}

// checkCertificate checks that cert chains to the anchors (with the
// envelope's other certificates as intermediates), that it and its chain are
// valid at now, and that it may sign. It returns the chain, cert first,
// anchor last.
func checkCertificate(cert *x509.Certificate, certs []*x509.Certificate, anchors *Anchors, now time.Time) ([]*x509.Certificate, *Error) {
	who := describe(cert)
	inter := x509.NewCertPool()
	for _, c := range certs {
		if c != cert {
			inter.AddCert(c)
		}
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots: anchors.pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		// "Expired" only of a certificate a trusted CA issued: the
		// operator of an unknown card needs to hear that first.
		path := pathToAnchor(cert, certs, anchors)
		if path == nil {
			return nil, refuse(CertificatoNonFidato, err, "il certificato del firmatario %s non è emesso da un'autorità di certificazione riconosciuta", who)
		}
		switch {
		case now.Before(cert.NotBefore):
			return nil, refuse(CertificatoScaduto, err, "il certificato del firmatario %s è valido solo dal %s", who, stamp(cert.NotBefore))
		case now.After(cert.NotAfter):
			return nil, refuse(CertificatoScaduto, err, "il certificato del firmatario %s è scaduto il %s", who, stamp(cert.NotAfter))
		}
		for _, ca := range path[1:] {
			if now.Before(ca.NotBefore) || now.After(ca.NotAfter) {
				return nil, refuse(CertificatoScaduto, err, "il certificato dell'autorità %s, nella catena del firmatario %s, non è valido il %s (validità %s - %s)",
					describe(ca), who, stamp(now), stamp(ca.NotBefore), stamp(ca.NotAfter))
			}
		}
		return nil, refuse(CertificatoNonFidato, err, "il certificato del firmatario %s non è accettato dall'autorità di certificazione %s", who, printable(path[len(path)-1].Subject.CommonName))
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, refuse(CertificatoNonFidato, nil, "il certificato del firmatario %s non è abilitato alla firma (key usage)", who)
	}
	return chains[0], nil
}

// maxPath bounds pathToAnchor: card certificates hang at most a few
// intermediates below a trusted CA.
const maxPath = 5

// pathToAnchor follows issuer names and signatures, never validity dates,
// from cert through certs up to an anchor, and returns that path (cert
// first, anchor last), or nil when cert was not issued under an anchor. It
// tells an untrusted certificate from a trusted one that is out of date.
func pathToAnchor(cert *x509.Certificate, certs []*x509.Certificate, anchors *Anchors) []*x509.Certificate {
	path := []*x509.Certificate{cert}
	cur := cert
	for len(path) <= maxPath {
		for _, ca := range anchors.cas {
			if bytes.Equal(cur.RawIssuer, ca.RawSubject) && cur.CheckSignatureFrom(ca) == nil {
				return append(path, ca)
			}
		}
		var next *x509.Certificate
		for _, c := range certs {
			if c != cur && bytes.Equal(cur.RawIssuer, c.RawSubject) && cur.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil {
			return nil
		}
		path = append(path, next)
		cur = next
	}
	return nil
}

// checkRevocation looks cert up in the CRL configured for its issuer,
// chain[1]. A certificate without a configured CRL passes.
func checkRevocation(cert *x509.Certificate, chain []*x509.Certificate, anchors *Anchors, now time.Time) *Error {
	if len(chain) < 2 {
		return nil
	}
	issuer := chain[1]
	crl := anchors.crlOf(issuer)
	if crl == nil {
		return nil
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber == nil || e.SerialNumber.Cmp(cert.SerialNumber) != 0 || e.RevocationTime.After(now) {
			continue
		}
		what := "revocato"
		if e.ReasonCode == 6 { // certificateHold
			what = "sospeso"
		}
		return refuse(CertificatoRevocato, nil, "il certificato del firmatario %s è %s dal %s (CRL di %s del %s)",
			describe(cert), what, stamp(e.RevocationTime), printable(issuer.Subject.CommonName), stamp(crl.ThisUpdate))
	}
	return nil
}

// describe names a certificate for an operator: common name, serial number
// and issuer.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%s (n. di serie %s, emesso da %s)", printable(c.Subject.CommonName), serialHex(c.SerialNumber), printable(c.Issuer.CommonName))
}

func serialHex(n *big.Int) string {
	if n == nil {
		return "?"
	}
	return strings.ToUpper(n.Text(16))
}

// printable quotes s when it is empty or holds characters that could mangle
// a receipt line.
func printable(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// stamp formats a time for an operator message, in UTC.
func stamp(t time.Time) string { return t.UTC().Format("02/01/2006 15:04:05 UTC") }

// EnvelopedContent returns the document inside an enveloping signature
// (.p7m) without verifying anything, within the default limits: it names a
// signed file by its content (the same document signed twice is the same
// file), never to trust it.
func EnvelopedContent(sig []byte) ([]byte, error) {
	lim := Limits{}.withDefaults()
	p7, rerr := open(sig, false, lim)
	if rerr != nil {
		return nil, rerr
	}
	if rerr := bindContent(p7, nil, false, lim); rerr != nil {
		return nil, rerr
	}
	return p7.Content, nil
}
