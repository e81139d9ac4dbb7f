package main

import (
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"

	"anprsec/pki/pgp"
)

// init adds the development OpenPGP keys (docs/rules.md#secrets) to `anprsec init`:
//
//	keys.service    service.sec.asc (+ service.pub.asc, to give to the producer and the holders)
//	keys.producer   producer.pub.asc (+ producer.sec.asc: the dev stand-in reads the orders with it)
//	keys.gateway    gateway.pub.asc  (+ gateway.sec.asc)
//
// (the folders keys.holders and keys.prefetture are made with the others).
// A key that exists is loaded instead (so a secret key readable by others,
// or a file that is not a key, stops init); a real producer or gateway key
// put in place before init is never replaced.
func init() {
	initSteps = append(initSteps, func(a *app, made, have func(what, path string)) error {
		k := a.cfg.Keys
		from := "sicurezza@anprsec.invalid"
		if addr, err := mail.ParseAddress(a.cfg.Mail.From); err == nil {
			from = addr.Address
		}
		for _, dev := range []struct {
			what, path, name, email string
			secret                  bool // path is the secret key
		}{
			{"service OpenPGP key", k.Service, "anprsec servizio - sviluppo", from, true},
			{"producer OpenPGP key", k.Producer, "Produttore smart card - sviluppo", "produttore@anprsec.invalid", false},
			{"gateway OpenPGP key", k.Gateway, "Gateway di posta - sviluppo", "gateway@anprsec.invalid", false},
		} {
			p := a.cfg.Path(dev.path)
			if p == "" {
				continue
			}
			if _, err := os.Stat(p); err == nil {
				var err error
				if dev.secret {
					_, err = pgp.ReadSecretFile(p)
				} else {
					_, err = pgp.ReadPublicFile(p)
				}
				if err != nil {
					return err
				}
				have(dev.what, p)
				continue
			}
			pub, sec, err := pgp.Generate(dev.name, dev.email)
			if err != nil {
				return err
			}
			secPath, pubPath := p, p
			if dev.secret {
				pubPath = swapSuffix(p, ".sec.asc", ".pub.asc")
			} else {
				secPath = swapSuffix(p, ".pub.asc", ".sec.asc")
			}
			if secPath != p && secPath != "" {
				if _, err := os.Stat(secPath); err == nil {
					return fmt.Errorf("%s exists but %s does not: put the matching public key there", secPath, p)
				}
			}
			if secPath != "" {
				if err := writeNew(secPath, sec, 0o600); err != nil {
					return err
				}
				made(dev.what+" (secret, dev)", secPath)
			}
			if pubPath != "" {
				if err := writeNew(pubPath, pub, 0o644); err != nil && !(dev.secret && errors.Is(err, os.ErrExist)) {
					return err
				}
				made(dev.what+" (public)", pubPath)
			}
		}
		return nil
	})
}

// swapSuffix replaces suffix old of p with cur; "" when p has no such suffix.
func swapSuffix(p, old, cur string) string {
	if !strings.HasSuffix(p, old) {
		return ""
	}
	return strings.TrimSuffix(p, old) + cur
}

// writeNew writes a file that must not exist yet, atomically, with mode perm.
func writeNew(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(tmp)
}
