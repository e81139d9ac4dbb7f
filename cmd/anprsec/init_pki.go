package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"anprsec/config"
	"anprsec/pki"
	"anprsec/pki/hsm"
)

// devCABitsEnv names the environment variable that lowers the RSA key size
// of the CA made by init (2048 or 3072; default 4096), in a file or in an
// HSM. It is for test suites that run init many times: an RSA-4096 key
// costs about half a second of CPU each time (seconds in SoftHSM2).
const devCABitsEnv = "ANPRSEC_DEV_CA_BITS"

// init adds the CA to `anprsec init`. With pki.ca_key a file: an RSA-4096
// development CA at pki.ca_cert / pki.ca_key when neither exists. When
// both exist it is loaded, so that init refuses a CA key readable by group
// or others, a key that is not the certificate's, or a certificate that is
// not a CA; when only one exists init fails rather than replace a CA that
// certificates may already chain to. With pki.ca_key a PKCS#11 URI (or
// `init --hsm URI`): the key is made inside the token, never outside, and
// the certificate signed there (pki.CreateHSMCA), with the same refusals.
func init() {
	initSteps = append(initSteps, func(a *app, made, have func(what, path string)) error {
		bits := pki.DevCAKeyBits
		if v := os.Getenv(devCABitsEnv); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: valori ammessi 2048, 3072 o 4096", devCABitsEnv, v)
			}
			bits = n
		}
		certPath := a.cfg.Path(a.cfg.PKI.CACert)
		if a.cfg.CAKeyInHSM() {
			return initHSMCA(a, certPath, bits, made, have)
		}
		keyPath := a.cfg.CAKey()
		created, err := pki.CreateDevCABits(certPath, keyPath, time.Now(), bits)
		if err != nil {
			return err
		}
		if created {
			made("CA di sviluppo", certPath)
			made("chiave della CA di sviluppo", keyPath)
			return nil
		}
		if _, err := pki.LoadCA(certPath, keyPath); err != nil {
			return err
		}
		have("CA", certPath)
		have("chiave della CA", keyPath)
		return nil
	})
}

func initHSMCA(a *app, certPath string, bits int, made, have func(what, path string)) error {
	if !hsm.Available {
		return fmt.Errorf("pki.ca_key è un URI PKCS#11: %w", hsm.ErrNoCgo)
	}
	uri := a.cfg.CAKey()
	keyMade, certMade, err := pki.CreateHSMCA(certPath, uri, time.Now(), bits)
	if err != nil {
		return err
	}
	if keyMade {
		made("chiave della CA (HSM)", uri)
	} else {
		have("chiave della CA (HSM)", uri)
	}
	if certMade {
		made("CA", certPath)
	} else {
		have("CA", certPath)
	}
	return nil
}

// caKeyLine is the pki.ca_key line of a config file, under "pki:".
var caKeyLine = regexp.MustCompile(`(?m)^(pki:\n(?:(?:[ \t]+.*|[ \t]*#.*|)\n)*?)([ \t]+)ca_key:[^\n]*`)

// useHSM points pki.ca_key of the config file at uri (`init --hsm URI`),
// before the CA is made. It refuses when the config names another HSM key,
// or when a CA with a file key exists: moving it into an HSM would be a new
// CA. It reports whether it changed the file.
func (a *app) useHSM(cfgPath string, uri string) (bool, error) {
	u, err := hsm.ParseURI(uri)
	if err != nil {
		return false, fmt.Errorf("--hsm: %w", err)
	}
	if !hsm.Available {
		return false, fmt.Errorf("--hsm: %w", hsm.ErrNoCgo)
	}
	if a.cfg.CAKeyInHSM() {
		if strings.TrimSpace(a.cfg.PKI.CAKey) != u.String() {
			return false, fmt.Errorf("--hsm %s: pki.ca_key in %s è già un'altra chiave HSM (%s)", uri, cfgPath, a.cfg.PKI.CAKey)
		}
		return false, nil
	}
	if _, err := os.Stat(a.cfg.Path(a.cfg.PKI.CACert)); err == nil {
		return false, fmt.Errorf("--hsm: esiste già una CA (%s) con la chiave in un file (%s): una CA nell'HSM sarebbe una CA nuova, "+
			"i cui certificati non sarebbero riconosciuti da chi si fida della vecchia; rimuovere entrambi per ricominciare", a.cfg.PKI.CACert, a.cfg.PKI.CAKey)
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return false, err
	}
	m := caKeyLine.FindSubmatchIndex(data)
	if m == nil {
		return false, fmt.Errorf("--hsm: nessuna riga pki.ca_key in %s: impostarvi pki.ca_key: %q", cfgPath, uri)
	}
	line := string(data[m[4]:m[5]]) + "ca_key: " + strconv.Quote(u.String())
	out := append(append(append([]byte{}, data[:m[4]]...), line...), data[m[1]:]...)
	fi, err := os.Stat(cfgPath)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(cfgPath, out, fi.Mode().Perm()); err != nil {
		return false, err
	}
	cfg, err := config.Load(cfgPath, true)
	if err != nil {
		return false, err
	}
	if cfg.PKI.CAKey != u.String() {
		return false, fmt.Errorf("--hsm: %s: dopo la modifica pki.ca_key vale %q", cfgPath, cfg.PKI.CAKey)
	}
	a.cfg = cfg
	return true, nil
}

// checkHSM checks a PKCS#11 URI in pki.ca_key before any job runs: it must
// parse, its PIN file must be private, and this build must have cgo.
func (a *app) checkHSM() error {
	u, err := hsm.ParseURI(a.cfg.PKI.CAKey)
	if err != nil {
		return fmt.Errorf("pki.ca_key: %w", err)
	}
	if !hsm.Available {
		return fmt.Errorf("pki.ca_key è un URI PKCS#11 (%s): %w", u, hsm.ErrNoCgo)
	}
	if _, err := u.PIN(); err != nil {
		return fmt.Errorf("pki.ca_key: %w", err)
	}
	return nil
}
