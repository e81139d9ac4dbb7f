package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"

	"anprsec/jobs"
	"anprsec/pkihttp"
	"anprsec/schedules"
	"anprsec/store"
)

// servePKI starts the server of the relying parties on pki.http_address,
// if any: the CRL, the CA certificate and OCSP. Like the metrics server, a
// failure to start is a warning: the jobs run anyway. It returns the
// address served ("" when none).
func (a *app) servePKI(ctx context.Context, r *schedules.Runner, bg *sync.WaitGroup) string {
	pc := a.cfg.PKI
	if pc.HTTPAddress == "" {
		a.log.Info("PKI server disabled (pki.http_address is empty): no CRL, CA certificate or OCSP over HTTP")
		return ""
	}
	srv, err := a.newPKIServer(ctx, r, bg)
	if err != nil {
		a.log.Warn("PKI server not started: relying parties get no CRL, CA certificate or OCSP over HTTP", "err", err)
		return ""
	}
	ln, err := pkihttp.Listen(pc.HTTPAddress)
	if err != nil {
		a.log.Warn("PKI server not started: relying parties get no CRL, CA certificate or OCSP over HTTP", "err", err)
		return ""
	}
	crl, ca, ocsp := srv.Paths()
	a.log.Info("PKI server listening", "address", ln.Addr().String(), "crl", crl, "ca", ca, "ocsp", ocsp)
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			a.log.Warn("PKI server stopped", "err", err)
		}
	}()
	return ln.Addr().String()
}

// newPKIServer makes the server and the OCSP responder of each CA that is
// not retired (docs/rules.md#ca-rollover); the responders' renewal runs in
// bg until ctx is done. A responder without a certificate (the CA could
// not be loaded) answers tryLater until one is issued.
func (a *app) newPKIServer(ctx context.Context, r *schedules.Runner, bg *sync.WaitGroup) (*pkihttp.Server, error) {
	pc := a.cfg.PKI
	var cas []*jobs.IssuerCA
	if err := r.Store().View(func(tx *store.Tx) error {
		var err error
		cas, err = jobs.CAs(a.cfg, tx)
		return err
	}); err != nil {
		return nil, err
	}
	opts := pkihttp.Options{Store: r.Store(), CRLURL: pc.CRLURL, OCSPURL: pc.OCSPURL, CAIssuersURL: pc.CAIssuersURL, Log: a.log}
	for _, c := range cas {
		var resp *pkihttp.Responder
		if c.Retired.IsZero() {
			var err error
			if resp, err = a.newResponder(ctx, r, bg, c); resp == nil {
				return nil, err
			}
		}
		if c.First() {
			opts.CACert, opts.OCSP = c.Cert, resp
			continue
		}
		opts.Later = append(opts.Later, pkihttp.LaterCA{
			Tag: c.Tag, Cert: c.Cert, Cross: c.Cross, OCSP: resp,
			CRLURL:       jobs.TaggedURL(cmp.Or(pc.CRLURL, pkihttp.DefaultCRLPath), c.Tag),
			CAIssuersURL: jobs.TaggedURL(cmp.Or(pc.CAIssuersURL, pkihttp.DefaultCAPath), c.Tag),
		})
	}
	return pkihttp.New(opts)
}

// newResponder makes the OCSP responder of CA c and runs its renewal in bg.
func (a *app) newResponder(ctx context.Context, r *schedules.Runner, bg *sync.WaitGroup, c *jobs.IssuerCA) (*pkihttp.Responder, error) {
	pc := a.cfg.PKI
	resp, err := pkihttp.NewResponder(pkihttp.ResponderOptions{
		Store: r.Store(), Sealer: r.Env().Sealer, CACert: c.Cert, Later: !c.First(),
		LoadCA:   c.Load,
		Validity: pc.OCSPValidity, NonceRate: pc.OCSPNonceRate, Log: a.log,
	})
	switch {
	case resp == nil:
		return nil, fmt.Errorf("CA %s: %w", c.KeyID, err)
	case err != nil:
		a.log.Warn("OCSP responder without a certificate: it answers tryLater until one is issued", "ca", c.KeyID, "err", err)
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		resp.Run(ctx)
	}()
	return resp, nil
}
