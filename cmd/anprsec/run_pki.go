package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"anprsec/pki"
	"anprsec/pkihttp"
	"anprsec/schedules"
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

// newPKIServer makes the server and its OCSP responder; the responder's
// renewal runs in bg until ctx is done. A responder without a certificate
// (the CA could not be loaded) answers tryLater until one is issued.
func (a *app) newPKIServer(ctx context.Context, r *schedules.Runner, bg *sync.WaitGroup) (*pkihttp.Server, error) {
	pc := a.cfg.PKI
	certPath := a.cfg.Path(pc.CACert)
	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	caCert, err := pki.ParseCertificatePEM(data)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	resp, err := pkihttp.NewResponder(pkihttp.ResponderOptions{
		Store: r.Store(), Sealer: r.Env().Sealer, CACert: caCert,
		LoadCA:   func() (*pki.CA, error) { return pki.LoadCA(certPath, a.cfg.CAKey()) },
		Validity: pc.OCSPValidity, NonceRate: pc.OCSPNonceRate, Log: a.log,
	})
	switch {
	case resp == nil:
		return nil, err
	case err != nil:
		a.log.Warn("OCSP responder without a certificate: it answers tryLater until one is issued", "err", err)
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		resp.Run(ctx)
	}()
	return pkihttp.New(pkihttp.Options{
		Store: r.Store(), CACert: caCert, OCSP: resp,
		CRLURL: pc.CRLURL, OCSPURL: pc.OCSPURL, CAIssuersURL: pc.CAIssuersURL,
		Log: a.log,
	})
}
