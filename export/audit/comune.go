package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/store"
)

// Instruction is the request of the security notice printed at the top of
// every comune's list (docs/rules.md#audit).
const Instruction = "Si prega di verificare le abilitazioni di accesso al sistema ANPR degli operatori anagrafici " +
	"del comune: di seguito l'elenco degli utenti registrati e il relativo grado di autorizzazione. " +
	"Qualora i dati non siano aggiornati, l'amministratore locale della sicurezza (ALS) deve provvedere " +
	"tempestivamente alla relativa modifica attraverso la console di sicurezza ANPR."

// UsersTitle is the first line of a comune's list.
const UsersTitle = "Elenco degli utenti registrati in ANPR e relativo grado di autorizzazione"

// Sheet names of a comune's workbook.
const (
	UsersSheet        = "Utenti"
	WorkstationsSheet = "Postazioni"
)

var userCols = []column{
	{"Codice Fiscale", 19, kText},
	{"Cognome", 20, kText},
	{"Nome", 18, kText},
	{"Profili", 22, kText},
	{"Ambiente", 26, kText},
	{"Stato utenza", 13, kText},
	{"Stato smart card", 28, kText},
	{"Seriale smart card", 18, kText},
	{"Email", 30, kText},
	{"PEC", 30, kText},
	{"Ultima modifica", 15, kDate},
}

var workstationCols = []column{
	{"Codice postazione", 18, kText},
	{"Nome postazione", 26, kText},
	{"Tipo", 11, kText},
	{"Stato certificato", 26, kText},
	{"Seriale certificato", 36, kText},
	{"Scadenza", 12, kDate},
}

// ProfileLegend spells the profile codes of the console with their
// descriptions, from domain.Profiles.
func ProfileLegend() string {
	parts := make([]string, len(domain.Profiles))
	for i, p := range domain.Profiles {
		parts[i] = string(p.Profile) + " = " + p.Description
	}
	return strings.Join(parts, "; ")
}

// ComuneFiles are the names (as given to the Target) of one comune's
// exports.
type ComuneFiles struct {
	XLSX, UsersCSV, WorkstationsCSV string
	InstallationsCSV                string
	Utenze, Postazioni              int
	Installazioni                   int
}

// ErrUnknownComune is returned (wrapped) for a comune that is not in the
// store.
var ErrUnknownComune = errors.New("comune non censito")

// Comune writes the lists of one comune: utenti-<ISTAT>-<YYYYMMDD>.xlsx
// (sheets Utenti, Postazioni and Installazioni), the same users as
// utenti-...csv, the workstations as postazioni-<ISTAT>-<YYYYMMDD>.csv and
// the register of installations as installazioni-<ISTAT>-<YYYYMMDD>.csv.
func (e *Exporter) Comune(ctx context.Context, istat string) (ComuneFiles, error) {
	now := e.now()
	day := e.day(now)
	dir := ComuneDir(istat)
	out := ComuneFiles{
		XLSX:            e.place(dir, UsersName(istat, day, ".xlsx")),
		UsersCSV:        e.place(dir, UsersName(istat, day, ".csv")),
		WorkstationsCSV: e.place(dir, WorkstationsName(istat, day)),
	}
	out.InstallationsCSV = e.place(dir, InstallationsName(istat, day))
	f := excelize.NewFile(excelize.Options{TmpDir: e.tempDir()})
	defer f.Close()
	var ucsv, wcsv, icsv bytes.Buffer
	err := e.Store.View(func(tx *store.Tx) error {
		c, err := tx.Comune(istat)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("audit: %s: %w", istat, ErrUnknownComune)
		}
		if err != nil {
			return err
		}
		out.Utenze, out.Postazioni, err = e.comuneBook(tx, f, c, now, &ucsv, &wcsv)
		if err != nil {
			return err
		}
		if _, err := f.NewSheet(InstallationsSheet); err != nil {
			return err
		}
		st, err := newStyles(f)
		if err != nil {
			return err
		}
		out.Installazioni, err = e.installationsSheet(tx, f, st, c, now, &icsv)
		return err
	})
	if err != nil {
		return out, err
	}
	if err := e.publishWorkbook(ctx, f, ".audit-*.xlsx", out.XLSX); err != nil {
		return out, err
	}
	if err := e.Target.Write(ctx, out.UsersCSV, &ucsv); err != nil {
		return out, fmt.Errorf("audit: scrittura di %s: %w", out.UsersCSV, err)
	}
	if err := e.Target.Write(ctx, out.WorkstationsCSV, &wcsv); err != nil {
		return out, fmt.Errorf("audit: scrittura di %s: %w", out.WorkstationsCSV, err)
	}
	if err := e.Target.Write(ctx, out.InstallationsCSV, &icsv); err != nil {
		return out, fmt.Errorf("audit: scrittura di %s: %w", out.InstallationsCSV, err)
	}
	return out, nil
}

func (e *Exporter) comuneBook(tx *store.Tx, f *excelize.File, c *domain.Comune, now time.Time, ucsv, wcsv *bytes.Buffer) (nu, nw int, err error) {
	st, err := newStyles(f)
	if err != nil {
		return 0, 0, err
	}
	if err := f.SetSheetName("Sheet1", UsersSheet); err != nil {
		return 0, 0, err
	}
	if _, err := f.NewSheet(WorkstationsSheet); err != nil {
		return 0, 0, err
	}
	f.SetDocProps(&excelize.DocProperties{Title: UsersTitle + " - " + c.Name, Creator: "anprsec"})
	if nu, err = e.usersSheet(tx, f, st, c, now, ucsv); err != nil {
		return 0, 0, err
	}
	if nw, err = e.workstationsSheet(tx, f, st, c, now, wcsv); err != nil {
		return 0, 0, err
	}
	return nu, nw, nil
}

// usersSheet writes the Utenti sheet of comune c, and the same rows as CSV
// to ucsv, and returns the number of utenze.
func (e *Exporter) usersSheet(tx *store.Tx, f *excelize.File, st *styles, c *domain.Comune, now time.Time, ucsv *bytes.Buffer) (int, error) {
	ut := newTable(userCols, e.loc())
	if err := ut.sheet(f, st, UsersSheet, 7); err != nil {
		return 0, err
	}
	if err := ut.csvTo(ucsv); err != nil {
		return 0, err
	}
	name := c.Name + " (" + c.ISTAT + ")"
	if err := ut.line(UsersTitle); err != nil {
		return 0, err
	}
	if err := ut.line("Comune", name); err != nil {
		return 0, err
	}
	if err := ut.line("Data", now); err != nil {
		return 0, err
	}
	if err := ut.line("Istruzioni", Instruction); err != nil {
		return 0, err
	}
	if err := ut.line("Profili", ProfileLegend()); err != nil {
		return 0, err
	}
	if err := ut.blank(); err != nil {
		return 0, err
	}
	if err := ut.header(); err != nil {
		return 0, err
	}
	nu := 0
	err := tx.UtenzeOfComune(c.ISTAT, func(u *domain.Utenza) error {
		p, card, err := holderOf(tx, u)
		if err != nil {
			return err
		}
		nu++
		return ut.data(userRow(u, p, card)...)
	})
	if err != nil {
		return 0, err
	}
	if err := ut.finish("Utenti"); err != nil {
		return 0, err
	}
	return nu, nil
}

// holderOf is the person of utenza u and the person's card, nil when
// there is none.
func holderOf(tx *store.Tx, u *domain.Utenza) (*domain.Person, *domain.SmartCard, error) {
	p, err := tx.Person(u.CF)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	var card *domain.SmartCard
	if p.Card != "" {
		card, err = tx.Card(p.Card)
		if errors.Is(err, store.ErrNotFound) {
			card, err = nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return p, card, nil
}

// workstationsSheet writes the Postazioni sheet of comune c, and the same
// rows as CSV to wcsv, and returns the number of postazioni.
func (e *Exporter) workstationsSheet(tx *store.Tx, f *excelize.File, st *styles, c *domain.Comune, now time.Time, wcsv *bytes.Buffer) (int, error) {
	wt := newTable(workstationCols, e.loc())
	if err := wt.sheet(f, st, WorkstationsSheet, 4); err != nil {
		return 0, err
	}
	if err := wt.csvTo(wcsv); err != nil {
		return 0, err
	}
	if err := wt.line("Comune", c.Name+" ("+c.ISTAT+")"); err != nil {
		return 0, err
	}
	if err := wt.line("Data", now); err != nil {
		return 0, err
	}
	if err := wt.blank(); err != nil {
		return 0, err
	}
	if err := wt.header(); err != nil {
		return 0, err
	}
	nw := 0
	err := tx.PostazioniOfComune(c.ISTAT, func(p *domain.Postazione) error {
		nw++
		kind := "Postazione"
		if p.Server {
			kind = "Server"
		}
		return wt.data(p.Code, p.Label, kind, string(p.State), p.Serial, p.NotAfter)
	})
	if err != nil {
		return 0, err
	}
	if err := wt.finish("Postazioni"); err != nil {
		return 0, err
	}
	return nw, nil
}

// userRow is one line of a user list.
func userRow(u *domain.Utenza, p *domain.Person, card *domain.SmartCard) []any {
	cardState, serial := "", ""
	last := u.Updated
	if p != nil && p.Updated.After(last) {
		last = p.Updated
	}
	if card != nil {
		cardState, serial = string(card.State), card.Serial
		if card.Updated.After(last) {
			last = card.Updated
		}
	} else if u.NeedsCard {
		cardState = "NESSUNA"
	}
	var surname, name string
	if p != nil {
		surname, name = p.Surname, p.Name
	}
	return []any{u.CF, surname, name, joinProfiles(u.Profiles), joinEnv(u.Environments), string(u.State),
		cardState, serial, u.Email, u.PEC, last}
}

// joinProfiles spells profiles as the console does, in the order of
// domain.Profiles (unknown ones last, as stored).
func joinProfiles(ps []domain.Profile) string {
	var out []string
	seen := 0
	for _, info := range domain.Profiles {
		for _, p := range ps {
			if p == info.Profile {
				out = append(out, string(p))
				seen++
				break
			}
		}
	}
	if seen < len(ps) {
		for _, p := range ps {
			if _, ok := domain.LookupProfile(string(p)); !ok {
				out = append(out, string(p))
			}
		}
	}
	return strings.Join(out, ", ")
}

func joinEnv(es []domain.Environment) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = string(e)
	}
	return strings.Join(s, ", ")
}

// ComuniResult is the outcome of Comuni.
type ComuniResult struct {
	Comuni int   // lists written
	Failed int   // comuni whose lists could not be written
	Err    error // the first errors, joined
}

// Comuni writes the lists of every comune in the store (the weekly run),
// on all cores (each comune is a workbook to build and compress and three
// files to write; over SFTP the writes wait on the network). A comune that
// fails does not stop the others; a cancelled ctx does.
func (e *Exporter) Comuni(ctx context.Context) (ComuniResult, error) {
	var codes []string
	err := e.Store.View(func(tx *store.Tx) error {
		return tx.Comuni(func(c *domain.Comune) error {
			codes = append(codes, c.ISTAT)
			return nil
		})
	})
	var res ComuniResult
	if err != nil {
		return res, err
	}
	e.loc() // set once, before the workers read it
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan string)
	for range min(runtime.NumCPU(), len(codes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for code := range work {
				_, err := e.Comune(ctx, code)
				mu.Lock()
				if err != nil {
					res.Failed++
					if len(errs) < 10 {
						errs = append(errs, err)
					}
				} else {
					res.Comuni++
				}
				mu.Unlock()
			}
		}()
	}
	for _, code := range codes {
		if ctx.Err() != nil {
			break
		}
		work <- code
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Err = errors.Join(errs...)
	return res, nil
}

// publishWorkbook saves workbook f to a temporary file named like pattern
// and writes it to name in the target.
func (e *Exporter) publishWorkbook(ctx context.Context, f *excelize.File, pattern, name string) error {
	tmp, err := os.CreateTemp(e.tempDir(), pattern)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := saveTo(f, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return e.putFile(ctx, name, tmp.Name())
}
