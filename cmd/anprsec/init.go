package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"anprsec/config"
	"anprsec/istat"
	"anprsec/jobs"
	"anprsec/secret"
	"anprsec/store"
)

// dropLayout is the folder tree of the drops (docs/rules.md#drops-and-receipts).
var dropLayout = []string{
	"censimento", "prefetture", "comuni", "produttore/ordini", "sicurezza/report", "crl",
}

func (a *app) initCmd() *cobra.Command {
	var ppp, hsmURI string
	cmd := &cobra.Command{
		Use:   "init [--prefettura PPP] [--hsm PKCS11-URI]",
		Short: "Set up a working directory: config, data dir, keys, drop folders (idempotent)",
		Long: `init prepares the working directory for a first run on embedded defaults:
a commented anprsec.yaml (if none), the data dir, the store, backup and seal
keys (32 random bytes each, mode 0600), the mail spool and the local drop
folders. Running it again creates only what is missing and never replaces a
key or the config. It prints what it made.

Keys are made once, with their store: beside a data dir that already holds
a store, a missing key is never made again (a new key would not open what
the old one encrypted or sealed): init stops, names the missing file and
where it is expected, and creates nothing. It also writes the seal check
value (a value sealed with the seal key, which every command using the seal
key opens first).

With --prefettura PPP it also makes, once, a development OpenPGP key of
prefettura PPP, to sign trial manifests (anprsec gen consegne): its secret
part in the keys folder (prefettura-PPP.sec.asc, mode 0600), its public part
where keys.prefetture expects it (PPP.asc). It is refused when either
exists: a key is never replaced.

With --hsm URI (an RFC 7512 PKCS#11 URI: pkcs11:token=LABEL;object=LABEL?
module-path=LIB&pin-source=file:PINFILE) the CA key is made inside that
token, never outside (sensitive, not extractable), and pki.ca_key in the
config is set to the URI; the CA certificate is signed in the token. A key
already in the token (made by the HSM's tools) is used as it is. Refused
when a CA with a file key exists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			made := func(what, p string) { fmt.Fprintf(out, "created %-12s %s\n", what, relPath(p)) }
			have := func(what, p string) { fmt.Fprintf(out, "exists  %-12s %s\n", what, relPath(p)) }

			abs, err := filepath.Abs(a.cfgPath)
			if err != nil {
				return err
			}
			// The config that will be (the file, or the defaults it is about
			// to be written with), checked before anything is created.
			cfg, err := config.Load(abs, false)
			if err != nil {
				return err
			}
			if err := refuseMissingKeys(cfg); err != nil {
				return err
			}
			if _, err := os.Stat(abs); os.IsNotExist(err) {
				if err := os.WriteFile(abs, config.DefaultYAML, 0o640); err != nil {
					return err
				}
				made("config", abs)
			} else {
				have("config", abs)
			}
			a.cfg = cfg
			if hsmURI != "" {
				changed, err := a.useHSM(abs, hsmURI)
				if err != nil {
					return err
				}
				if cfg = a.cfg; changed {
					made("pki.ca_key", abs)
				}
			}
			makePrefettura, err := a.prefetturaStep(ppp, cmd.Flags().Changed("prefettura"))
			if err != nil {
				return err
			}

			if err := makeInitDirs(cfg, made); err != nil {
				return err
			}
			if err := makeInitKeys(cfg, made, have); err != nil {
				return err
			}
			for _, step := range initSteps {
				if err := step(a, made, have); err != nil {
					return err
				}
			}
			if err := makePrefettura(made); err != nil {
				return err
			}
			if cfg.Drop.Type == "sftp" {
				fmt.Fprintln(out, "drop over SFTP: nothing created on the server; \"anprsec drop prepara\" creates the input folders there, \"anprsec drop verifica\" checks it")
			}
			return a.initStore(made, have)
		},
	}
	cmd.Flags().StringVar(&ppp, "prefettura", "", "also make a development OpenPGP key of prefettura PPP (3 digits, e.g. 058), once")
	cmd.Flags().StringVar(&hsmURI, "hsm", "", "make the CA key inside the HSM token of this PKCS#11 URI and set pki.ca_key to it")
	return cmd
}

// initStore opens the store once, which creates it and checks the store
// key, and checks that the seal key opens what is sealed in it, writing
// the seal check value of a new store.
func (a *app) initStore(made, have func(what, p string)) error {
	st, err := a.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	sealer, err := a.openSealer()
	if err != nil {
		return err
	}
	written, err := a.checkSealKey(st, sealer)
	if err != nil {
		return err
	}
	if written {
		made("seal check", a.cfg.Path(a.cfg.DataDir))
	} else {
		have("seal check", a.cfg.Path(a.cfg.DataDir))
	}
	return st.Close()
}

// initKey is a key file init makes.
type initKey struct {
	what, setting, path string
	guards              string // what a new key would not open
}

// initKeys are the key files init makes, in order.
func initKeys(cfg *config.Config) []initKey {
	return []initKey{
		{"store key", "keys.store", cfg.Path(cfg.Keys.Store), "the store, encrypted with it"},
		{"backup key", "keys.backup", cfg.Path(cfg.Keys.Backup), "the backups made so far"},
		{"seal key", "keys.seal", cfg.Path(cfg.Keys.Seal), "the PKCS#12 files, passwords and card secrets sealed in the store"},
	}
}

// refuseMissingKeys stops init when the data dir already holds a store
// and a key file is missing: a key is made only with its store, never
// beside data that the old key encrypted or sealed (docs/rules.md#secrets).
// The error names every missing file and where it is expected.
func refuseMissingKeys(cfg *config.Config) error {
	dir := cfg.Path(cfg.DataDir)
	if err := store.StoreRotationPending(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil // a new store: its keys are made with it
	}
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	var missing []string
	for _, k := range initKeys(cfg) {
		if _, err := os.Lstat(k.path); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, fmt.Sprintf("the %s (%s) is missing: expected at %s; a new one would not open %s", k.what, k.setting, k.path, k.guards))
		} else if err != nil {
			return fmt.Errorf("%s %s: %w", k.what, k.path, err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("the data dir %s already holds a store, and %s.\nPut the key file back where it is expected (from the copy kept apart from this machine), then run init again; init makes keys only for a new store, and nothing was created",
		dir, strings.Join(missing, ";\n"))
}

// initSteps are the set-up steps of later parts (development CA, OpenPGP
// keys): each creates what is missing and reports it through made/have.
var initSteps []func(a *app, made, have func(what, path string)) error

// makeInitDirs makes the working directory's folders that are missing:
// data, keys, pki, mail spool and, for a local drop, its folders.
func makeInitDirs(cfg *config.Config, made func(what, path string)) error {
	dirs := []struct {
		what, path string
		mode       os.FileMode
	}{
		{"data dir", cfg.Path(cfg.DataDir), 0o700},
		{"keys", filepath.Dir(cfg.Path(cfg.Keys.Store)), 0o700},
		{"holder keys", cfg.Path(cfg.Keys.Holders), 0o700},
		{"prefetture keys", cfg.Path(cfg.Keys.Prefetture), 0o700},
		{"pki", filepath.Dir(cfg.Path(cfg.PKI.CACert)), 0o700},
		{"mail spool", cfg.Path(cfg.Mail.Spool), 0o750},
	}
	if cfg.Drop.Type == "local" {
		for _, d := range dropLayout {
			dirs = append(dirs, struct {
				what, path string
				mode       os.FileMode
			}{"drop", filepath.Join(cfg.Path(cfg.Drop.Local), d), 0o750})
		}
	}
	for _, d := range dirs {
		if d.path == "" {
			continue
		}
		if _, err := os.Stat(d.path); err == nil {
			continue
		}
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return err
		}
		made(d.what, d.path)
	}
	if cfg.Drop.Type == "local" {
		return prepareLocalConsegne(cfg.Path(cfg.Drop.Local), made)
	}
	return nil
}

// makeInitKeys makes the symmetric key files that are missing (once: a key
// beside an existing store was refused before) and checks the others'
// permissions.
func makeInitKeys(cfg *config.Config, made, have func(what, path string)) error {
	for _, k := range initKeys(cfg) {
		created, err := secret.CreateKey(k.path)
		if err != nil {
			return fmt.Errorf("%s %s: %w", k.what, k.path, err)
		}
		if created {
			made(k.what, k.path)
			continue
		}
		if err := secret.CheckFile(k.path); err != nil {
			return err
		}
		have(k.what, k.path)
	}
	return nil
}

// prepareLocalConsegne makes every prefettura's consegne/ folder in a local
// drop (the other input folders are in dropLayout; a comune's richieste/ is
// made by `anprsec drop prepara` once it is censused), reporting them in
// one line.
func prepareLocalConsegne(root string, made func(what, path string)) error {
	n := 0
	for _, ppp := range istat.Default().Prefetture() {
		dir := filepath.Join(root, filepath.FromSlash(jobs.ConsegneDir(ppp)))
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		made("drop", fmt.Sprintf("%s (%d prefetture)", filepath.Join(root, "prefetture", "<PPP>", "consegne"), n))
	}
	return nil
}
