package pkihttp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

// OCSPActor is the history actor of the responder's own changes (a new
// responder certificate).
const OCSPActor = "ocsp"

// maxRequest is the largest OCSP request read (one certificate and a
// nonce take about 120 bytes).
const maxRequest = 4 << 10

// maxCached bounds the response cache: at 1.5 KB a response (RSA
// responder certificate included), about 300 MB. Past it the cache starts
// again empty.
const maxCached = 200_000

// ensureEvery is how often Run checks that the responder certificate is
// not due for renewal; after a failure it retries sooner.
const (
	ensureEvery = time.Hour
	ensureRetry = 5 * time.Minute
)

// ResponderOptions configure a Responder.
type ResponderOptions struct {
	Store  *store.Store
	Sealer *store.Sealer // seals the responder key in the store
	// CACert is the certificate of the CA whose certificates are answered
	// for.
	CACert *x509.Certificate
	// LoadCA gives the CA (its signer: a file key or an HSM) when a
	// responder certificate must be issued; it is not called per request.
	LoadCA func() (*pki.CA, error)
	// Validity is nextUpdate - thisUpdate (pki.ocsp_validity).
	Validity time.Duration
	// NonceRate is the most freshly signed responses a second
	// (pki.ocsp_nonce_rate): requests with a nonce, and serials never
	// issued; 0: none.
	NonceRate float64
	// Later: the CA is not the first of the store (docs/rules.md#ca-rollover):
	// it answers only for certificates recorded as its own
	// (Postazione.Issuer); the first CA also for those recorded before
	// the issuer was.
	Later bool
	Now   func() time.Time
	Log   *slog.Logger
}

// Responder answers OCSP requests (RFC 6960) about the certificates of one
// CA from the store (docs/rules.md#certificates):
//
//   - good: a certificate whose postazione is not revoked (ATTIVO,
//     SCADUTO);
//   - revoked with the time and reason of lifecycle.RevocationOf: BLOCCATO
//     and REVOCATA IN LAVORAZIONE with reason certificateHold, REVOCATO
//     with the reason of its revocation;
//   - a certificate replaced by a renewal: as its postazione's during the
//     overlap, revoked with reason superseded after it
//     (lifecycle.RevocationOfSerial; a kept response is not served past
//     the end of the overlap);
//   - unknown: a serial that is no postazione's certificate;
//   - unauthorized: a certificate of another CA.
//
// The status is read from the store's serial index at every request, so
// a block, unblock or revoke is answered at once. Responses are signed by
// a delegated responder certificate (pki.IssueOCSPResponder), kept sealed
// in the store and renewed before it expires; the CA key signs only that
// certificate. A response without a nonce is kept and served again until
// the certificate's status changes, the responder certificate changes or
// half of Validity has passed; a request with a nonce gets a fresh
// response carrying it while NonceRate allows, and the kept one beyond.
type Responder struct {
	o       ResponderOptions
	caKeyID string

	mu     sync.RWMutex
	signer *pki.OCSPSigner
	gen    uint64 // changes with the signer: kept responses of another are stale

	cacheMu sync.RWMutex
	cache   map[string]*cached

	fresh bucket

	hits, signed, nonces atomic.Int64
}

// cached is a kept response.
type cached struct {
	status     []byte // the serial index entry it was signed from
	gen        uint64
	thisUpdate time.Time
	der        []byte
	etag       string
	changes    time.Time // when the status changes by itself (end of an overlap); zero: never
}

// NewResponder makes a Responder: it completes the store's serial index
// (a store from before it gets it once) and loads the responder
// certificate, issuing one through LoadCA when there is none or it is due.
// A failure to issue one is returned with the Responder, which then
// answers tryLater until Ensure succeeds.
func NewResponder(o ResponderOptions) (*Responder, error) {
	if o.Store == nil || o.CACert == nil || o.LoadCA == nil {
		return nil, errors.New("pkihttp: OCSP needs the store, the CA certificate and a way to load the CA")
	}
	if o.Sealer == nil {
		return nil, errors.New("pkihttp: OCSP needs the seal key (keys.seal) for its responder key")
	}
	if len(o.CACert.SubjectKeyId) == 0 {
		return nil, errors.New("pkihttp: the CA certificate has no Subject Key Identifier")
	}
	if o.Validity <= 0 {
		o.Validity = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	r := &Responder{o: o, caKeyID: strings.ToUpper(hex.EncodeToString(o.CACert.SubjectKeyId)), cache: map[string]*cached{}}
	r.fresh = bucket{rate: o.NonceRate, burst: max(1, o.NonceRate), tokens: max(1, o.NonceRate)}
	if n, err := o.Store.IndexSerials(0); err != nil {
		return nil, fmt.Errorf("pkihttp: indexing serials: %w", err)
	} else if n > 0 {
		o.Log.Info("OCSP: serials of the postazioni indexed", "postazioni", n)
	}
	return r, r.Ensure()
}

// Stats are counts of answered requests: from the kept responses, freshly
// signed, and with a nonce.
func (r *Responder) Stats() (hits, signed, nonces int64) {
	return r.hits.Load(), r.signed.Load(), r.nonces.Load()
}

// Signer returns the current responder signer (nil when none).
func (r *Responder) Signer() *pki.OCSPSigner {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.signer
}

// due reports whether the responder certificate c should be replaced at
// now: within OCSPResponderRenewBefore of its end, unless the CA itself
// ends first (a new one could not last longer).
func (r *Responder) due(c *x509.Certificate, now time.Time) bool {
	if !now.Before(c.NotAfter) {
		return true
	}
	return !now.Before(c.NotAfter.Add(-pki.OCSPResponderRenewBefore)) && r.o.CACert.NotAfter.After(c.NotAfter)
}

// Ensure makes sure a responder certificate that is not due is in use:
// the current one, the store's, or a new one issued through LoadCA,
// sealed and stored with a history entry. While a due certificate is
// still valid it is kept in use when a new one cannot be issued.
func (r *Responder) Ensure() error {
	now := r.o.Now()
	if s := r.Signer(); s != nil && !r.due(s.Cert, now) {
		return nil
	}
	var rec *store.OCSPResponder
	err := r.o.Store.View(func(tx *store.Tx) error {
		var err error
		rec, err = tx.OCSPResponder(r.caKeyID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("pkihttp: OCSP responder: %w", err)
	}
	if rec != nil {
		s, err := r.open(rec)
		if err != nil {
			r.o.Log.Warn("OCSP: the stored responder certificate cannot be used: issuing another", "err", err)
		} else if !r.due(s.Cert, now) {
			r.install(s)
			return nil
		} else if now.Before(s.Cert.NotAfter) && r.Signer() == nil {
			r.install(s) // due but valid: serve with it while a new one is made
		}
	}
	s, err := r.issue(now)
	if err != nil {
		return fmt.Errorf("pkihttp: a new OCSP responder certificate: %w", err)
	}
	r.install(s)
	return nil
}

func (r *Responder) open(rec *store.OCSPResponder) (*pki.OCSPSigner, error) {
	cert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return nil, err
	}
	der, err := r.o.Sealer.Open(rec.KeySealed, store.OCSPResponderSealContext(r.caKeyID))
	if err != nil {
		return nil, fmt.Errorf("opening the responder key: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("responder key of type %T", key)
	}
	return pki.NewOCSPSigner(r.o.CACert, cert, signer)
}

// issue makes a responder key and certificate and stores them.
func (r *Responder) issue(now time.Time) (*pki.OCSPSigner, error) {
	ca, err := r.o.LoadCA()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(ca.Cert.Raw, r.o.CACert.Raw) {
		return nil, errors.New("the CA loaded is not the one answered for")
	}
	key, err := ca.NewOCSPResponderKey()
	if err != nil {
		return nil, err
	}
	cert, err := ca.IssueOCSPResponder(key.Public(), now)
	if err != nil {
		return nil, err
	}
	s, err := pki.NewOCSPSigner(r.o.CACert, cert, key)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	rec := &store.OCSPResponder{CAKeyID: r.caKeyID, CertDER: cert.Raw, NotAfter: cert.NotAfter,
		KeySealed: r.o.Sealer.Seal(der, store.OCSPResponderSealContext(r.caKeyID))}
	serial := fmt.Sprintf("%X", cert.SerialNumber)
	err = r.o.Store.Update(func(tx *store.Tx) error {
		rec.Created = tx.Now
		if err := tx.PutOCSPResponder(rec); err != nil {
			return err
		}
		return tx.Record(store.Source{Actor: OCSPActor}, "ocsp.responder", "ocsp", serial,
			fmt.Sprintf("certificato del responder OCSP emesso dalla CA %q, seriale %s, scade %s",
				r.o.CACert.Subject.CommonName, serial, cert.NotAfter.UTC().Format(time.RFC3339)))
	})
	if err != nil {
		return nil, err
	}
	r.o.Log.Info("OCSP: new responder certificate", "serial", serial, "not_after", cert.NotAfter)
	return s, nil
}

func (r *Responder) install(s *pki.OCSPSigner) {
	r.mu.Lock()
	r.signer = s
	r.gen++
	r.mu.Unlock()
	r.cacheMu.Lock()
	r.cache = map[string]*cached{}
	r.cacheMu.Unlock()
}

// Run renews the responder certificate when due, every hour (sooner after
// a failure), until ctx is done.
func (r *Responder) Run(ctx context.Context) {
	wait := ensureEvery
	if r.Signer() == nil {
		wait = ensureRetry
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = ensureEvery
		if err := r.Ensure(); err != nil {
			r.o.Log.Warn("OCSP: the responder certificate could not be renewed", "err", err)
			wait = ensureRetry
		}
	}
}

// Answer is a response and how it may be cached by HTTP.
type Answer struct {
	DER []byte
	// Cacheable: a response without a nonce about a known certificate,
	// with its thisUpdate, nextUpdate and entity tag.
	Cacheable              bool
	ThisUpdate, NextUpdate time.Time
	ETag                   string
}

// Respond answers a DER OCSP request. Failures are answers too: a
// malformed request gets malformedRequest, another CA's certificate
// unauthorized, no responder certificate or no fresh signature left
// tryLater, a store failure internalError.
func (r *Responder) Respond(reqDER []byte) Answer {
	req, err := pki.ParseOCSPRequest(reqDER)
	if err != nil {
		return Answer{DER: ocsp.MalformedRequestErrorResponse}
	}
	r.mu.RLock()
	s, gen := r.signer, r.gen
	r.mu.RUnlock()
	if s == nil {
		return Answer{DER: ocsp.TryLaterErrorResponse}
	}
	if !s.Issued(req) {
		return Answer{DER: ocsp.UnauthorizedErrorResponse}
	}
	serial := fmt.Sprintf("%X", req.Serial)
	var raw []byte
	err = r.o.Store.View(func(tx *store.Tx) error {
		var err error
		raw, err = tx.SerialIndexRaw(serial)
		return err
	})
	now := r.o.Now()
	if err == nil && !r.owns(raw, serial) {
		err = store.ErrNotFound // another CA's certificate with this serial
	}
	if errors.Is(err, store.ErrNotFound) || req.Serial.Sign() <= 0 {
		if !r.fresh.take(now) {
			return Answer{DER: ocsp.TryLaterErrorResponse}
		}
		return r.sign(s, req, pki.OCSPStatus{Status: ocsp.Unknown}, now, req.Nonce)
	}
	if err != nil {
		r.o.Log.Warn("OCSP: reading the store", "err", err)
		return Answer{DER: ocsp.InternalErrorErrorResponse}
	}
	if req.Nonce != nil && r.fresh.take(now) {
		st, _, err := statusOf(raw, serial, now)
		if err != nil {
			return Answer{DER: ocsp.InternalErrorErrorResponse}
		}
		r.nonces.Add(1)
		return r.sign(s, req, st, now, req.Nonce)
	}
	key := string(req.CertID)
	r.cacheMu.RLock()
	c := r.cache[key]
	r.cacheMu.RUnlock()
	if c != nil && c.gen == gen && bytes.Equal(c.status, raw) && now.Sub(c.thisUpdate) < r.o.Validity/2 && !now.Before(c.thisUpdate) &&
		(c.changes.IsZero() || now.Before(c.changes)) {
		r.hits.Add(1)
		return Answer{DER: c.der, Cacheable: true, ThisUpdate: c.thisUpdate, NextUpdate: c.thisUpdate.Add(r.o.Validity), ETag: c.etag}
	}
	st, changes, err := statusOf(raw, serial, now)
	if err != nil {
		r.o.Log.Warn("OCSP: a serial index entry", "serial", serial, "err", err)
		return Answer{DER: ocsp.InternalErrorErrorResponse}
	}
	a := r.sign(s, req, st, now, nil)
	if a.ThisUpdate.IsZero() {
		return a
	}
	sum := sha256.Sum256(a.DER)
	a.Cacheable, a.ETag = true, `"`+hex.EncodeToString(sum[:16])+`"`
	r.cacheMu.Lock()
	if len(r.cache) >= maxCached {
		r.cache = map[string]*cached{}
	}
	r.cache[key] = &cached{status: raw, gen: gen, thisUpdate: a.ThisUpdate, der: a.DER, etag: a.ETag, changes: changes}
	r.cacheMu.Unlock()
	return a
}

func (r *Responder) sign(s *pki.OCSPSigner, req *pki.OCSPRequest, st pki.OCSPStatus, now time.Time, nonce []byte) Answer {
	der, err := s.Sign(req.CertID, st, now, r.o.Validity, nonce)
	if err != nil {
		r.o.Log.Warn("OCSP: signing a response", "err", err)
		return Answer{DER: ocsp.InternalErrorErrorResponse}
	}
	r.signed.Add(1)
	t := now.UTC().Truncate(time.Second)
	return Answer{DER: der, ThisUpdate: t, NextUpdate: t.Add(r.o.Validity)}
}

// owns reports whether serial, of the serial index entry raw (its
// postazione's current certificate or one replaced by a renewal), is a
// certificate of the responder's CA.
func (r *Responder) owns(raw []byte, serial string) bool {
	var p struct {
		Serial       string `json:"serial"`
		Issuer       string `json:"issuer"`
		Predecessors []struct {
			Serial string `json:"serial"`
			Issuer string `json:"issuer"`
		} `json:"predecessors"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return true // statusOf reports it
	}
	issuer := p.Issuer
	if !strings.EqualFold(serial, p.Serial) {
		for _, pc := range p.Predecessors {
			if strings.EqualFold(serial, pc.Serial) {
				issuer = pc.Issuer
			}
		}
	}
	return issuer == r.caKeyID || (issuer == "" && !r.o.Later)
}

// CACert is the certificate of the CA the responder answers for.
func (r *Responder) CACert() *x509.Certificate { return r.o.CACert }

// statusOf is the OCSP status at now of the certificate serial of a serial
// index entry (its postazione's current certificate or a predecessor,
// lifecycle.RevocationOfSerial), and when it changes by itself.
func statusOf(raw []byte, serial string, now time.Time) (pki.OCSPStatus, time.Time, error) {
	var p domain.Postazione
	if err := json.Unmarshal(raw, &p); err != nil {
		return pki.OCSPStatus{}, time.Time{}, err
	}
	rev, changes, ok := lifecycle.RevocationOfSerial(&p, serial, now)
	if !ok {
		return pki.OCSPStatus{}, time.Time{}, fmt.Errorf("the index entry of %s is of postazione %s, which does not have it", serial, p.Code)
	}
	if !rev.Revoked {
		return pki.OCSPStatus{Status: ocsp.Good}, changes, nil
	}
	return pki.OCSPStatus{Status: ocsp.Revoked, RevokedAt: rev.At, Reason: rev.Reason}, changes, nil
}

// Precompute signs and keeps the response about every current certificate
// for the SHA-1 CertID that OpenSSL and most clients send, on all cores,
// so that the first request of each is answered from the kept responses
// too. It returns how many responses it kept.
func (r *Responder) Precompute() (int, error) {
	s := r.Signer()
	if s == nil {
		return 0, errors.New("pkihttp: no OCSP responder certificate")
	}
	var serials []string
	err := r.o.Store.View(func(tx *store.Tx) error {
		return tx.EachSerial(func(serial string) error {
			serials = append(serials, serial)
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	var kept atomic.Int64
	work := make(chan string)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sn := range work {
				serial, err := pki.ParseSerialHex(sn)
				if err != nil {
					continue
				}
				id, err := s.CertID(crypto.SHA1, serial)
				if err != nil {
					continue
				}
				if a := r.Respond(wrapRequest(id)); a.Cacheable {
					kept.Add(1)
				}
			}
		}()
	}
	for _, sn := range serials {
		work <- sn
	}
	close(work)
	wg.Wait()
	return int(kept.Load()), nil
}

// wrapRequest makes the DER of an OCSP request for one CertID, without a
// nonce.
func wrapRequest(certID []byte) []byte {
	// OCSPRequest { TBSRequest { requestList { Request { CertID } } } }
	seq := func(b []byte) []byte { return append(derHeader(0x30, len(b)), b...) }
	return seq(seq(seq(seq(certID))))
}

func derHeader(tag byte, n int) []byte {
	switch {
	case n < 0x80:
		return []byte{tag, byte(n)}
	case n < 0x100:
		return []byte{tag, 0x81, byte(n)}
	default:
		return []byte{tag, 0x82, byte(n >> 8), byte(n)}
	}
}

// serveHTTP answers OCSP over HTTP (RFC 6960 appendix A): POST of the DER
// request to the responder's path, or GET of its path followed by the
// base64 of the request (URL-encoded). Responses are
// application/ocsp-response; a GET answer without a nonce carries its
// Last-Modified and ETag, must be revalidated (a status change is
// answered at once), and a conditional GET of an unchanged one gets 304.
func (r *Responder) serveHTTP(w http.ResponseWriter, req *http.Request, base string) {
	serveOCSP(w, req, base, r.Respond)
}

// serveOCSP is serveHTTP with the answers of respond.
func serveOCSP(w http.ResponseWriter, req *http.Request, base string, respond func([]byte) Answer) {
	var der []byte
	switch req.Method {
	case http.MethodPost:
		b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxRequest))
		if err != nil {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		der = b
	case http.MethodGet:
		raw := strings.TrimPrefix(strings.TrimPrefix(req.URL.EscapedPath(), base), "/")
		if raw == "" {
			http.Error(w, "OCSP: POST a request, or GET its base64 below this path", http.StatusBadRequest)
			return
		}
		b, err := decodeGET(raw)
		if err != nil || len(b) > maxRequest {
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.Write(ocsp.MalformedRequestErrorResponse)
			return
		}
		der = b
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := respond(der)
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	if req.Method == http.MethodGet && a.Cacheable {
		h.Set("Cache-Control", "public, no-transform, max-age=0, must-revalidate")
		h.Set("ETag", a.ETag)
		http.ServeContent(w, req, "", a.ThisUpdate, bytes.NewReader(a.DER))
		return
	}
	h.Set("Cache-Control", "no-store")
	w.Write(a.DER)
}

// decodeGET decodes the tail of an OCSP GET URL: URL-encoded base64
// (standard, or the URL-safe alphabet some clients use; padding optional).
func decodeGET(raw string) ([]byte, error) {
	s, err := url.PathUnescape(raw)
	if err != nil {
		return nil, err
	}
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// bucket is a token bucket: rate tokens a second, at most burst kept.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time) bool {
	if b.rate <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
