package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"anprsec/pki"
)

// devCABitsEnv names the environment variable that lowers the RSA key size
// of the development CA made by init (2048 or 3072; default 4096). It is
// for test suites that run init many times: an RSA-4096 key costs about
// half a second of CPU each time. Production CAs are not made by init.
const devCABitsEnv = "ANPRSEC_DEV_CA_BITS"

// init adds the development CA to `anprsec init`: an RSA-4096 CA at
// pki.ca_cert / pki.ca_key when neither exists. When both exist it is
// loaded, so that init refuses a CA key readable by group or others, a key
// that is not the certificate's, or a certificate that is not a CA; when
// only one exists init fails rather than replace a CA that certificates
// may already chain to.
func init() {
	initSteps = append(initSteps, func(a *app, made, have func(what, path string)) error {
		certPath, keyPath := a.cfg.Path(a.cfg.PKI.CACert), a.cfg.Path(a.cfg.PKI.CAKey)
		bits := pki.DevCAKeyBits
		if v := os.Getenv(devCABitsEnv); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want 2048, 3072 or 4096", devCABitsEnv, v)
			}
			bits = n
		}
		created, err := pki.CreateDevCABits(certPath, keyPath, time.Now(), bits)
		if err != nil {
			return err
		}
		if created {
			made("dev CA", certPath)
			made("dev CA key", keyPath)
			return nil
		}
		if _, err := pki.LoadCA(certPath, keyPath); err != nil {
			return err
		}
		have("CA", certPath)
		have("CA key", keyPath)
		return nil
	})
}
