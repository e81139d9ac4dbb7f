package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/spf13/cobra"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/ingest/consegne"
	"anprsec/istat"
	"anprsec/pki/pgp"
	"anprsec/store"
)

func init() { genSubcommands = append(genSubcommands, (*app).genConsegneCmd) }

// genConsegneCmd writes a trial delivery manifest of a prefettura, signed
// with its development key (docs/rules.md#manifests).
func (a *app) genConsegneCmd() *cobra.Command {
	var opt manifestOptions
	var outDir string
	var tutte bool
	c := &cobra.Command{
		Use:   "consegne (--prefettura PPP | --tutte)",
		Short: "Scrive una distinta di consegna firmata di una prefettura: le smart card IN PRODUZIONE dei suoi comuni",
		Long: `consegne scrive una distinta di consegna della prefettura PPP (il codice a 3
cifre della provincia, per esempio 058), come la invierebbe la prefettura, da
ciò che contiene l'archivio: una riga per ogni smart card IN PRODUZIONE dei
comuni della provincia (seriale, titolare, data di oggi, ritirata dall'ASC
del comune, o da un APL se manca l'ASC), e la sua firma OpenPGP staccata,
fatta con la chiave di sviluppo della prefettura (anprsec init --prefettura
PPP) o con la chiave segreta di --firma-chiave.

Scrive <nome>.csv e <nome>.csv.asc nel drop, in prefetture/<PPP>/consegne/
(li legge ingest-consegne), o nella cartella di -o. --errori N aggiunge N
righe che devono essere rifiutate, alternando un seriale sconosciuto
(SERIALE_SCONOSCIUTO) e una smart card di un altro titolare
(TITOLARE_DIVERSO), per provare le ricevute. Un file esistente non viene mai
sostituito. Con il daemon in esecuzione il comando passa per il suo socket
di controllo.

--tutte scrive in una sola esecuzione la distinta di ogni prefettura che ha
smart card IN PRODUZIONE nei suoi comuni, ciascuna firmata con la chiave di
sviluppo della sua prefettura (anprsec init --prefettura PPP).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tutte {
				if opt.ppp != "" || opt.wrong != 0 || opt.keyFile != "" || opt.name != "" {
					return errors.New("--tutte va senza --prefettura, --errori, --firma-chiave e --nome")
				}
				return a.genAllConsegne(cmd, outDir)
			}
			if opt.ppp == "" {
				return errors.New("manca --prefettura (o --tutte)")
			}
			return a.genConsegne(cmd, opt, outDir)
		},
	}
	c.Flags().BoolVar(&tutte, "tutte", false, "scrive la distinta di ogni prefettura con smart card IN PRODUZIONE, ciascuna firmata con la sua chiave di sviluppo (al posto di --prefettura)")
	c.Flags().StringVar(&opt.ppp, "prefettura", "", "`codice` della prefettura (3 cifre, per esempio 058) (obbligatoria)")
	c.Flags().IntVar(&opt.wrong, "errori", 0, "`numero` di righe volutamente sbagliate da aggiungere")
	c.Flags().StringVar(&opt.keyFile, "firma-chiave", "", "`file` della chiave OpenPGP segreta che firma (se assente: la chiave di sviluppo di init --prefettura)")
	c.Flags().StringVar(&opt.name, "nome", "", "`nome` del file senza .csv (se assente: consegne-<PPP>-<data>-<ora>)")
	c.Flags().StringVarP(&outDir, "out", "o", "", "`cartella` in cui scrivere (se assente: prefetture/<PPP>/consegne/ nel drop)")
	return c
}

type manifestOptions struct {
	ppp, keyFile, name string
	wrong              int
}

// manifestRow is one row of a generated manifest; expect is the code the
// receipt must give a deliberately wrong row ("" for a right one).
type manifestRow struct {
	istat, serial, cf, date, takenBy string
	expect, why                      string
}

func (a *app) genConsegne(cmd *cobra.Command, opt manifestOptions, outDir string) error {
	if opt.wrong < 0 {
		return fmt.Errorf("--errori %d: non è un numero di righe", opt.wrong)
	}
	if err := a.checkPrefettura(opt.ppp); err != nil {
		return err
	}
	signer, keyFile, err := a.manifestSigner(opt)
	if err != nil {
		return err
	}
	rows, err := a.manifestRows(opt)
	if err != nil {
		return err
	}
	data := manifestCSV(rows)
	sig, err := pgp.SignDetached(data, signer)
	if err != nil {
		return err
	}
	name := opt.name
	if name == "" {
		name = "consegne-" + opt.ppp + "-" + time.Now().In(a.loc()).Format("20060102-150405")
	}
	name = strings.TrimSuffix(name, ".csv") + ".csv"
	var where string
	if outDir != "" {
		where, err = a.writeManifestFiles(filepath.Join(outDir, name), data, sig)
	} else {
		where, err = a.dropManifest(cmd.Context(), path.Join("prefetture", opt.ppp, "consegne", name), data, sig)
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s: %d righe (%d da consegnare, %d sbagliate), firmato con %s (%s)\n", where, len(rows), len(rows)-opt.wrong, opt.wrong, relPath(keyFile), pgp.Fingerprint(signer))
	fmt.Fprintf(out, "%s%s: firma staccata\n", where, consegne.SignatureSuffix)
	for i, r := range rows {
		if r.expect != "" {
			fmt.Fprintf(out, "riga %d: %s, atteso %s\n", i+2, r.why, r.expect)
		}
	}
	return nil
}

// genAllConsegne is gen consegne --tutte: the manifest of every prefettura
// with cards IN PRODUZIONE, from one pass over the cards, each signed with
// its prefettura's development key.
func (a *app) genAllConsegne(cmd *cobra.Command, outDir string) error {
	comuni, err := a.comuni()
	if err != nil {
		return err
	}
	st, err := a.openStore()
	if err != nil {
		return err
	}
	today := time.Now().In(a.loc()).Format("02/01/2006")
	var by map[string][]manifestRow
	err = st.View(func(tx *store.Tx) error {
		by, err = deliverableRowsBy(tx, comuni, func(string) bool { return true }, today)
		return err
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if len(by) == 0 {
		return errors.New("nessuna smart card IN PRODUZIONE da consegnare")
	}
	stamp := time.Now().In(a.loc()).Format("20060102-150405")
	for _, ppp := range slices.Sorted(maps.Keys(by)) {
		signer, keyFile, err := a.manifestSigner(manifestOptions{ppp: ppp})
		if err != nil {
			return err
		}
		data := manifestCSV(by[ppp])
		sig, err := pgp.SignDetached(data, signer)
		if err != nil {
			return err
		}
		name := "consegne-" + ppp + "-" + stamp + ".csv"
		var where string
		if outDir != "" {
			where, err = a.writeManifestFiles(filepath.Join(outDir, ppp, name), data, sig)
		} else {
			where, err = a.dropManifest(cmd.Context(), path.Join("prefetture", ppp, "consegne", name), data, sig)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: %d righe, firmato con %s\n", where, len(by[ppp]), relPath(keyFile))
	}
	return nil
}

// manifestSigner reads the secret key that signs the manifest: the one of
// --firma-chiave, else the prefettura's development key; it returns the
// key and its file.
func (a *app) manifestSigner(opt manifestOptions) (*openpgp.Entity, string, error) {
	keyFile := opt.keyFile
	if keyFile != "" && a.daemon != nil {
		// The daemon reads no secret key a caller names: it could be one
		// of the daemon's own.
		return nil, "", errors.New("--firma-chiave: tramite il daemon si firma solo con la chiave di sviluppo della prefettura; per firmare con un'altra chiave ferma il daemon")
	}
	if keyFile == "" {
		keyFile = prefetturaDevKey(a.cfg, opt.ppp)
		if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("manca la chiave di sviluppo della prefettura %s (%s): eseguire `anprsec init --prefettura %s`, o indicare una chiave con --firma-chiave", opt.ppp, relPath(keyFile), opt.ppp)
		}
	}
	signer, err := pgp.ReadSecretFile(keyFile)
	return signer, keyFile, err
}

// manifestRows reads from the store the rows of the manifest: the right
// ones, then the deliberately wrong ones.
func (a *app) manifestRows(opt manifestOptions) ([]manifestRow, error) {
	comuni, err := a.comuni()
	if err != nil {
		return nil, err
	}
	st, err := a.openStore()
	if err != nil {
		return nil, err
	}
	today := time.Now().In(a.loc()).Format("02/01/2006")
	var rows []manifestRow
	err = st.View(func(tx *store.Tx) error {
		var err error
		if rows, err = deliverableRows(tx, comuni, opt.ppp, today); err != nil {
			return err
		}
		wrong, err := wrongRows(tx, comuni, opt.ppp, today, a.cfg.Cards.SerialPrefix, rows, opt.wrong)
		rows = append(rows, wrong...)
		return err
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err == nil && len(rows) == 0 {
		err = fmt.Errorf("prefettura %s: nessuna smart card IN PRODUZIONE nei comuni della provincia, nulla da consegnare (--errori N scrive solo righe sbagliate)", opt.ppp)
	}
	return rows, err
}

// deliverableRows lists, in comune and serial order, a right manifest row
// for each card IN PRODUZIONE of a comune of prefettura ppp whose holder
// has an utenza there and whose comune has an active ASC or APL to collect
// it.
func deliverableRows(tx *store.Tx, comuni *istat.Table, ppp, date string) ([]manifestRow, error) {
	by, err := deliverableRowsBy(tx, comuni, func(p string) bool { return p == ppp }, date)
	return by[ppp], err
}

// deliverableRowsBy is deliverableRows of every prefettura that want
// takes, in one pass over the cards, by prefettura.
func deliverableRowsBy(tx *store.Tx, comuni *istat.Table, want func(ppp string) bool, date string) (map[string][]manifestRow, error) {
	collectors := map[string]string{} // comune -> CF of its ASC, else an APL; "" none
	rows := map[string][]manifestRow{}
	err := tx.EachCardIn([]domain.CardState{domain.CardProduzione}, func(c *domain.SmartCard) error {
		ppp, ok := comuni.Prefettura(c.ISTAT)
		if !ok || !want(ppp) {
			return nil
		}
		by, seen := collectors[c.ISTAT]
		if !seen {
			var err error
			if by, err = collector(tx, c.ISTAT); err != nil {
				return err
			}
			collectors[c.ISTAT] = by
		}
		if by == "" {
			return nil
		}
		if u, err := tx.Utenza(c.ISTAT, c.CF); err != nil || u.State == domain.UtenzaCancellata {
			return nil
		}
		rows[ppp] = append(rows[ppp], manifestRow{istat: c.ISTAT, serial: c.Serial, cf: c.CF, date: date, takenBy: by})
		return nil
	})
	for _, r := range rows {
		sort.SliceStable(r, func(i, j int) bool { return r[i].istat < r[j].istat })
	}
	return rows, err
}

// collector is who collects a comune's parcels: its active ASC, else its
// first active APL; "" when it has neither.
func collector(tx *store.Tx, code string) (string, error) {
	var asc, apl string
	err := tx.UtenzeOfComune(code, func(u *domain.Utenza) error {
		switch {
		case u.State != domain.UtenzaAttiva:
		case u.Has(domain.ASC) && asc == "":
			asc = u.CF
		case u.Has(domain.APL) && apl == "":
			apl = u.CF
		}
		return nil
	})
	if asc != "" {
		return asc, err
	}
	return apl, err
}

// wrongCF is the holder of the rows with a card of another holder: a
// well-formed codice fiscale that is nobody's.
var wrongCF = "ERRATO00A01H501" + string(codfisc.CheckLetter("ERRATO00A01H501"))

// wrongRows makes n rows that must be refused, alternately a serial that
// does not exist and a right row's card with another holder (a serial
// that does not exist when there is no right row).
func wrongRows(tx *store.Tx, comuni *istat.Table, ppp, date, prefix string, good []manifestRow, n int) ([]manifestRow, error) {
	if n == 0 {
		return nil, nil
	}
	base := manifestRow{date: date}
	if len(good) > 0 {
		base = good[0]
	} else {
		var err error
		if base.istat, base.takenBy, err = someComune(tx, comuni, ppp); err != nil {
			return nil, err
		}
	}
	var rows []manifestRow
	next := int64(9999999999)
	for i := range n {
		if i%2 == 1 && len(good) > 0 {
			r := good[(i/2)%len(good)]
			r.cf, r.expect, r.why = wrongCF, "TITOLARE_DIVERSO", fmt.Sprintf("smart card %s con titolare %s, che non è il suo", r.serial, wrongCF)
			rows = append(rows, r)
			continue
		}
		r := base
		for {
			r.serial = fmt.Sprintf("%s%010d", prefix, next)
			next--
			if _, err := tx.Card(r.serial); errors.Is(err, store.ErrNotFound) {
				break
			} else if err != nil {
				return nil, err
			}
		}
		if r.cf == "" {
			r.cf = wrongCF
		}
		r.expect, r.why = "SERIALE_SCONOSCIUTO", "seriale "+r.serial+" inesistente"
		rows = append(rows, r)
	}
	return rows, nil
}

// someComune returns a censused comune of prefettura ppp and who collects
// its parcels, for wrong rows when no card is to be delivered.
func someComune(tx *store.Tx, comuni *istat.Table, ppp string) (code, by string, err error) {
	err = tx.Comuni(func(c *domain.Comune) error {
		if p, ok := comuni.Prefettura(c.ISTAT); code == "" && ok && p == ppp {
			code = c.ISTAT
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	if code == "" {
		return "", "", fmt.Errorf("prefettura %s: nessun comune della provincia è stato censito", ppp)
	}
	by, err = collector(tx, code)
	if by == "" {
		by = wrongCF
	}
	return code, by, err
}

// manifestCSV writes the rows as a manifest: UTF-8, ';'-separated, CRLF
// line ends, as a spreadsheet program saves it.
func manifestCSV(rows []manifestRow) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Comma, w.UseCRLF = ';', true
	w.Write(consegne.Columns)
	for _, r := range rows {
		w.Write([]string{r.istat, r.serial, r.cf, r.date, r.takenBy})
	}
	w.Flush()
	return b.Bytes()
}

// manifestFiles are the signature, first (so that the manifest never
// waits for it), and the manifest, of a manifest written at p.
func manifestFiles(p string, data, sig []byte) []struct {
	path string
	data []byte
} {
	return []struct {
		path string
		data []byte
	}{{p + consegne.SignatureSuffix, sig}, {p, data}}
}

// writeManifestFiles writes the manifest at p and its signature, in a
// folder of the caller (through the control socket, written by the CLI);
// it refuses to replace a file.
func (a *app) writeManifestFiles(p string, data, sig []byte) (string, error) {
	if err := a.callerFS().MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	write := a.writeNewFor(true)
	for _, f := range manifestFiles(p, data, sig) {
		if err := write(f.path, f.data, 0o644); errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("%s esiste già: non sostituito", relPath(f.path))
		} else if err != nil {
			return "", err
		}
	}
	return relPath(p), nil
}

// dropManifest writes the manifest at p of the drop, and its signature;
// it refuses to replace a file, and returns where the manifest is.
func (a *app) dropManifest(ctx context.Context, p string, data, sig []byte) (string, error) {
	d, err := a.openDrop(ctx)
	if err != nil {
		return "", err
	}
	defer d.Close()
	files := manifestFiles(p, data, sig)
	for _, f := range files {
		if _, err := d.Stat(ctx, f.path); err == nil {
			return "", fmt.Errorf("%s esiste già nel drop %s: non sostituito", f.path, d)
		} else if !errors.Is(err, drop.ErrNotExist) {
			return "", err
		}
	}
	for _, f := range files {
		if err := d.Write(ctx, f.path, bytes.NewReader(f.data)); err != nil {
			return "", err
		}
	}
	if a.cfg.Drop.Type == "local" {
		return relPath(filepath.Join(a.cfg.Path(a.cfg.Drop.Local), filepath.FromSlash(p))), nil
	}
	return d.String() + "/" + p, nil
}
