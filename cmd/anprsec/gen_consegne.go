package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
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
	c := &cobra.Command{
		Use:   "consegne --prefettura PPP",
		Short: "Write a signed delivery manifest of a prefettura: the cards IN PRODUZIONE of its comuni",
		Long: `consegne writes a delivery manifest of prefettura PPP, as the prefettura
would send it, from what the store holds: one row per card IN PRODUZIONE of
the comuni of its province (its serial, its holder, today's date, collected
by the comune's ASC, or an APL when there is no ASC), and its detached
OpenPGP signature made with the prefettura's development key (anprsec init
--prefettura PPP), or the secret key of --firma-chiave.

It writes <name>.csv and <name>.csv.asc into the drop,
prefetture/<PPP>/consegne/ (ingest-consegne reads them), or into the folder
of -o. --errori N adds N rows that must be refused, alternately an unknown
serial (SERIALE_SCONOSCIUTO) and a card of another holder
(TITOLARE_DIVERSO), to try the receipts. An existing file is never
replaced. It reads the store, which is held by one process at a time: stop
the daemon first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.genConsegne(cmd, opt, outDir)
		},
	}
	c.Flags().StringVar(&opt.ppp, "prefettura", "", "code of the prefettura (3 digits, e.g. 058) (required)")
	c.Flags().IntVar(&opt.wrong, "errori", 0, "number of deliberately wrong rows to add")
	c.Flags().StringVar(&opt.keyFile, "firma-chiave", "", "secret OpenPGP key that signs (default: the development key of init --prefettura)")
	c.Flags().StringVar(&opt.name, "nome", "", "file name without .csv (default consegne-<PPP>-<date>-<time>)")
	c.Flags().StringVarP(&outDir, "out", "o", "", "folder to write into (default: the drop's prefetture/<PPP>/consegne/)")
	c.MarkFlagRequired("prefettura")
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
		return fmt.Errorf("--errori %d: not a number of rows", opt.wrong)
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
	fmt.Fprintf(out, "%s: %d rows (%d to deliver, %d wrong), signed with %s (%s)\n", where, len(rows), len(rows)-opt.wrong, opt.wrong, relPath(keyFile), pgp.Fingerprint(signer))
	fmt.Fprintf(out, "%s%s: detached signature\n", where, consegne.SignatureSuffix)
	for i, r := range rows {
		if r.expect != "" {
			fmt.Fprintf(out, "row %d: %s, expect %s\n", i+2, r.why, r.expect)
		}
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
			return nil, "", fmt.Errorf("no development key of prefettura %s (%s): run `anprsec init --prefettura %s`, or name a key with --firma-chiave", opt.ppp, relPath(keyFile), opt.ppp)
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
		err = fmt.Errorf("prefettura %s: no card IN PRODUZIONE in the comuni of its province, nothing to deliver (--errori N writes wrong rows only)", opt.ppp)
	}
	return rows, err
}

// deliverableRows lists, in comune and serial order, a right manifest row
// for each card IN PRODUZIONE of a comune of prefettura ppp whose holder
// has an utenza there and whose comune has an active ASC or APL to collect
// it.
func deliverableRows(tx *store.Tx, comuni *istat.Table, ppp, date string) ([]manifestRow, error) {
	collectors := map[string]string{} // comune -> CF of its ASC, else an APL; "" none
	var rows []manifestRow
	err := tx.EachCardIn([]domain.CardState{domain.CardProduzione}, func(c *domain.SmartCard) error {
		if p, ok := comuni.Prefettura(c.ISTAT); !ok || p != ppp {
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
		rows = append(rows, manifestRow{istat: c.ISTAT, serial: c.Serial, cf: c.CF, date: date, takenBy: by})
		return nil
	})
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].istat < rows[j].istat })
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
			r.cf, r.expect, r.why = wrongCF, "TITOLARE_DIVERSO", fmt.Sprintf("card %s with holder %s, not its own", r.serial, wrongCF)
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
		r.expect, r.why = "SERIALE_SCONOSCIUTO", "serial "+r.serial+" that does not exist"
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
		return "", "", fmt.Errorf("prefettura %s: no comune of its province was censused", ppp)
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
			return "", fmt.Errorf("%s exists: not replaced", relPath(f.path))
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
			return "", fmt.Errorf("%s exists in the drop %s: not replaced", f.path, d)
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
