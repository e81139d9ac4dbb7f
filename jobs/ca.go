package jobs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"anprsec/config"
	"anprsec/domain"
	"anprsec/pki"
	"anprsec/pki/hsm"
	"anprsec/store"
)

// IssuerCA is one CA of anprsec (docs/rules.md#ca-rollover): the first one
// (pki.ca_cert, pki.ca_key) or one made by `anprsec ca rinnova`, with the
// names of its files, CRL and URLs.
type IssuerCA struct {
	// Tag is "" for the first CA, the date of its rollover (AAAAMMGG) for
	// a later one.
	Tag   string
	KeyID string // Subject Key Identifier, hex upper case
	Cert  *x509.Certificate
	// Cross is the certificate of this CA's key under the previous CA
	// (nil for the first); Via are the cross certificates of the CAs
	// before it, newest first, back to the first CA (after a second
	// rollover).
	Cross *x509.Certificate
	Via   []*x509.Certificate
	// CertPath and KeyRef locate the certificate and the key (a file or
	// a PKCS#11 URI).
	CertPath, KeyRef string
	// Current: the CA that issues new certificates.
	Current bool
	// Retired: the CA publishes no CRL and answers no OCSP any more.
	Retired time.Time
}

// First reports whether c is the first CA of the store, whose
// certificates may carry no issuer record.
func (c *IssuerCA) First() bool { return c.Tag == "" }

// Owns reports whether c issued the certificate of p.
func (c *IssuerCA) Owns(p *domain.Postazione) bool {
	return p.Issuer == c.KeyID || (p.Issuer == "" && c.First())
}

// OwnsPrev reports whether c issued pc, a certificate of p replaced by a
// renewal.
func (c *IssuerCA) OwnsPrev(pc *domain.PrevCert) bool {
	return pc.Issuer == c.KeyID || (pc.Issuer == "" && c.First())
}

// Live reports whether p has a certificate of c that still counts: its
// current one, or one replaced by a renewal whose overlap is not over,
// not expired at now.
func (c *IssuerCA) Live(p *domain.Postazione, now time.Time) bool {
	if p.Serial != "" && c.Owns(p) && p.NotAfter.After(now) {
		return true
	}
	for i := range p.Predecessors {
		pc := &p.Predecessors[i]
		if c.OwnsPrev(pc) && pc.NotAfter.After(now) && pc.SupersededAt().After(now) {
			return true
		}
	}
	return false
}

// Load opens the CA's key and checks it is this CA's.
func (c *IssuerCA) Load() (*pki.CA, error) {
	ca, err := pki.LoadCA(c.CertPath, c.KeyRef)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(ca.Cert.Raw, c.Cert.Raw) {
		return nil, fmt.Errorf("pki: %s non è la CA registrata nell'archivio (key id %s)", c.CertPath, c.KeyID)
	}
	return ca, nil
}

// Chain is what a PKCS#12 of this CA carries beside the certificate: the
// CA certificate and, after a rollover, the cross certificate, so that a
// relying party that trusts only the previous CA finds its way to it
// (after a second rollover, the earlier CAs' cross certificates too, back
// to the first CA). The cross certificate comes first: OpenSSL takes the first issuer it finds
// among the untrusted certificates, and the self-signed one ends a chain
// that the previous CA's relying parties do not trust (one that trusts the
// new CA finds it in its own store first).
func (c *IssuerCA) Chain() []*x509.Certificate {
	if c.Cross == nil {
		return []*x509.Certificate{c.Cert}
	}
	chain := append([]*x509.Certificate{c.Cross}, c.Via...)
	return append(chain, c.Cert)
}

// Discovery are the URLs written into this CA's certificates: the CRL and
// the CA issuers URLs of the config, a later CA's with its tag added to
// the file name (…/anprsec-20270115.crl), so that a relying party fetches
// this CA's CRL; OCSP is one URL for all (the responder is chosen by the
// request's issuerKeyHash).
func (c *IssuerCA) Discovery(pc *config.Config) pki.Discovery {
	return pki.Discovery{
		CRL:       TaggedURL(pc.PKI.CRLURL, c.Tag),
		OCSP:      pc.PKI.OCSPURL,
		CAIssuers: TaggedURL(pc.PKI.CAIssuersURL, c.Tag),
	}
}

// CRLFiles are the drop files of this CA's CRL: crl/anprsec.crl(.pem) for
// the first CA, crl/anprsec-<TAG>.crl(.pem) for a later one.
func (c *IssuerCA) CRLFiles() (der, pemFile string) {
	der = taggedName(CRLFileDER, c.Tag)
	return der, der + ".pem"
}

// TaggedURL is raw with "-tag" before the extension of its last path
// element (raw itself for the first CA, tag ""; "" stays "").
func TaggedURL(raw, tag string) string {
	if raw == "" || tag == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = taggedName(u.Path, tag)
	u.RawPath = ""
	return u.String()
}

// taggedName inserts "-tag" before the extension of p's last element.
func taggedName(p, tag string) string {
	if tag == "" {
		return p
	}
	dir, file := path.Split(p)
	ext := path.Ext(file)
	if file == "" {
		return p + tag
	}
	return dir + strings.TrimSuffix(file, ext) + "-" + tag + ext
}

// CAFiles are where a later CA tagged tag keeps its certificate, key and
// cross certificate: beside pki.ca_cert and pki.ca_key, with the tag in
// the name (var/pki/ca-20270115.crt, ca-20270115.key,
// ca-20270115.cross.crt); with pki.ca_key a PKCS#11 URI, the key is the
// object labelled <object>-<tag> of the same token.
func CAFiles(cfg *config.Config, tag string) (certPath, keyRef, crossPath string, err error) {
	if tag == "" {
		return cfg.Path(cfg.PKI.CACert), cfg.CAKey(), "", nil
	}
	certPath = taggedName(filepath.ToSlash(cfg.Path(cfg.PKI.CACert)), tag)
	ext := path.Ext(certPath)
	crossPath = strings.TrimSuffix(certPath, ext) + ".cross" + ext
	certPath, crossPath = filepath.FromSlash(certPath), filepath.FromSlash(crossPath)
	if !cfg.CAKeyInHSM() {
		return certPath, filepath.FromSlash(taggedName(filepath.ToSlash(cfg.CAKey()), tag)), crossPath, nil
	}
	u, err := hsm.ParseURI(cfg.CAKey())
	if err != nil {
		return "", "", "", fmt.Errorf("pki.ca_key: %w", err)
	}
	label := u.Object
	if label == "" {
		label = "anprsec-ca"
	}
	nu, err := u.WithObject(label + "-" + tag)
	if err != nil {
		return "", "", "", err
	}
	return certPath, nu.String(), crossPath, nil
}

// CAs returns the CAs of the store, first to last; before any rollover,
// the one of pki.ca_cert (read from its file), current.
func CAs(cfg *config.Config, tx *store.Tx) ([]*IssuerCA, error) {
	reg, err := tx.CARegistry()
	if errors.Is(err, store.ErrNotFound) {
		certPath, keyRef, _, _ := CAFiles(cfg, "")
		cert, err := pki.LoadCertFile(certPath)
		if err != nil {
			return nil, fmt.Errorf("certificato della CA: %w", err)
		}
		return []*IssuerCA{{KeyID: pki.KeyID(cert), Cert: cert, CertPath: certPath, KeyRef: keyRef, Current: true}}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]*IssuerCA, 0, len(reg.CAs))
	for _, r := range reg.CAs {
		c, err := issuerOf(cfg, r)
		if err != nil {
			return nil, err
		}
		c.Current = r.KeyID == reg.Current
		for i := len(out) - 1; i >= 1; i-- {
			c.Via = append(c.Via, out[i].Cross)
		}
		out = append(out, c)
	}
	return out, nil
}

func issuerOf(cfg *config.Config, r store.CARecord) (*IssuerCA, error) {
	cert, err := x509.ParseCertificate(r.CertDER)
	if err != nil {
		return nil, fmt.Errorf("CA %s nell'archivio: %w", r.KeyID, err)
	}
	c := &IssuerCA{Tag: r.Tag, KeyID: r.KeyID, Cert: cert, Retired: r.Retired}
	if len(r.CrossDER) > 0 {
		if c.Cross, err = x509.ParseCertificate(r.CrossDER); err != nil {
			return nil, fmt.Errorf("certificato incrociato della CA %s nell'archivio: %w", r.KeyID, err)
		}
	}
	c.CertPath, c.KeyRef, _, err = CAFiles(cfg, r.Tag)
	return c, err
}

// CurrentCA returns the CA that issues new certificates
// (docs/rules.md#ca-rollover): the last one switched to by `anprsec ca
// rinnova`, else the one of pki.ca_cert.
func CurrentCA(env *Env) (*IssuerCA, error) {
	var cur *IssuerCA
	err := env.Store.View(func(tx *store.Tx) error {
		cas, err := CAs(env.Config, tx)
		if err != nil {
			return err
		}
		for _, c := range cas {
			if c.Current {
				cur = c
			}
		}
		if cur == nil {
			return errors.New("l'archivio non indica nessuna CA corrente")
		}
		return nil
	})
	return cur, err
}
