package main

import (
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"

	"anprsec/config"
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
			{"chiave OpenPGP del servizio", k.Service, "anprsec servizio - sviluppo", from, true},
			{"chiave OpenPGP del produttore", k.Producer, "Produttore smart card - sviluppo", "produttore@anprsec.invalid", false},
			{"chiave OpenPGP del gateway", k.Gateway, "Gateway di posta - sviluppo", "gateway@anprsec.invalid", false},
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
					return fmt.Errorf("%s esiste ma %s no: mettervi la chiave pubblica corrispondente", secPath, p)
				}
			}
			if secPath != "" {
				if err := writeNew(secPath, sec, 0o600); err != nil {
					return err
				}
				made(dev.what+" (segreta, sviluppo)", secPath)
			}
			if pubPath != "" {
				if err := writeNew(pubPath, pub, 0o644); err != nil && !(dev.secret && errors.Is(err, os.ErrExist)) {
					return err
				}
				made(dev.what+" (pubblica)", pubPath)
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

// prefetturaKey is the development key of a prefettura that
// `init --prefettura PPP` makes.
type prefetturaKey struct {
	ppp      string
	sec, pub string // paths of its secret part and of its public part
}

// prefetturaDevKey is where `init --prefettura PPP` keeps the secret part of
// the development key of prefettura ppp: the keys folder.
func prefetturaDevKey(cfg *config.Config, ppp string) string {
	return filepath.Join(filepath.Dir(cfg.Path(cfg.Keys.Store)), "prefettura-"+ppp+".sec.asc")
}

// checkPrefettura refuses a code that is not a prefettura's of the table
// of comuni.
func (a *app) checkPrefettura(ppp string) error {
	comuni, err := a.comuni()
	if err != nil {
		return err
	}
	for _, p := range comuni.Prefetture() {
		if p == ppp {
			return nil
		}
	}
	return fmt.Errorf("prefettura %q: non è il codice di una prefettura (3 cifre, quelle della provincia, per esempio 058 per Roma)", ppp)
}

// newPrefetturaKey checks that the development key of prefettura ppp can be
// made: ppp is a prefettura, keys.prefetture is set, and neither part of
// the key exists (a key is never replaced, a real one put in place least
// of all).
func (a *app) newPrefetturaKey(ppp string) (*prefetturaKey, error) {
	if err := a.checkPrefettura(ppp); err != nil {
		return nil, err
	}
	dir := a.cfg.Path(a.cfg.Keys.Prefetture)
	if dir == "" {
		return nil, errors.New("keys.prefetture è vuoto: non c'è dove mettere la chiave pubblica della prefettura")
	}
	k := &prefetturaKey{ppp: ppp, sec: prefetturaDevKey(a.cfg, ppp), pub: filepath.Join(dir, ppp+".asc")}
	for _, p := range []string{k.sec, k.pub} {
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("prefettura %s: %s esiste: una chiave non viene mai sostituita (rimuoverla prima per creare una nuova chiave di sviluppo)", ppp, relPath(p))
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return k, nil
}

// prefetturaStep is the step of `init --prefettura PPP` (asked: the flag
// is given): the checks now, before init makes anything, and the step that
// makes the key once the keys folders are there; a step doing nothing when
// not asked.
func (a *app) prefetturaStep(ppp string, asked bool) (func(made func(what, path string)) error, error) {
	if !asked {
		return func(func(what, path string)) error { return nil }, nil
	}
	k, err := a.newPrefetturaKey(ppp)
	if err != nil {
		return nil, err
	}
	return k.make, nil
}

// make writes the key pair: the secret part (mode 0600) first, then the
// public part.
func (k *prefetturaKey) make(made func(what, path string)) error {
	pub, sec, err := pgp.Generate("Prefettura "+k.ppp+" - sviluppo", "prefettura-"+k.ppp+"@anprsec.invalid")
	if err != nil {
		return err
	}
	if err := writeNew(k.sec, sec, 0o600); err != nil {
		return err
	}
	made("chiave OpenPGP della prefettura "+k.ppp+" (segreta, sviluppo)", k.sec)
	if err := writeNew(k.pub, pub, 0o644); err != nil {
		return err
	}
	made("chiave OpenPGP della prefettura "+k.ppp+" (pubblica)", k.pub)
	return nil
}
