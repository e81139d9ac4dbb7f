package main

import (
	"encoding/csv"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"anprsec/istat"
)

// regionCodes are the ISTAT codes of the regions, by name.
var regionCodes = map[string]string{
	"Piemonte": "01", "Valle d'Aosta/Vallée d'Aoste": "02", "Lombardia": "03", "Trentino-Alto Adige/Südtirol": "04",
	"Veneto": "05", "Friuli-Venezia Giulia": "06", "Liguria": "07", "Emilia-Romagna": "08", "Toscana": "09",
	"Umbria": "10", "Marche": "11", "Lazio": "12", "Abruzzo": "13", "Molise": "14", "Campania": "15",
	"Puglia": "16", "Basilicata": "17", "Calabria": "18", "Sicilia": "19", "Sardegna": "20",
}

// anprarchivio FILE DATE
//
// writes FILE, an ANPR archive of comuni in its published layout, holding
// the embedded table's comuni with data of DATE and two changes on DATE: a
// new comune M999 "NUOVO COMUNE" (081099, TP), and Misiliscemi M432 moved
// from ISTAT code 081025 to 081100.
func cmdAnprArchive(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: anprarchivio FILE DATE")
	}
	day, err := time.Parse(time.DateOnly, args[1])
	ts.Check(err)
	before := day.AddDate(0, 0, -1).Format(time.DateOnly)
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	w := csv.NewWriter(f)
	w.Write(strings.Split("ID,DATAISTITUZIONE,DATACESSAZIONE,CODISTAT,CODCATASTALE,DENOMINAZIONE_IT,DENOMTRASLITTERATA,ALTRADENOMINAZIONE,ALTRADENOMTRASLITTERATA,IDPROVINCIA,IDPROVINCIAISTAT,IDREGIONE,IDPREFETTURA,STATO,SIGLAPROVINCIA,FONTE,DATAULTIMOAGG,COD_DENOM", ","))
	id := 0
	row := func(from, until, istatCode, code, name, region, sigla string) {
		id++
		it, alt, _ := strings.Cut(name, "/")
		state := "C"
		if until == "9999-12-31" {
			state = "A"
		}
		w.Write([]string{strconv.Itoa(id), from, until, istatCode, code, strings.ToUpper(it), strings.ToUpper(it), strings.ToUpper(alt), strings.ToUpper(alt),
			istatCode[:3], istatCode[:3], region, "", state, sigla, "", args[1], ""})
	}
	for _, p := range istat.DefaultPlaces().All() {
		if p.Foreign() {
			continue
		}
		until := "9999-12-31"
		if !p.InForce() {
			until = p.Until.Format(time.DateOnly)
		}
		if p.Belfiore == "M432" && p.InForce() {
			row(p.From.Format(time.DateOnly), before, p.ISTAT, p.Belfiore, p.Name, regionCodes[p.Region], p.Sigla)
			row(args[1], "9999-12-31", "081100", p.Belfiore, p.Name, regionCodes[p.Region], p.Sigla)
			continue
		}
		row(p.From.Format(time.DateOnly), until, p.ISTAT, p.Belfiore, p.Name, regionCodes[p.Region], p.Sigla)
	}
	row(args[1], "9999-12-31", "081099", "M999", "Nuovo Comune", "19", "TP")
	w.Flush()
	ts.Check(w.Error())
	ts.Check(f.Close())
}
