package main

// The floors: for each stage, a bare loop of the work it cannot avoid,
// measured in this process right after the stage, on the same machine and
// the same data (docs/architecture.md, "The national benchmark").
//
//   - writes: the key-values the stage's commits left in the store (every
//     key whose newest version is the stage's), written again with one
//     Badger WriteBatch into an empty store with the same options
//     (store.RawWrite), including its close;
//   - census: the census's own sheet reader (ingest/xlsx) over both sheets,
//     plus the writes;
//   - certificati: the CA signature and the PKCS#12 of each certificate
//     over keys made beforehand, on every core (a sample, the rate applied
//     to the stage's count);
//   - ordini-sc: the OpenPGP encryption and signature of the same order
//     bytes, plus the writes;
//   - ingest-consegne: the CSV reading and the OpenPGP signature check of
//     the same manifests, plus the writes;
//   - ingest-richieste: the CAdES verification and the CSV reading of the
//     same signed files, plus the writes;
//   - invio-pin: the encryption and signature of as many PIN texts, each
//     sent over SMTP to the same server (one session per core), plus the
//     writes;
//   - export-audit: excelize's StreamWriter writing the national workbook's
//     rows and columns raw, and every comune's files written again with the
//     same bytes (temporary name, sync, rename), on every core.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/xuri/excelize/v2"

	"anprsec/ingest/consegne"
	"anprsec/ingest/richieste"
	"anprsec/ingest/table"
	"anprsec/ingest/xlsx"
	"anprsec/jobs"
	"anprsec/pki"
	"anprsec/pki/pgp"
	"anprsec/secret"
	"anprsec/store"
	"anprsec/trust/cades"
)

// parallel runs fn(i) for i in [0, n) on every core and returns the
// errors.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				errs[i] = fn(i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// version is the store's newest commit timestamp.
func (s *site) version() (uint64, error) {
	st, err := s.openStore()
	if err != nil {
		return 0, err
	}
	v := st.Version()
	return v, st.Close()
}

// writeFloor times the WriteBatch of what was committed after version
// into an empty store with the same options; it returns the time, the
// number of key-values and their bytes.
func (s *site) writeFloor(version uint64) (time.Duration, int, int64, error) {
	st, err := s.openStore()
	if err != nil {
		return 0, 0, 0, err
	}
	var keys, vals [][]byte
	var size int64
	err = st.RawScanSince(version, func(k, v []byte) error {
		keys = append(keys, bytes.Clone(k))
		vals = append(vals, bytes.Clone(v))
		size += int64(len(k) + len(v))
		return nil
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, 0, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(s.dir), "floor-store-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	key, err := secret.ReadKey(s.cfg.Path(s.cfg.Keys.Store))
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	fl, err := store.Open(store.Options{Dir: dir, Key: key})
	if err != nil {
		return 0, 0, 0, err
	}
	i := 0
	err = fl.RawWrite(func() ([]byte, []byte, bool) {
		if i == len(keys) {
			return nil, nil, false
		}
		i++
		return keys[i-1], vals[i-1], true
	})
	if cerr := fl.Close(); err == nil {
		err = cerr
	}
	return time.Since(start), len(keys), size, err
}

// scanWorkbook times the census's sheet reader over both sheets and
// returns the rows read (headers excluded).
func scanWorkbook(p string) (time.Duration, int, error) {
	start := time.Now()
	wb, err := xlsx.Open(p, xlsx.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer wb.Close()
	n := 0
	for _, sheet := range []string{"Utenti", "Postazioni"} {
		rows, err := wb.Rows(sheet)
		if err != nil {
			return 0, 0, err
		}
		for rows.Next() {
			if rows.Row() > 1 && len(rows.Columns()) > 0 {
				n++
			}
		}
		if err := rows.Err(); err != nil {
			return 0, 0, err
		}
		rows.Close()
	}
	return time.Since(start), n, nil
}

// excelizeRows times excelize's Rows iterator with raw values over both
// sheets, doing nothing with the cells: the census's other yardstick.
func excelizeRows(p string) (time.Duration, error) {
	start := time.Now()
	f, err := excelize.OpenFile(p, excelize.Options{RawCellValue: true})
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for _, sheet := range []string{"Utenti", "Postazioni"} {
		rows, err := f.Rows(sheet)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			if _, err := rows.Columns(); err != nil {
				return 0, err
			}
		}
		rows.Close()
	}
	return time.Since(start), nil
}

// certFloor times the CA signature and PKCS#12 of sample certificates on
// every core, over keys made beforehand, and returns the time per
// certificate.
func (s *site) certFloor(sample int) (time.Duration, error) {
	ca, err := pki.LoadCA(s.cfg.Path(s.cfg.PKI.CACert), s.cfg.CAKey())
	if err != nil {
		return 0, err
	}
	keys := make([]crypto.Signer, 2*runtime.NumCPU())
	if err := parallel(len(keys), func(i int) (err error) {
		keys[i], err = pki.GenerateKey(pki.KeyRSA2048)
		return err
	}); err != nil {
		return 0, err
	}
	chain := []*x509.Certificate{ca.Cert}
	start := time.Now()
	err = parallel(sample, func(i int) error {
		code := fmt.Sprintf("058091-PC-%04d", i%10000)
		c, _, err := ca.IssueWorkstation(pki.WorkstationRequest{Code: code, Comune: "Roma", PublicKey: keys[i%len(keys)].Public()})
		if err != nil {
			return err
		}
		pw, err := pki.NewPassword(s.cfg.PKI.PasswordAlphabet, s.cfg.PKI.PasswordLength)
		if err != nil {
			return err
		}
		_, err = pki.EncodeP12(keys[i%len(keys)], c, chain, pw, s.cfg.PKI.Encoding, code)
		return err
	})
	return time.Since(start) / time.Duration(sample), err
}

// orderFloor times the encryption and signature of the plaintexts of the
// order files (decrypted beforehand with the producer's development key).
func (s *site) orderFloor(files []string) (time.Duration, error) {
	producerSec, err := pgp.ReadSecretFile(strings.TrimSuffix(s.cfg.Path(s.cfg.Keys.Producer), ".pub.asc") + ".sec.asc")
	if err != nil {
		return 0, err
	}
	producer, err := pgp.ReadPublicFile(s.cfg.Path(s.cfg.Keys.Producer))
	if err != nil {
		return 0, err
	}
	service, err := pgp.ReadSecretFile(s.cfg.Path(s.cfg.Keys.Service))
	if err != nil {
		return 0, err
	}
	keyring := openpgp.EntityList{producerSec, service}
	plain := make([][]byte, len(files))
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		if plain[i], _, err = pgp.Decrypt(data, keyring); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
	}
	start := time.Now()
	err = parallel(len(plain), func(i int) error {
		_, err := pgp.EncryptSign(plain[i], producer, service)
		return err
	})
	return time.Since(start), err
}

// manifest is a delivery manifest read before its stage.
type manifest struct {
	ppp, name string
	data, sig []byte
}

// manifestFloor times reading the manifests and checking their
// signatures.
func (s *site) manifestFloor(ms []manifest) (time.Duration, error) {
	rings := map[string]openpgp.EntityList{}
	for _, m := range ms {
		if _, ok := rings[m.ppp]; ok {
			continue
		}
		k, err := pgp.ReadVerifierFile(filepath.Join(s.cfg.Path(s.cfg.Keys.Prefetture), m.ppp+".asc"))
		if err != nil {
			return 0, err
		}
		rings[m.ppp] = k
	}
	start := time.Now()
	err := parallel(len(ms), func(i int) error {
		m := ms[i]
		if _, err := pgp.VerifyDetached(rings[m.ppp], m.data, m.sig); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		_, err := table.Open(m.name, m.data, table.Options{Required: consegne.Columns})
		return err
	})
	return time.Since(start), err
}

// request is a signed console request file read before its stage.
type request struct {
	name string
	sig  []byte
}

// requestFloor times the CAdES verification and reading of the requests.
func (s *site) requestFloor(rs []request) (time.Duration, error) {
	anchors, err := cades.LoadAnchors(s.cfg.Path(s.cfg.Trust.CardCA))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = parallel(len(rs), func(i int) error {
		r := rs[i]
		now := time.Now()
		if _, err := cades.Verify(nil, r.sig, false, anchors, now); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		content, err := cades.EnvelopedContent(r.sig)
		if err != nil {
			return err
		}
		_, err = table.Open(strings.TrimSuffix(r.name, richieste.EnvelopeExt), content, table.Options{Required: richieste.Required, Optional: richieste.Optional})
		return err
	})
	return time.Since(start), err
}

// mailFloor times n PIN texts encrypted to the gateway, signed by the
// service key and sent over SMTP to the sink, one session per core.
func (s *site) mailFloor(ctx context.Context, n int) (time.Duration, error) {
	gateway, err := pgp.ReadPublicFile(s.cfg.Path(s.cfg.Keys.Gateway))
	if err != nil {
		return 0, err
	}
	service, err := pgp.ReadSecretFile(s.cfg.Path(s.cfg.Keys.Service))
	if err != nil {
		return 0, err
	}
	texts := make([][]byte, n)
	for i := range texts {
		texts[i] = []byte(jobs.PINText("Mario Rossi", fmt.Sprintf("SC%010d", i), pki.CardHalf{PIN: "1234", PUK: "5678", Password: "abcde"}))
	}
	workers := runtime.NumCPU()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			c, err := smtp.Dial(s.smtp.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := w; i < n; i += workers {
				body, err := pgp.EncryptSign(texts[i], gateway, service)
				if err == nil {
					err = send(c, body)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- c.Quit()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func send(c *smtp.Client, body []byte) error {
	if err := c.Mail("sicurezza@anprsec.invalid"); err != nil {
		return err
	}
	if err := c.Rcpt("titolare@comune.invalid"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Close()
}

// exportFloor times excelize's StreamWriter writing the national
// workbook's sheets raw (as many rows and columns) and the comuni's files
// written again with the same bytes.
func (s *site) exportFloor(national string, comuni []string) (time.Duration, error) {
	type dims struct {
		name       string
		rows, cols int
	}
	var sheets []dims
	wb, err := xlsx.Open(national, xlsx.Options{MaxUnzipped: 16 << 30}) // our own output
	if err != nil {
		return 0, err
	}
	for _, name := range wb.SheetNames() {
		rows, err := wb.Rows(name)
		if err != nil {
			return 0, err
		}
		d := dims{name: name}
		for rows.Next() {
			d.rows++
			d.cols = max(d.cols, len(rows.Columns()))
		}
		rows.Close()
		sheets = append(sheets, d)
	}
	wb.Close()
	data := make([][]byte, len(comuni))
	for i, p := range comuni {
		if data[i], err = os.ReadFile(p); err != nil {
			return 0, err
		}
	}
	out, err := os.MkdirTemp(filepath.Dir(s.dir), "floor-export-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(out)
	start := time.Now()
	f := excelize.NewFile(excelize.Options{TmpDir: out})
	for _, d := range sheets {
		if _, err := f.NewSheet(d.name); err != nil {
			return 0, err
		}
		sw, err := f.NewStreamWriter(d.name)
		if err != nil {
			return 0, err
		}
		row := make([]any, d.cols)
		for i := 1; i <= d.rows; i++ {
			for j := range row {
				row[j] = "VALORE" + strconv.Itoa(i%1000)
			}
			cell, _ := excelize.CoordinatesToCellName(1, i)
			if err := sw.SetRow(cell, row); err != nil {
				return 0, err
			}
		}
		if err := sw.Flush(); err != nil {
			return 0, err
		}
	}
	if err := f.SaveAs(filepath.Join(out, "nazionale.xlsx")); err != nil {
		return 0, err
	}
	f.Close()
	err = parallel(len(comuni), func(i int) error {
		dir := filepath.Join(out, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		final := filepath.Join(dir, filepath.Base(comuni[i]))
		tmp, err := os.CreateTemp(dir, ".tmp-")
		if err != nil {
			return err
		}
		if _, err := tmp.Write(data[i]); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), final)
	})
	return time.Since(start), err
}
