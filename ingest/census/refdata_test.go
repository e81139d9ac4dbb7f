package census

import (
	"strings"
	"testing"
	"time"

	"anprsec/codfisc"
	"anprsec/istat"
)

// withCheck completes the first 15 characters of a codice fiscale.
func withCheck(first15 string) string { return first15 + string(codfisc.CheckLetter(first15)) }

// TestRowsAgainstTheReferenceData checks census rows whose codice fiscale
// was built by hand: people born in ceased comuni of several eras, in states
// current and former, in comuni created after 2020; fake state codes and
// codes used outside their period; surnames and names that do and do not
// give the code's letters; the 29th of February; comuni ceased or moved.
func TestRowsAgainstTheReferenceData(t *testing.T) {
	tests := []struct {
		name                          string
		istat, cf, surname, nome, dob string
		code, inMessage               string // code "" = accepted
	}{
		// Birthplaces through history.
		{"Rossano, merged 2018", "058091", withCheck("RSSMRA70E10H579"), "Rossi", "Mario", "10/05/1970", "", ""},
		{"Rossano, omocodia", "058091", withCheck("RSSMRA70E10H57V"), "Rossi", "Mario", "10/05/1970", "", ""},
		{"Rossano after it ceased", "058091", withCheck("RSSMRA19E10H579"), "Rossi", "Mario", "10/05/2019", "CF_LUOGO", "H579 non era in uso alla data di nascita 10/05/2019"},
		{"Acquacanina, merged 2017", "058091", withCheck("RSSMRA55C01A031"), "Rossi", "Mario", "", "", ""},
		{"San Pelagio, 1921-1928", "058091", withCheck("RSSMRA25H01I078"), "Rossi", "Mario", "01/06/1925", "", ""},
		{"San Pelagio long after", "058091", withCheck("RSSMRA60H01I078"), "Rossi", "Mario", "", "CF_LUOGO", "I078"},
		{"Gambugliano, merged 2024", "058091", withCheck("RSSMRA88L20D902"), "Rossi", "Mario", "", "", ""},
		{"Abbasanta while part of another comune", "058091", withCheck("RSSMRA31A10A007"), "Rossi", "Mario", "10/01/1931", "CF_LUOGO", "A007"},
		{"Misiliscemi, created 2021", "058091", withCheck("RSSMRA21C01M432"), "Rossi", "Mario", "01/03/2021", "", ""},
		{"Misiliscemi before it existed", "058091", withCheck("RSSMRA80C01M432"), "Rossi", "Mario", "", "CF_LUOGO", "Misiliscemi dal 20/02/2021"},
		{"Bardello con Malgesso e Bregano, 2023", "058091", withCheck("RSSMRA23M15M433"), "Rossi", "Mario", "15/08/2023", "", ""},
		// Foreign states.
		{"Morocco", "058091", withCheck("RSSMRA85P08Z330"), "Rossi", "Mario", "", "", ""},
		{"Yugoslavia", "058091", withCheck("RSSMRA75A15Z118"), "Rossi", "Mario", "15/01/1975", "", ""},
		{"Yugoslavia after 2003", "058091", withCheck("RSSMRA06A15Z118"), "Rossi", "Mario", "15/01/2006", "CF_LUOGO", "Z118"},
		{"Czechoslovakia", "058091", withCheck("RSSMRA80A15Z105"), "Rossi", "Mario", "", "", ""},
		{"Czechoslovakia after 1992", "058091", withCheck("RSSMRA95A15Z105"), "Rossi", "Mario", "15/01/1995", "CF_LUOGO", "Z105"},
		{"fake state Z854", "058091", withCheck("RSSMRA80A15Z854"), "Rossi", "Mario", "", "CF_LUOGO", "Z854 non è di alcun stato estero"},
		{"fake state Z790", "058091", withCheck("RSSMRA80A15Z790"), "Rossi", "Mario", "", "CF_LUOGO", "Z790"},
		{"unknown comune code", "058091", withCheck("RSSMRA80A15A000"), "Rossi", "Mario", "", "CF_LUOGO", "A000 non è di alcun comune"},
		// Surname and name.
		{"surname differs", "058091", "RSSMRA68A01H501Y", "Esposito", "Mario", "", "CF_NOMINATIVO", `colonna "Cognome"`},
		{"name differs", "058091", "RSSMRA68A01H501Y", "Rossi", "Giuseppe", "", "CF_NOMINATIVO", `il nome "Giuseppe" dà GPP`},
		{"double surname and name", "058091", withCheck("DLCMGR70A41H501"), "De Luca", "Maria Grazia", "", "", ""},
		{"apostrophe and accent", "058091", withCheck("DNGNCL70A01H501"), "D'Angelo", "Nicolò", "", "", ""},
		{"foreign name", "058091", withCheck("MLLZOE90A41Z112"), "Müller", "Zoë", "", "", ""},
		{"short surname", "058091", withCheck("FOXDRA70A01H501"), "Fo", "Dario", "", "", ""},
		// 29 February: 2000 was a leap year, 1900 was not.
		{"29/02/2000", "058091", withCheck("RSSMRA00B29H501"), "Rossi", "Mario", "29/02/2000", "", ""},
		{"29/02/00 without the full date", "058091", withCheck("RSSMRA00B29H501"), "Rossi", "Mario", "", "", ""},
		{"29/02/1900", "058091", withCheck("RSSMRA00B29H501"), "Rossi", "Mario", "29/02/1900", "DATA_NASCITA", ""},
		{"the spreadsheets' 29/02/1900", "058091", withCheck("RSSMRA00B29H501"), "Rossi", "Mario", "60", "DATA_NASCITA", "1900 non era bisestile"},
		// The comune of the row.
		{"comune created 2021", "081025", "RSSMRA68A01H501Y", "Rossi", "Mario", "", "", ""},
		{"comune created 2024", "024128", "RSSMRA68A01H501Y", "Rossi", "Mario", "", "", ""},
		{"comune ceased", "078108", "RSSMRA68A01H501Y", "Rossi", "Mario", "", "COMUNE_CESSATO", "078108 (ROSSANO) non è più in uso dal 31/03/2018: è confluito in 078157 Corigliano-Rossano (CS)"},
		{"comune moved", "041033", "RSSMRA68A01H501Y", "Rossi", "Mario", "", "COMUNE_CESSATO", "il comune ha ora il codice 099030 (Montecopiolo, RN)"},
		{"no comune", "999999", "RSSMRA68A01H501Y", "Rossi", "Mario", "", "ISTAT", "999999 non è un comune italiano"},
	}
	v := &Validator{Comuni: istat.Default(), Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]string{
				ColISTAT: tt.istat, ColCF: tt.cf, ColCognome: tt.surname, ColNome: tt.nome, ColNascita: tt.dob,
				ColEmail: "persona@example.it", ColProfili: "OPERATORE", ColCard: "NO", ColAmbiente: "PRODUZIONE",
			}
			u, code, msg := v.UserFields(fields, 2)
			if tt.code == "" {
				if u == nil {
					t.Fatalf("refused: %s %s", code, msg)
				}
				return
			}
			if u != nil || code != tt.code || !strings.Contains(msg, tt.inMessage) {
				t.Errorf("got %v %s %q, want %s containing %q", u != nil, code, msg, tt.code, tt.inMessage)
			}
		})
	}
}
