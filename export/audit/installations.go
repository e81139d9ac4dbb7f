package audit

import (
	"bytes"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/store"
)

// InstallationsSheet is the sheet of a comune's workbook with its register
// of installations (docs/rules.md#installation-register).
const InstallationsSheet = "Installazioni"

// InstallationsName is the base name of a comune's register CSV.
func InstallationsName(istat, day string) string {
	return "installazioni-" + istat + "-" + day + ".csv"
}

var installationCols = []column{
	{"Codice postazione", 18, kText},
	{"Seriale certificato", 42, kText},
	{"Nome host", 22, kText},
	{"Indirizzo", 18, kText},
	{"Ufficio", 20, kText},
	{"Note", 30, kText},
	{"Registrata da", 20, kText},
	{"Prima registrazione", 18, kDateTime},
	{"Ultima modifica", 18, kDateTime},
}

// installationsSheet writes the Installazioni sheet of comune c (the
// register as its ALPs declared it), and the same rows as CSV to icsv,
// and returns the number of records.
func (e *Exporter) installationsSheet(tx *store.Tx, f *excelize.File, st *styles, c *domain.Comune, now time.Time, icsv *bytes.Buffer) (int, error) {
	it := newTable(installationCols, e.loc())
	if err := it.sheet(f, st, InstallationsSheet, 4); err != nil {
		return 0, err
	}
	if err := it.csvTo(icsv); err != nil {
		return 0, err
	}
	if err := it.line("Comune", c.Name+" ("+c.ISTAT+")"); err != nil {
		return 0, err
	}
	if err := it.line("Data", now); err != nil {
		return 0, err
	}
	if err := it.blank(); err != nil {
		return 0, err
	}
	if err := it.header(); err != nil {
		return 0, err
	}
	n := 0
	err := tx.InstallationsOf(c.ISTAT, func(in *store.Installation) error {
		n++
		return it.data(in.Code, in.Serial, in.Host, in.Address, in.Office, in.Note, in.By, in.Created, in.Updated)
	})
	if err != nil {
		return 0, err
	}
	if err := it.finish("Installazioni"); err != nil {
		return 0, err
	}
	return n, nil
}
