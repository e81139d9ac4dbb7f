package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"anprsec/config"
	"anprsec/secret"
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
			if _, err := os.Stat(abs); os.IsNotExist(err) {
				if err := os.WriteFile(abs, config.DefaultYAML, 0o640); err != nil {
					return err
				}
				made("config", abs)
			} else {
				have("config", abs)
			}
			cfg, err := config.Load(abs, true)
			if err != nil {
				return err
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
			for _, k := range []struct{ what, path string }{
				{"store key", cfg.Path(cfg.Keys.Store)},
				{"backup key", cfg.Path(cfg.Keys.Backup)},
				{"seal key", cfg.Path(cfg.Keys.Seal)},
			} {
				created, err := secret.CreateKey(k.path)
				if err != nil {
					return fmt.Errorf("%s %s: %w", k.what, k.path, err)
				}
				if created {
					made(k.what, k.path)
				} else {
					if err := secret.CheckFile(k.path); err != nil {
						return err
					}
					have(k.what, k.path)
				}
			}
			for _, step := range initSteps {
				if err := step(a, made, have); err != nil {
					return err
				}
			}
			if err := makePrefettura(made); err != nil {
				return err
			}
			// Opening the store once creates it and checks the key.
			st, err := a.openStore()
			if err != nil {
				return err
			}
			return st.Close()
		},
	}
	cmd.Flags().StringVar(&ppp, "prefettura", "", "also make a development OpenPGP key of prefettura PPP (3 digits, e.g. 058), once")
	cmd.Flags().StringVar(&hsmURI, "hsm", "", "make the CA key inside the HSM token of this PKCS#11 URI and set pki.ca_key to it")
	return cmd
}

// initSteps are the set-up steps of later parts (development CA, OpenPGP
// keys): each creates what is missing and reports it through made/have.
var initSteps []func(a *app, made, have func(what, path string)) error
