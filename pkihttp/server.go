// Package pkihttp is the face of anprsec's PKI toward relying parties
// (docs/rules.md#certificates): on the public pki.http_address it serves
// the current CRL (DER), the CA certificate (DER) and an OCSP responder, at
// the paths of the URLs that every issued certificate names
// (pki.crl_url, pki.ca_issuers_url, pki.ocsp_url). It reads the CRL and the
// certificates' status from the store; it is separate from the loopback
// metrics server of package ops.
package pkihttp

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"anprsec/internal/httpserve"
	"anprsec/pki"
	"anprsec/store"
)

// Default paths, used when the matching URL of the config is empty.
const (
	DefaultCRLPath  = "/crl/anprsec.crl"
	DefaultCAPath   = "/ca/anprsec.crt"
	DefaultOCSPPath = "/ocsp"
)

// crlRefresh is how long a CRL read from the store is served before the
// store is read again: the crl job re-signs it hourly and after every
// change, and reading it again costs the decoding of the whole list.
const crlRefresh = time.Second

// Options configure a Server.
type Options struct {
	Store *store.Store
	// CACert is the issuing CA's certificate, served at the path of
	// CAIssuersURL.
	CACert *x509.Certificate
	// The URLs of the config (pki.crl_url, pki.ocsp_url,
	// pki.ca_issuers_url): only their paths matter here.
	CRLURL, OCSPURL, CAIssuersURL string
	// OCSP answers OCSP requests at the path of OCSPURL; nil: none.
	OCSP *Responder
	// Later are the CAs made by rollovers after the first (CACert above),
	// each with its CRL and certificate at paths of its own; OCSP requests
	// go, at the one path, to the responder of the CA they name.
	Later []LaterCA
	Now   func() time.Time
	Log   *slog.Logger
}

// LaterCA is a CA after the first (docs/rules.md#ca-rollover).
type LaterCA struct {
	// Tag names its CRL in the store (store.Tx.LastCRLOf).
	Tag string
	// Cert is its certificate, Cross its certificate under the previous
	// CA: the path of CAIssuersURL serves Cross while it is valid (what a
	// relying party that trusts the previous CA needs), then Cert.
	Cert, Cross *x509.Certificate
	// The URLs written into its certificates (tagged): only their paths
	// matter here.
	CRLURL, CAIssuersURL string
	// OCSP answers for its certificates; nil: none (a retired CA).
	OCSP *Responder
}

// Server serves the CRL, the CA certificate and OCSP.
type Server struct {
	o                         Options
	crlPath, caPath, ocspPath string
	// the later CAs' CRLs (path -> tag) and certificates (path -> CA)
	laterCRL map[string]string
	laterCA  map[string]*LaterCA

	crlMu sync.Mutex
	crls  map[string]*loadedCRL // by tag
}

type loadedCRL struct {
	crl    *store.CRL
	loaded time.Time
}

// New makes a Server.
func New(o Options) (*Server, error) {
	if o.Store == nil || o.CACert == nil {
		return nil, errors.New("pkihttp: a store and the CA certificate are needed")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{o: o}
	var err error
	if s.crlPath, err = pathOf(o.CRLURL, DefaultCRLPath); err != nil {
		return nil, fmt.Errorf("pkihttp: pki.crl_url: %w", err)
	}
	if s.caPath, err = pathOf(o.CAIssuersURL, DefaultCAPath); err != nil {
		return nil, fmt.Errorf("pkihttp: pki.ca_issuers_url: %w", err)
	}
	if s.ocspPath, err = pathOf(o.OCSPURL, DefaultOCSPPath); err != nil {
		return nil, fmt.Errorf("pkihttp: pki.ocsp_url: %w", err)
	}
	s.ocspPath = strings.TrimSuffix(s.ocspPath, "/")
	s.crls = map[string]*loadedCRL{}
	s.laterCRL, s.laterCA = map[string]string{}, map[string]*LaterCA{}
	taken := map[string]bool{s.crlPath: true, s.caPath: true}
	for i := range o.Later {
		if err := s.addLater(&o.Later[i], taken); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// addLater routes the CRL and certificate paths of a later CA; taken are
// the paths routed already.
func (s *Server) addLater(l *LaterCA, taken map[string]bool) error {
	if l.Tag == "" || l.Cert == nil {
		return errors.New("pkihttp: a later CA needs its tag and certificate")
	}
	crlPath, err := pathOf(l.CRLURL, "")
	if err != nil {
		return fmt.Errorf("pkihttp: CRL URL of CA %s: %w", l.Tag, err)
	}
	caPath, err := pathOf(l.CAIssuersURL, "")
	if err != nil {
		return fmt.Errorf("pkihttp: CA issuers URL of CA %s: %w", l.Tag, err)
	}
	for _, p := range []string{crlPath, caPath} {
		if p != "" && taken[p] {
			return fmt.Errorf("pkihttp: CA %s: path %s is served already", l.Tag, p)
		}
		taken[p] = true
	}
	if crlPath != "" {
		s.laterCRL[crlPath] = l.Tag
	}
	if caPath != "" {
		s.laterCA[caPath] = l
	}
	return nil
}

// Paths returns the paths served: CRL, CA certificate, OCSP.
func (s *Server) Paths() (crl, ca, ocsp string) {
	o := s.ocspPath
	if o == "" {
		o = "/"
	}
	return s.crlPath, s.caPath, o
}

func pathOf(raw, def string) (string, error) {
	if raw == "" {
		return def, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Path == "" {
		return "/", nil
	}
	return u.Path, nil
}

// ServeHTTP routes by path: the CRL and the CA certificate (GET, HEAD),
// OCSP (POST to its path, GET below it); anything else is 404. It does not
// clean paths as http.ServeMux does: an OCSP GET request's base64 may hold
// "//".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := r.URL.Path
	switch {
	case p == s.crlPath:
		s.serveCRL(w, r, "")
	case p == s.caPath:
		s.serveCA(w, r, s.o.CACert)
	case s.laterCRL[p] != "":
		s.serveCRL(w, r, s.laterCRL[p])
	case s.laterCA[p] != nil:
		l := s.laterCA[p]
		c := l.Cert
		if l.Cross != nil && s.o.Now().Before(l.Cross.NotAfter) {
			c = l.Cross
		}
		s.serveCA(w, r, c)
	case s.hasOCSP() && (p == s.ocspPath || strings.HasPrefix(p, s.ocspPath+"/")):
		if len(s.o.Later) == 0 {
			s.o.OCSP.serveHTTP(w, r, s.ocspPath)
			return
		}
		serveOCSP(w, r, s.ocspPath, s.respond)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) hasOCSP() bool {
	if s.o.OCSP != nil {
		return true
	}
	for _, l := range s.o.Later {
		if l.OCSP != nil {
			return true
		}
	}
	return false
}

// respond hands an OCSP request to the responder of the CA it names by its
// issuer name and key hashes (docs/rules.md#ca-rollover); a request about
// none of them is unauthorized.
func (s *Server) respond(der []byte) Answer {
	req, err := pki.ParseOCSPRequest(der)
	if err != nil {
		return Answer{DER: ocsp.MalformedRequestErrorResponse}
	}
	responders := []*Responder{s.o.OCSP}
	for _, l := range s.o.Later {
		responders = append(responders, l.OCSP)
	}
	for _, r := range responders {
		if r != nil && req.IssuedBy(r.CACert()) {
			return r.Respond(der)
		}
	}
	return Answer{DER: ocsp.UnauthorizedErrorResponse}
}

func getOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// serveCRL serves the last CRL the crl job signed, DER, as
// application/pkix-crl (RFC 2585), with Last-Modified = its thisUpdate;
// 404 before the first.
func (s *Server) serveCRL(w http.ResponseWriter, r *http.Request, tag string) {
	if !getOnly(w, r) {
		return
	}
	c, err := s.lastCRL(tag)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "no CRL signed yet", http.StatusNotFound)
		return
	}
	if err != nil {
		s.o.Log.Warn("pkihttp: reading the CRL", "err", err)
		http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Cache-Control", "public, max-age=60, no-transform")
	http.ServeContent(w, r, "", c.ThisUpdate, bytes.NewReader(c.DER))
}

// lastCRL returns the last CRL of the CA tagged tag ("" the first CA),
// read again from the store at most every crlRefresh.
func (s *Server) lastCRL(tag string) (*store.CRL, error) {
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	now := s.o.Now()
	if l := s.crls[tag]; l != nil && now.Sub(l.loaded) < crlRefresh && !now.Before(l.loaded) {
		return l.crl, nil
	}
	var c *store.CRL
	if err := s.o.Store.View(func(tx *store.Tx) error {
		var err error
		c, err = tx.LastCRLOf(tag)
		return err
	}); err != nil {
		return nil, err
	}
	s.crls[tag] = &loadedCRL{crl: c, loaded: now}
	return c, nil
}

// serveCA serves a CA certificate, DER, as application/pkix-cert.
func (s *Server) serveCA(w http.ResponseWriter, r *http.Request, c *x509.Certificate) {
	if !getOnly(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Cache-Control", "public, max-age=3600, no-transform")
	http.ServeContent(w, r, "", c.NotBefore, bytes.NewReader(c.Raw))
}

// Listen opens the public address pki.http_address.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pki.http_address %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves s on ln until ctx is done, then shuts down (in-flight
// requests get a few seconds). It returns nil after a shutdown. The
// address is public: requests are small and slow clients are cut off.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	return httpserve.Serve(ctx, hs, ln)
}
