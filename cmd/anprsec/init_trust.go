package main

import (
	"os"
	"path/filepath"

	"anprsec/trust/cades"
)

// init adds the development card CA to `anprsec init`: when trust.card_ca
// names a file that does not exist, a development CA is made in its folder
// (card-ca.pem and card-ca.key, mode 0600), so that `anprsec gen richieste`
// can sign sample requests with development card certificates. It is never
// replaced; in production trust.card_ca is the real card CA.
func init() {
	initSteps = append(initSteps, func(a *app, made, have func(what, path string)) error {
		anchor := a.cfg.Path(a.cfg.Trust.CardCA)
		if anchor == "" {
			return nil
		}
		if _, err := os.Stat(anchor); err == nil {
			have("CA delle smart card", anchor)
			return nil
		}
		dir := filepath.Dir(anchor)
		if filepath.Base(anchor) != cades.DevCACertFile {
			return nil // a production anchor that is missing: the jobs say so
		}
		if _, err := cades.NewDevCA(dir); err != nil {
			return err
		}
		made("CA delle smart card", anchor)
		return nil
	})
}
