package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"anprsec/drop"
	"anprsec/istat"
	"anprsec/lifecycle"
	"anprsec/store"
)

func init() { extraCommands = append(extraCommands, (*app).istatCmd) }

func (a *app) istatCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "istat",
		Short: "Dati di riferimento di comuni e stati esteri",
		Long: `istat consulta i dati di riferimento incorporati: la storia dei codici
Belfiore (i luoghi di nascita del codice fiscale: comuni in vigore e
soppressi, stati esteri) con i loro periodi di validità, e i comuni di oggi
con i loro codici ISTAT. Fonti, date e licenze: docs/reference-data.md nei
sorgenti di anprsec.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.istatCercaCmd(), a.istatAggiornaCmd())
	return cmd
}

func (a *app) istatCercaCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "cerca TESTO|CODICE",
		Short: "Cerca un comune o uno stato per nome, codice ISTAT o codice Belfiore",
		Long: `cerca stampa ogni periodo di un codice Belfiore (H579, Z118), di un codice
ISTAT (078108), o dei comuni e degli stati il cui nome contiene TESTO (senza
badare a maiuscole, accenti, apostrofi e spazi): codice, nome, provincia o
stato, codice ISTAT, periodo di validità e, per un comune soppresso, il
comune che gli è subentrato quando la tabella lo indica.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			places := a.placesForLookup(cmd)
			found := places.Search(args[0], limit+1)
			if len(found) == 0 {
				return fmt.Errorf("nessun comune o stato estero per %q", args[0])
			}
			more := limit > 0 && len(found) > limit
			if more {
				found = found[:limit]
			}
			printPlaces(cmd.OutOrStdout(), places, found)
			if more {
				fmt.Fprintf(cmd.OutOrStdout(), "... altri risultati: precisare la ricerca o usare --limit\n")
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "`numero` massimo di periodi da stampare (0 = tutti)")
	return cmd
}

// printPlaces prints places as a table, in Italian for the operator.
func printPlaces(w io.Writer, places *istat.Places, found []istat.Place) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CODICE\tNOME\tPROV./STATO\tISTAT\tVALIDITÀ\tPOI")
	for _, p := range found {
		where, code := p.Sigla, p.ISTAT
		if p.Foreign() {
			where, code = "stato estero", "-"
			if p.Sigla != "" {
				where += " " + p.Sigla
			}
		}
		next := ""
		if !p.InForce() && !p.Foreign() {
			if s, ok := places.Successor(p); ok {
				next = fmt.Sprintf("%s %s %s (%s)", s.Belfiore, s.ISTAT, s.Name, s.Sigla)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Belfiore, p.Name, where, code, p.Period(), next)
	}
	tw.Flush()
}

// placesMetaKey keeps, in the store, the table of places loaded with
// istat aggiorna.
const placesMetaKey = "istat-luoghi"

// storedPlaces is the table loaded with istat aggiorna: the places format,
// gzip'd.
type storedPlaces struct {
	Date string `json:"date"`
	File string `json:"file"`
	Gz   []byte `json:"gz"`
}

// placesInForce returns the table of places in force: the one loaded with
// istat aggiorna when its data are later than the embedded table's, else
// the embedded one.
func placesInForce(tx *store.Tx) (*istat.Places, error) {
	var sp storedPlaces
	err := tx.Meta(placesMetaKey, &sp)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sp.Date <= istat.DefaultPlaces().Date()) {
		return istat.DefaultPlaces(), nil
	}
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(sp.Gz))
	if err != nil {
		return nil, fmt.Errorf("tabella dei luoghi caricata il %s: %w", sp.Date, err)
	}
	return istat.LoadPlaces(zr)
}

// withPlacesInForce gives tab the table of places in force in the store:
// the comuni of today come from it too.
func (a *app) withPlacesInForce(st *store.Store, tab *istat.Table) (*istat.Table, error) {
	var p *istat.Places
	if err := st.View(func(tx *store.Tx) (err error) {
		p, err = placesInForce(tx)
		return err
	}); err != nil {
		return nil, err
	}
	if p == istat.DefaultPlaces() {
		return tab, nil
	}
	return istat.FromPlaces(p)
}

// placesForLookup returns the table of places in force for istat cerca:
// the store's when it can be read, else (before init, or while the daemon
// holds the store) the embedded one, saying so.
func (a *app) placesForLookup(cmd *cobra.Command) *istat.Places {
	if a.cfg == nil {
		return istat.DefaultPlaces()
	}
	if _, err := os.Stat(a.cfg.Path(a.cfg.DataDir)); err != nil {
		return istat.DefaultPlaces()
	}
	st, err := a.openStore()
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "(tabella incorporata, dati al %s: archivio dell'installazione non leggibile: %v)\n", personDay(istat.DefaultPlaces().Date()), err)
		return istat.DefaultPlaces()
	}
	defer st.Close()
	var p *istat.Places
	if err := st.View(func(tx *store.Tx) (err error) {
		p, err = placesInForce(tx)
		return err
	}); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "(tabella incorporata: %v)\n", err)
		return istat.DefaultPlaces()
	}
	return p
}

// minShare is the least share of the comuni in force that an archive must
// hold to replace the table: ANPR publishes the whole archive, so a file
// with far fewer comuni is an extract or a mistake.
const minShare = 0.95

func (a *app) istatAggiornaCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "aggiorna FILE [--yes]",
		Short: "Aggiorna la tabella dei comuni dall'archivio ANPR del Ministero (ANPR_archivio_comuni.csv)",
		Long: `aggiorna legge l'archivio ANPR dei comuni (ANPR_archivio_comuni.csv, i dati
aperti del Ministero, nel formato pubblicato), mostra cosa cambia nei comuni
in vigore (nuovi, soppressi, rinominati, un cambio di codice ISTAT o di
provincia) e, alla conferma (o con --yes), lo conserva nell'archivio come
tabella in vigore, registrandolo nello storico. Gli stati esteri restano
quelli della tabella incorporata. Un file con dati non successivi a quelli
della tabella in vigore, o con molti meno comuni, è rifiutato. Il servizio
legge la tabella all'avvio: riavviarlo dopo un aggiornamento. Un comune
censito che cambia codice ISTAT (o provincia, che cambia il codice) si sposta
nello stesso passo: il suo record (che conserva il codice precedente), le sue
utenze, le sue smart card e la sua cartella del drop comuni/<vecchio>/ →
comuni/<nuovo>/; la prefettura segue la nuova provincia. Le postazioni
conservano i loro codici, che i certificati riportano.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := a.callerFS().ReadFile(args[0])
			if err != nil {
				return err
			}
			if err := a.checkSecrets(); err != nil {
				return err
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			var cur *istat.Places
			if err := st.View(func(tx *store.Tx) (err error) {
				cur, err = placesInForce(tx)
				return err
			}); err != nil {
				return err
			}
			p, err := istat.ReadArchive(bytes.NewReader(data), cur)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if p.Date() <= cur.Date() {
				return fmt.Errorf("%s: dati al %s, non successivi a quelli della tabella in uso (%s): nessuna modifica", args[0], personDay(p.Date()), personDay(cur.Date()))
			}
			nNew, _, _, _ := p.Counts()
			nCur, _, _, _ := cur.Counts()
			if float64(nNew) < minShare*float64(nCur) {
				return fmt.Errorf("%s: %d comuni in vigore contro %d della tabella in uso: non è l'archivio completo, nessuna modifica", args[0], nNew, nCur)
			}
			out := cmd.OutOrStdout()
			changes := istat.Diff(cur, p)
			fmt.Fprintf(out, "%s: dati al %s (tabella in uso: %s), %d comuni in vigore; %d modifiche:\n", args[0], personDay(p.Date()), personDay(cur.Date()), nNew, len(changes))
			count := map[string]int{}
			for _, c := range changes {
				fmt.Fprintln(out, "  "+c.String())
				count[c.Kind]++
			}
			if !yes && !confirm(cmd, "Applicare l'aggiornamento? [s/N] ") {
				fmt.Fprintln(out, "nessuna modifica")
				return nil
			}
			var plain bytes.Buffer
			if err := istat.WritePlaces(&plain, p); err != nil {
				return err
			}
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(plain.Bytes())
			if err := zw.Close(); err != nil {
				return err
			}
			detail := fmt.Sprintf("%s: %d comuni in vigore; %d nuovi, %d cessati, %d rinominati, %d con nuovo codice ISTAT, %d con nuova provincia",
				args[0], nNew, count["nuovo"], count["cessato"], count["rinominato"], count["codice ISTAT"], count["provincia"])
			moved, err := applyPlaces(st, store.Source{Actor: a.actor(), File: args[0]}, storedPlaces{Date: p.Date(), File: args[0], Gz: gz.Bytes()}, detail, changes)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "tabella aggiornata ai dati del %s (effetto al prossimo avvio del servizio)\n", personDay(p.Date()))
			return a.moveComuneFolders(cmd, moved)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "applica senza chiedere conferma")
	return cmd
}

// confirm asks a yes/no question on the command's input; anything but
// s/si/y/yes, or no answer, is no.
func confirm(cmd *cobra.Command, question string) bool {
	fmt.Fprint(cmd.OutOrStdout(), question)
	line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "s", "si", "sì", "y", "yes":
		return true
	}
	return false
}

// applyPlaces keeps the table sp in the store as the table in force,
// records it, and moves every censused comune that changes ISTAT code in
// changes (lifecycle.RenumberComune), all in one transaction; it returns
// the pairs of codes of the comuni moved.
func applyPlaces(st *store.Store, src store.Source, sp storedPlaces, detail string, changes []istat.Change) ([][2]string, error) {
	var moved [][2]string
	err := st.Update(func(tx *store.Tx) error {
		moved = moved[:0]
		if err := tx.SetMeta(placesMetaKey, sp); err != nil {
			return err
		}
		if err := tx.Record(src, "istat.aggiorna", "istat", sp.Date, detail); err != nil {
			return err
		}
		for _, c := range changes {
			if c.Kind != "codice ISTAT" {
				continue
			}
			ok, err := lifecycle.RenumberComune(tx, src, c.Old.ISTAT, c.New.ISTAT, c.New.ISTAT[:3])
			if err != nil {
				return err
			}
			if ok {
				moved = append(moved, [2]string{c.Old.ISTAT, c.New.ISTAT})
			}
		}
		return nil
	})
	return moved, err
}

// moveComuneFolders moves the drop folder of each censused comune that
// changed ISTAT code, comuni/<old>/ → comuni/<new>/, saying what it did. A
// file whose target exists already is left where it is, and so is every
// file when the drop cannot be reached: the operator is told to move them.
func (a *app) moveComuneFolders(cmd *cobra.Command, moved [][2]string) error {
	out := cmd.OutOrStdout()
	if len(moved) == 0 {
		return nil
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	d, err := a.openDrop(ctx)
	if err != nil {
		for _, m := range moved {
			fmt.Fprintf(out, "comune %s → %s: archivio aggiornato; cartella comuni/%s/ NON spostata (%v): spostarla a mano in comuni/%s/\n", m[0], m[1], m[0], err, m[1])
		}
		return fmt.Errorf("cartelle dei comuni non spostate: %w", err)
	}
	defer d.Close()
	var errs []error
	for _, m := range moved {
		from, to := path.Join("comuni", m[0]), path.Join("comuni", m[1])
		n, left, err := moveTree(ctx, d, from, to)
		switch {
		case err != nil:
			fmt.Fprintf(out, "comune %s → %s: archivio aggiornato; %d file spostati in %s/, poi: %v: spostare a mano il resto di %s/\n", m[0], m[1], n, to, err, from)
			errs = append(errs, err)
		case len(left) > 0:
			fmt.Fprintf(out, "comune %s → %s: archivio aggiornato; %d file spostati in %s/, %d lasciati in %s/ perché già presenti nella nuova cartella: %s\n", m[0], m[1], n, to, len(left), from, strings.Join(left, ", "))
		default:
			fmt.Fprintf(out, "comune %s → %s: archivio aggiornato, %d file spostati da %s/ a %s/\n", m[0], m[1], n, from, to)
		}
	}
	return errors.Join(errs...)
}

// moveTree renames every regular file under from to the same place under
// to, leaving (and listing) those whose target exists; folders left empty
// stay.
func moveTree(ctx context.Context, d drop.Drop, from, to string) (n int, left []string, err error) {
	entries, err := d.List(ctx, from)
	if err != nil {
		return 0, nil, err
	}
	for _, e := range entries {
		src, dst := path.Join(from, e.Name), path.Join(to, e.Name)
		if e.Dir {
			k, l, err := moveTree(ctx, d, src, dst)
			n, left = n+k, append(left, l...)
			if err != nil {
				return n, left, err
			}
			continue
		}
		if !e.Regular {
			left = append(left, src)
			continue
		}
		if _, err := d.Stat(ctx, dst); err == nil {
			left = append(left, src)
			continue
		} else if !errors.Is(err, drop.ErrNotExist) {
			return n, left, err
		}
		if err := d.Rename(ctx, src, dst); err != nil {
			return n, left, err
		}
		n++
	}
	return n, left, nil
}
