package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"anprsec/domain"
	"anprsec/ingest/richieste"
	"anprsec/store"
)

// genAllDeliveries is gen richieste --consegne --tutti: the deliveries'
// sample file of every comune that has one, read in one view of the store
// and signed on every core; a comune with nothing to register is counted,
// not an error.
func (a *app) genAllDeliveries(cmd *cobra.Command, out string) error {
	toCaller := out != ""
	if !toCaller && a.cfg.Drop.Type != "local" {
		return errors.New("con un drop SFTP --out è obbligatoria")
	}
	ca, err := a.devCardCA()
	if err != nil {
		return err
	}
	st, err := a.openStore()
	if err != nil {
		return err
	}
	var files []sampleFile
	var istats []string
	skipped := 0
	err = st.View(func(tx *store.Tx) error {
		return tx.Comuni(func(c *domain.Comune) error {
			f, err := sampleDeliveriesIn(tx, c.ISTAT)
			if errors.Is(err, errNoSample) {
				skipped++
				return nil
			}
			if err != nil {
				return err
			}
			files = append(files, f)
			istats = append(istats, c.ISTAT)
			return nil
		})
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dir := func(istat string) string {
		if toCaller {
			return filepath.Join(out, istat)
		}
		return filepath.Join(a.cfg.Path(a.cfg.Drop.Local), "comuni", istat, "richieste")
	}
	mkdir := os.MkdirAll
	if toCaller {
		mkdir = a.callerFS().MkdirAll
	}
	write := a.writeNewFor(toCaller)
	work := make(chan int)
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			for i := range work {
				d := dir(istats[i])
				if err := mkdir(d, 0o755); err != nil {
					errs[i] = err
					continue
				}
				p := filepath.Join(d, files[i].name+richieste.EnvelopeExt)
				if err := signAsTo(write, ca, files[i].signer, []byte(files[i].text), p, false); err != nil {
					errs[i] = fmt.Errorf("comune %s: %w", istats[i], err)
				}
			}
		})
	}
	for i := range files {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "file di registrazione delle consegne scritti: %d (righe: %d); comuni senza smart card da registrare: %d\n", len(files), countRows(files), skipped)
	return nil
}

// countRows counts the request rows of files (their lines but the header).
func countRows(files []sampleFile) int {
	n := 0
	for _, f := range files {
		n += strings.Count(f.text, "\n") - 1
	}
	return n
}
