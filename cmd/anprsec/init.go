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
		Use:   "init [--prefettura PPP] [--hsm URI-PKCS11]",
		Short: "Prepara una cartella di lavoro: configurazione, cartella dati, chiavi, cartelle del drop (ripetibile)",
		Long: `init prepara la cartella di lavoro per un primo avvio con i valori predefiniti:
un anprsec.yaml commentato (se manca), la cartella dei dati, le chiavi
dell'archivio, di backup e di sigillo (32 byte casuali ciascuna, permessi
0600), la coda della posta e le cartelle del drop locale. Rieseguito, crea
solo ciò che manca e non sostituisce mai una chiave o la configurazione.
Stampa ciò che ha creato.

Le chiavi si creano una volta sola, con il loro archivio: accanto a una
cartella dati che contiene già un archivio, una chiave mancante non viene mai
ricreata (una chiave nuova non aprirebbe ciò che la vecchia ha cifrato o
sigillato): init si ferma, indica il file mancante e dove è atteso, e non
crea nulla. Scrive anche il valore di controllo del sigillo (un valore
sigillato con la chiave di sigillo, che ogni comando che la usa apre per
primo).

Con --prefettura PPP (PPP: il codice a 3 cifre della provincia, per esempio
058 per Roma) crea anche, una volta sola, una chiave OpenPGP di sviluppo della
prefettura PPP, per firmare distinte di prova (anprsec gen consegne): la parte
segreta nella cartella delle chiavi (prefettura-PPP.sec.asc, permessi 0600),
la parte pubblica dove la attende keys.prefetture (PPP.asc). È rifiutato se
una delle due esiste: una chiave non viene mai sostituita.

Con --hsm URI (un URI PKCS#11 RFC 7512: pkcs11:token=ETICHETTA;object=ETICHETTA?
module-path=LIB&pin-source=file:FILEPIN) la chiave della CA è creata dentro il
token, mai fuori (sensibile, non estraibile), e pki.ca_key nella
configurazione è impostato all'URI; il certificato della CA è firmato nel
token. Una chiave già presente nel token (creata con gli strumenti dell'HSM) è
usata così com'è. Rifiutato se esiste già una CA con la chiave in un file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			made := func(what, p string) { fmt.Fprintf(out, "creato  %-12s %s\n", what, relPath(p)) }
			have := func(what, p string) { fmt.Fprintf(out, "esiste  %-12s %s\n", what, relPath(p)) }

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
				made("configurazione", abs)
			} else {
				have("configurazione", abs)
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
				fmt.Fprintln(out, "drop via SFTP: nulla è stato creato sul server; \"anprsec drop prepara\" vi crea le cartelle di ingresso, \"anprsec drop verifica\" lo verifica")
			}
			return a.initStore(made, have)
		},
	}
	cmd.Flags().StringVar(&ppp, "prefettura", "", "crea anche, una volta sola, una chiave OpenPGP di sviluppo della prefettura `PPP` (3 cifre, per esempio 058)")
	cmd.Flags().StringVar(&hsmURI, "hsm", "", "crea la chiave della CA nel token HSM di questo `URI` PKCS#11 e vi imposta pki.ca_key")
	return cmd
}

// initStore opens the store once, which creates it and checks the store
// key, and checks that the seal key opens what is sealed in it, writing
// the seal check value of a new store.
func (a *app) initStore(made, have func(what, p string)) error {
	if a.cfg.Control.Socket != "" && a.daemonAnswers() {
		// The running daemon holds the store, made and checked at its
		// start: what init adds beside it (a prefettura's key) needs no
		// store.
		have("archivio (in uso dal daemon)", a.cfg.Path(a.cfg.DataDir))
		return nil
	}
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
		made("controllo del sigillo", a.cfg.Path(a.cfg.DataDir))
	} else {
		have("controllo del sigillo", a.cfg.Path(a.cfg.DataDir))
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
		{"chiave dell'archivio", "keys.store", cfg.Path(cfg.Keys.Store), "l'archivio, cifrato con essa"},
		{"chiave di backup", "keys.backup", cfg.Path(cfg.Keys.Backup), "i backup fatti finora"},
		{"chiave di sigillo", "keys.seal", cfg.Path(cfg.Keys.Seal), "i file PKCS#12, le password e i segreti delle smart card sigillati nell'archivio"},
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
		return fmt.Errorf("cartella dei dati %s: %w", dir, err)
	}
	var missing []string
	for _, k := range initKeys(cfg) {
		if _, err := os.Lstat(k.path); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, fmt.Sprintf("manca la %s (%s): attesa in %s; una nuova non aprirebbe %s", k.what, k.setting, k.path, k.guards))
		} else if err != nil {
			return fmt.Errorf("%s %s: %w", k.what, k.path, err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("la cartella dei dati %s contiene già un archivio, e %s.\nRimettere il file della chiave dove è atteso (dalla copia custodita fuori da questa macchina), poi rieseguire init; init crea chiavi solo per un archivio nuovo, e non ha creato nulla",
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
		{"cartella dati", cfg.Path(cfg.DataDir), 0o700},
		{"chiavi", filepath.Dir(cfg.Path(cfg.Keys.Store)), 0o700},
		{"chiavi dei titolari", cfg.Path(cfg.Keys.Holders), 0o700},
		{"chiavi delle prefetture", cfg.Path(cfg.Keys.Prefetture), 0o700},
		{"pki", filepath.Dir(cfg.Path(cfg.PKI.CACert)), 0o700},
		{"coda della posta", cfg.Path(cfg.Mail.Spool), 0o750},
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
