package istat

import (
	"bytes"
	"strings"
	"testing"
)

// archiveHead is the header of the ANPR archive of comuni as published.
const archiveHead = `"ID","DATAISTITUZIONE","DATACESSAZIONE","CODISTAT","CODCATASTALE","DENOMINAZIONE_IT","DENOMTRASLITTERATA","ALTRADENOMINAZIONE","ALTRADENOMTRASLITTERATA","IDPROVINCIA","IDPROVINCIAISTAT","IDREGIONE","IDPREFETTURA","STATO","SIGLAPROVINCIA","FONTE","DATAULTIMOAGG","COD_DENOM"` + "\n"

// smallArchive: Roma in force; Rossano ceased into Corigliano-Rossano;
// Montecopiolo moved to Rimini; Bolzano bilingual; a new comune M999 of 2027
// and Misiliscemi renamed; a row without a Belfiore code and one still to
// be instituted.
const smallArchive = archiveHead +
	`"1","1884-09-11","9999-12-31","058091","H501","ROMA","ROMA",,,"58","058","12","RM","A","RM",,"2016-06-17",` + "\n" +
	`"2","1861-03-17","2018-03-30","078108","H579","ROSSANO","ROSSANO",,,"78","078","18",,"C","CS",,"2018-04-01",` + "\n" +
	`"3","2018-03-31","9999-12-31","078157","M403","CORIGLIANO-ROSSANO","CORIGLIANO-ROSSANO",,,"78","078","18","CS","A","CS",,"2018-04-01",` + "\n" +
	`"4","1998-09-04","2021-06-16","041033","F478","MONTECOPIOLO","MONTECOPIOLO",,,"41","041","11",,"C","PU",,"2021-06-20",` + "\n" +
	`"5","2021-06-17","9999-12-31","099030","F478","MONTECOPIOLO","MONTECOPIOLO",,,"99","099","08","RN","A","RN",,"2021-06-20",` + "\n" +
	`"6","1927-01-12","9999-12-31","021008","A952","BOLZANO","BOLZANO","BOZEN","BOZEN","21","021","04","BZ","A","BZ",,"2016-06-17",` + "\n" +
	`"7","2021-02-20","9999-12-31","081025","M432","MISILISCEMI NUOVA","MISILISCEMI NUOVA",,,"81","081","19","TP","A","TP",,"2027-01-02",` + "\n" +
	`"8","2027-01-01","9999-12-31","081026","M999","PACECO ALTA","PACECO ALTA",,,"81","081","19","TP","A","TP",,"2027-01-02",` + "\n" +
	`"9","1861-03-17","1927-01-11","069803","ND","SENZA CODICE","SENZA CODICE",,,"69","069","13",,"C","CH",,"2016-06-17",` + "\n" +
	`"10","2030-01-01","9999-12-31","081027","M998","DA ISTITUIRE","DA ISTITUIRE",,,"81","081","19",,"D","TP",,"2027-01-02",` + "\n"

func TestReadArchive(t *testing.T) {
	p, err := ReadArchive(strings.NewReader("\ufeff"+smallArchive), DefaultPlaces())
	if err != nil {
		t.Fatal(err)
	}
	if p.Date() != "2027-01-02" {
		t.Errorf("Date() = %q, want the latest date in the file", p.Date())
	}
	comuni, ceased, states, _ := p.Counts()
	if comuni != 6 || ceased != 1 || states != 216 {
		t.Errorf("Counts() = %d comuni, %d ceased, %d states; want 6, 1 and the 216 of the embedded table", comuni, ceased, states)
	}
	if pl, err := p.Birthplace("H501"); err != nil || pl.Name != "Roma" || pl.Region != "Lazio" {
		t.Errorf("H501 = %+v, %v; want the embedded spelling Roma, in Lazio", pl, err)
	}
	if pl, _ := p.Birthplace("A952"); pl.Name != "Bolzano/Bozen" {
		t.Errorf("A952 named %q", pl.Name)
	}
	if pl, _ := p.Birthplace("M999"); pl.Name != "PACECO ALTA" || pl.ISTAT != "081026" {
		t.Errorf("M999 = %+v", pl)
	}
	if got := p.Code("M998"); got != nil {
		t.Errorf("a comune still to be instituted was read: %v", got)
	}
	if s, ok := p.Successor(p.ISTAT("078108")[0]); !ok || s.Belfiore != "M403" {
		t.Errorf("Successor(Rossano) = %v, %v", s, ok)
	}
	tab, err := FromPlaces(p)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := tab.Lookup("099030"); !ok || c.Belfiore != "F478" || c.Province != "099" {
		t.Errorf("Lookup(099030) = %+v, %v", c, ok)
	}
}

func TestDiffShowsWhatAnUpdateChanges(t *testing.T) {
	cur, err := ReadArchive(strings.NewReader(smallArchive), DefaultPlaces())
	if err != nil {
		t.Fatal(err)
	}
	old := cur.withCode("M999", nil)            // before M999 was created
	old = old.withCode("M432", DefaultPlaces()) // Misiliscemi as embedded
	old = old.withCode("F478", []Place{{Belfiore: "F478", ISTAT: "041033", Name: "Montecopiolo", Sigla: "PU", From: day("1998-09-04")}})
	var got []string
	for _, c := range Diff(old, cur) {
		got = append(got, c.Kind+" "+c.New.Belfiore)
	}
	want := "codice ISTAT F478|provincia F478|rinominato M432|nuovo M999"
	if strings.Join(got, "|") != want {
		t.Errorf("Diff = %s\nwant   %s", strings.Join(got, "|"), want)
	}
	if d := Diff(cur, old); len(d) != 4 || d[3].Kind != "cessato" || !strings.Contains(d[3].String(), "M999") {
		t.Errorf("Diff backwards = %v", d)
	}
	if d := Diff(cur, cur); len(d) != 0 {
		t.Errorf("Diff of a table with itself = %v", d)
	}
}

// withCode returns a copy of p whose periods of code are ps (the periods of
// that code in ps's table when ps is a *Places, none when nil).
func (p *Places) withCode(code string, ps any) *Places {
	var repl []Place
	switch v := ps.(type) {
	case *Places:
		repl = v.Code(code)
	case []Place:
		repl = v
	}
	q := &Places{date: p.date}
	for _, pl := range p.all {
		if pl.Belfiore != code {
			q.all = append(q.all, pl)
		}
	}
	q.all = append(q.all, repl...)
	sortPlaces(q.all)
	q.index()
	return q
}

func TestReadArchiveErrorsNameTheLine(t *testing.T) {
	row := func(istat, code, from, to string) string {
		return `"1","` + from + `","` + to + `","` + istat + `","` + code + `","ROMA","ROMA",,,"58","058","12","RM","A","RM",,"2016-06-17",` + "\n"
	}
	tests := []struct{ name, src, want string }{
		{"empty", "", "no header"},
		{"not an archive", "a,b,c\n1,2,3\n", "line 1: not an ANPR archive of comuni: no column DATAISTITUZIONE"},
		{"no rows", archiveHead, "holds no comuni"},
		{"bad istat", archiveHead + row("058091", "H501", "1884-09-11", "9999-12-31") + row("58O91", "H502", "1884-09-11", "9999-12-31"), `line 3: H502: CODISTAT "58O91"`},
		{"state code", archiveHead + row("058091", "Z330", "1884-09-11", "9999-12-31"), `line 2: CODCATASTALE "Z330"`},
		{"bad date", archiveHead + row("058091", "H501", "11/09/1884", "9999-12-31"), `line 2: H501: DATAISTITUZIONE "11/09/1884"`},
		{"ends before", archiveHead + row("058091", "H501", "1884-09-11", "1800-01-01"), `line 2: H501: DATACESSAZIONE "1800-01-01"`},
		{"bad quotes", archiveHead + `"1,"x` + "\n", "line"},
		{"latin-1", archiveHead + "\"1\",\"1884-09-11\",\"9999-12-31\",\"001001\",\"A074\",\"AGLI\xc8\"\n", "not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadArchive(strings.NewReader(tt.src), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "istat: ") {
				t.Errorf("ReadArchive error %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzReadArchive(f *testing.F) {
	f.Add([]byte(smallArchive))
	f.Add([]byte(archiveHead + `"1","1884-09-11","9999-12-31","058091","H501","ROMA",,,,,,"12",,"A","RM",,,` + "\n"))
	f.Add([]byte("DATAISTITUZIONE,DATACESSAZIONE,CODISTAT,CODCATASTALE,DENOMINAZIONE_IT,ALTRADENOMINAZIONE,IDREGIONE,STATO,SIGLAPROVINCIA,DATAULTIMOAGG\n2000-01-01,9999-12-31,001001,A074,X,,01,A,TO,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadArchive(bytes.NewReader(data), nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "istat: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if p.Len() == 0 {
			t.Fatal("no error and no places")
		}
		for _, pl := range p.All() {
			if !isBelfiore(pl.Belfiore) || pl.Foreign() || len(pl.ISTAT) != 6 || pl.Name == "" || (!pl.InForce() && pl.Until.Before(pl.From)) {
				t.Fatalf("bad place %+v", pl)
			}
			if got := p.Code(pl.Belfiore); len(got) == 0 {
				t.Fatalf("Code(%s) finds nothing", pl.Belfiore)
			}
		}
		var buf bytes.Buffer
		if err := WritePlaces(&buf, p); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadPlaces(&buf); err != nil {
			t.Fatalf("a table read from an archive does not load back: %v", err)
		}
	})
}
