package main

import (
	"fmt"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/xuri/excelize/v2"

	"anprsec/ingest/census/censusgen"
)

// twoComuni writes duecomuni.xlsx into the script's work dir: Roma (058091)
// and Fiumicino (058120), each with its sindaco (ASC), ALS and ALP, and
// exports their codici fiscali as $X_ASC, $X_ALS, $X_ALP (Roma) and $Y_ASC,
// $Y_ALS, $Y_ALP (Fiumicino), computed from their names.
func twoComuni(env *testscript.Env) error {
	type person struct {
		v, istat, comune, surname, name, sex, profile string
		year                                          int
	}
	people := []person{
		{"X_ASC", "058091", "Roma", "Rossi", "Mario", "M", "ASC", 1968},
		{"X_ALS", "058091", "Roma", "Verdi", "Giuseppe", "M", "ALS", 1980},
		{"X_ALP", "058091", "Roma", "Galli", "Sara", "F", "ALP", 1982},
		{"Y_ASC", "058120", "Fiumicino", "Bianchi", "Carlo", "M", "ASC", 1965},
		{"Y_ALS", "058120", "Fiumicino", "Neri", "Anna", "F", "ALS", 1975},
		{"Y_ALP", "058120", "Fiumicino", "Russo", "Luca", "M", "ALP", 1985},
	}
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "Utenti")
	f.SetSheetRow("Utenti", "A1", &[]any{"Codice ISTAT", "Comune", "Codice Fiscale", "Cognome", "Nome", "Sesso",
		"Data di nascita", "Email", "PEC", "Profili", "Smart Card", "Ambiente"})
	for i, p := range people {
		cf := censusgen.MakeCF(p.surname, p.name, p.sex == "F", p.year, 3, 10, "H501", 0)
		env.Setenv(p.v, cf)
		email := fmt.Sprintf("%s.%s@%s.example.it", p.name, p.surname, p.comune)
		f.SetSheetRow("Utenti", fmt.Sprintf("A%d", i+2), &[]any{p.istat, p.comune, cf, p.surname, p.name, p.sex,
			fmt.Sprintf("10/03/%d", p.year), email, "", p.profile, "SI", "PRODUZIONE"})
	}
	f.NewSheet("Postazioni")
	f.SetSheetRow("Postazioni", "A1", &[]any{"Codice ISTAT", "Numero postazioni", "Certificato server"})
	return f.SaveAs(filepath.Join(env.WorkDir, "duecomuni.xlsx"))
}
