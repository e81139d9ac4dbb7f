package istat

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestEmbeddedPlacesCounts(t *testing.T) {
	p := DefaultPlaces()
	comuni, ceased, states, ceasedStates := p.Counts()
	if comuni != 7896 || ceased != 1967 || states != 216 || ceasedStates != 6 {
		t.Errorf("Counts() = %d comuni, %d ceased, %d states, %d ceased states; want 7896, 1967, 216, 6", comuni, ceased, states, ceasedStates)
	}
	if comuni != Default().Len() {
		t.Errorf("%d comuni in force in the history, %d in Default()", comuni, Default().Len())
	}
	if p.Date() != "2026-05-14" {
		t.Errorf("Date() = %q", p.Date())
	}
	if DefaultPlaces() != p || Default().Places() != p {
		t.Error("the embedded history is not shared")
	}
}

// TestBirthplaceThroughHistory checks codes of comuni ceased in several
// eras, of comuni created after 2020, of states current and former, and
// fake state codes, at dates in and out of their periods.
func TestBirthplaceThroughHistory(t *testing.T) {
	tests := []struct {
		code, born string
		want       string // name of the period found, or the error's kind
	}{
		// Ceased comuni: the code stays in the codice fiscale for life.
		{"H579", "1970-05-10", "ROSSANO"},            // merged into Corigliano-Rossano, 2018
		{"H579", "2018-03-30", "ROSSANO"},            // its last day
		{"H579", "2018-03-31", "ROSSANO"},            // the day of the change
		{"H579", "2018-04-01", "out"},                // a day later
		{"A031", "1950-01-01", "ACQUACANINA"},        // merged into Valfornace, 2017
		{"A031", "2017-01-02", "out"},                // after
		{"I078", "1925-06-01", "SAN PELAGIO"},        // 1921-1928, merged into Duino Aurisina
		{"I078", "1960-06-01", "out"},                // long after
		{"I078", "1920-06-01", "out"},                // before it was Italian
		{"D902", "1990-10-10", "GAMBUGLIANO"},        // merged into Sovizzo, 2024
		{"A134", "1975-01-31", "ALBAREDO ARNABOLDI"}, // merged into Campospinoso Albaredo, 2023
		{"A007", "1931-01-01", "out"},                // Abbasanta, part of another comune 1927-1934
		{"A007", "1960-01-01", "Abbasanta"},          // in Cagliari province then
		{"A007", "1990-01-01", "Abbasanta"},          // in Oristano province
		{"H501", "1950-02-28", "Roma"},               // in force
		{"G273", "1980-01-01", "Palermo"},            // in force
		{"M432", "2021-02-20", "Misiliscemi"},        // created 2021
		{"M432", "2021-02-19", "Misiliscemi"},        // the day of the change
		{"M432", "1980-01-01", "out"},                // before it existed
		{"M433", "2023-01-01", "Bardello con Malgesso e Bregano"},
		{"M433", "2000-01-01", "out"},
		{"M434", "2023-06-01", "Moransengo-Tonengo"},
		{"M436", "2024-01-22", "Sovizzo"}, // new code of Sovizzo, 2024
		{"M436", "1990-01-01", "out"},
		{"I879", "1990-01-01", "SOVIZZO"}, // its old code
		// Foreign states.
		{"Z330", "1985-03-03", "Marocco"},
		{"Z118", "1970-01-01", "Repubblica Socialista Federale di Jugoslavia"},
		{"Z118", "2003-12-31", "Repubblica Socialista Federale di Jugoslavia"},
		{"Z118", "2005-01-01", "out"},
		{"Z105", "1980-01-01", "Cecoslovacchia"},
		{"Z105", "1995-01-01", "out"},
		{"Z111", "1985-01-01", "Repubblica Democratica Tedesca"},
		{"Z135", "1991-12-31", "Unione Sovietica"},
		{"Z135", "1993-01-01", "out"},
		{"Z149", "1975-01-01", "Croazia"}, // no start date: codes of today's states count from 1861
		{"Z154", "1980-01-01", "Federazione russa"},
		{"Z854", "1980-01-01", "unknown"},
		{"Z790", "1980-01-01", "unknown"},
		{"Z587", "1980-01-01", "unknown"},
		{"Z999", "1980-01-01", "unknown"},
		{"A000", "1980-01-01", "unknown"},
		{"Y999", "1980-01-01", "unknown"},
	}
	p := DefaultPlaces()
	for _, tt := range tests {
		got, err := p.Birthplace(tt.code, day(tt.born))
		switch tt.want {
		case "out":
			if !errors.Is(err, ErrOutOfPeriod) {
				t.Errorf("Birthplace(%s, %s) = %v, %v; want ErrOutOfPeriod", tt.code, tt.born, got, err)
			} else if !strings.Contains(err.Error(), "non era in uso alla data di nascita") {
				t.Errorf("Birthplace(%s, %s): message %q", tt.code, tt.born, err)
			}
		case "unknown":
			if !errors.Is(err, ErrUnknownPlace) {
				t.Errorf("Birthplace(%s, %s) = %v, %v; want ErrUnknownPlace", tt.code, tt.born, got, err)
			}
		default:
			if err != nil || got.Name != tt.want || got.Belfiore != tt.code {
				t.Errorf("Birthplace(%s, %s) = %v, %v; want %s", tt.code, tt.born, got, err, tt.want)
			}
		}
	}
}

func TestBirthplaceTriesEveryDateTheCodeAllows(t *testing.T) {
	p := DefaultPlaces()
	// A codice fiscale with year 20 born in Rossano: 1920, not 2020.
	got, err := p.Birthplace("H579", day("2020-05-01"), day("1920-05-01"))
	if err != nil || got.ISTAT != "078108" {
		t.Errorf("Birthplace(H579, 2020 or 1920) = %v, %v", got, err)
	}
	_, err = p.Birthplace("M432", day("1921-05-01"), day("2020-05-01"))
	var be *BirthplaceError
	if !errors.As(err, &be) || be.Born != day("2020-05-01") || len(be.Periods) != 1 {
		t.Fatalf("Birthplace(M432, 1921 or 2020) = %v", err)
	}
	if want := "il codice M432 non era in uso alla data di nascita 01/05/2020 (comune: Misiliscemi dal 20/02/2021, in vigore)"; err.Error() != want {
		t.Errorf("message %q,\nwant %q", err, want)
	}
	if _, err := p.Birthplace("Z854", day("1980-01-01")); err == nil || err.Error() != "il codice Z854 non è di alcun stato estero" {
		t.Errorf("Birthplace(Z854) error %v", err)
	}
}

func TestSuccessorOfACeasedComune(t *testing.T) {
	tests := []struct {
		istat, want string // want: Belfiore code and ISTAT code of the successor, or ""
	}{
		{"078108", "M403 078157"}, // Rossano -> Corigliano-Rossano, a new comune
		{"043001", "M382 043058"}, // Acquacanina -> Valfornace
		{"041033", "F478 099030"}, // Montecopiolo moved from Pesaro e Urbino to Rimini
		{"024044", "M436 024128"}, // Gambugliano -> Sovizzo
		{"024103", "M436 024128"}, // the old Sovizzo -> the new one
		{"032804", "D383 032001"}, // San Pelagio (1928) -> Duino Aurisina
		{"058091", "H501 058091"}, // Roma: in force, itself
	}
	p := DefaultPlaces()
	for _, tt := range tests {
		hist := p.ISTAT(tt.istat)
		if len(hist) == 0 {
			t.Fatalf("no period of ISTAT code %s", tt.istat)
		}
		got, ok := p.Successor(hist[len(hist)-1])
		if s := got.Belfiore + " " + got.ISTAT; !ok || s != tt.want || !got.InForce() {
			t.Errorf("Successor(%s %s) = %q, %v; want %q", tt.istat, hist[len(hist)-1].Name, s, ok, tt.want)
		}
	}
}

func TestSearchByCodeOrName(t *testing.T) {
	p := DefaultPlaces()
	if got := p.Search("h579", 0); len(got) != 1 || got[0].Name != "ROSSANO" {
		t.Errorf("Search(h579) = %v", got)
	}
	if got := p.Search("78157", 0); len(got) != 1 || got[0].Belfiore != "M403" {
		t.Errorf("Search(78157) = %v", got)
	}
	got := p.Search("rossano", 0)
	var codes []string
	for _, pl := range got {
		codes = append(codes, pl.Belfiore)
	}
	if s := strings.Join(codes, " "); !strings.Contains(s, "H579") || !strings.Contains(s, "M403") {
		t.Errorf("Search(rossano) = %s", s)
	}
	if got := p.Search("jugoslavia", 0); len(got) != 1 || got[0].Belfiore != "Z118" || got[0].InForce() {
		t.Errorf("Search(jugoslavia) = %v", got)
	}
	if got := p.Search("a", 3); len(got) != 3 {
		t.Errorf("Search(a, 3) gave %d places", len(got))
	}
	if got := p.Search(" ' ", 0); got != nil {
		t.Errorf("Search of nothing = %v", got)
	}
}

func TestPlaceWords(t *testing.T) {
	pl, _ := DefaultPlaces().Birthplace("H579")
	if got, want := pl.String(), "H579 ROSSANO (CS) dal 17/03/1861 al 30/03/2018"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	pl, _ = DefaultPlaces().Birthplace("Z330")
	if got, want := pl.String(), "Z330 Marocco (stato estero) dal 01/01/1861, in vigore"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestLoadPlacesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePlaces(&buf, DefaultPlaces()); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPlaces(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != DefaultPlaces().Len() || p.Date() != DefaultPlaces().Date() {
		t.Fatalf("round trip: %d places of %s", p.Len(), p.Date())
	}
	for i, pl := range p.All() {
		if want := DefaultPlaces().all[i]; pl != want {
			t.Fatalf("round trip changed %v into %v", want, pl)
		}
	}
}

func TestLoadPlacesErrors(t *testing.T) {
	const h = "belfiore;istat;dal;al;sigla;regione;nome\n"
	tests := []struct{ name, src, want string }{
		{"empty", "", "empty"},
		{"not places", "istat;nome\n", "line 1: not a table of places"},
		{"no rows", h, "empty"},
		{"bad code", h + "H5O1;058091;1884-09-11;;RM;12;Roma\n", `line 2: code "H5O1"`},
		{"state with ISTAT", h + "Z330;058091;1861-01-01;;MA;;Marocco\n", "line 2: Z330: ISTAT code"},
		{"bad date", h + "H501;058091;11/09/1884;;RM;12;Roma\n", `line 2: H501: start "11/09/1884"`},
		{"ends before", h + "H501;058091;1884-09-11;1880-01-01;RM;12;Roma\n", `line 2: H501: end "1880-01-01"`},
		{"bad region", h + "H501;058091;1884-09-11;;RM;99;Roma\n", `line 2: H501: region "99"`},
		{"unsorted", h + "H501;058091;1884-09-11;;RM;12;Roma\nA001;028001;1866-11-19;;PD;05;Abano\n", "line 3: A001: the places are not sorted"},
		{"short row", h + "H501;058091\n", "line 2: 2 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPlaces(strings.NewReader(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "istat: ") {
				t.Errorf("LoadPlaces error %v, want %q", err, tt.want)
			}
		})
	}
}

// BenchmarkBirthplace measures the check of one codice fiscale's birthplace
// against the history: one map lookup and a scan of the code's periods.
func BenchmarkBirthplace(b *testing.B) {
	p := DefaultPlaces()
	codes := []string{"H501", "H579", "Z118", "M432", "A007", "Z854"}
	born := []time.Time{day("2070-05-01"), day("1970-05-01")}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p.Birthplace(codes[i%len(codes)], born...)
	}
}
