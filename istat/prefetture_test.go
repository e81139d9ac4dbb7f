package istat

import (
	"slices"
	"strings"
	"testing"
)

func TestPrefettura(t *testing.T) {
	tab := Default()
	tests := []struct {
		code, want string
		ok         bool
	}{
		{"058091", "058", true}, // Roma
		{"015146", "015", true}, // Milano
		{"007003", "007", true}, // Aosta: the Region's president
		{"021008", "021", true}, // Bolzano: Commissariato del Governo
		{"022205", "022", true}, // Trento: Commissariato del Governo
		{"092009", "092", true}, // Cagliari
		{"111001", "092", true}, // Arbus, Sud Sardegna -> Cagliari
		{"090064", "090", true}, // Sassari
		{"108033", "108", true}, // Monza
		{"110001", "110", true}, // Andria
		{"058", "058", true},
		{"111", "092", true},
		{"104", "090", true}, // Olbia-Tempio, abolished in 2016
		{"107", "092", true}, // Carbonia-Iglesias, abolished in 2016
		{"999999", "", false},
		{"058999", "", false}, // not a comune
		{"999", "", false},
		{"58091", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := tab.Prefettura(tt.code)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Prefettura(%q) = %q, %v; want %q, %v", tt.code, got, ok, tt.want, tt.ok)
		}
	}
	if u := tab.Unmapped(); len(u) != 0 {
		t.Errorf("comuni without prefettura: %v", u)
	}
}

func TestProvincesOf(t *testing.T) {
	tab := Default()
	tests := map[string][]string{
		"092": {"092", "111"},
		"090": {"090"},
		"007": {"007"},
		"058": {"058"},
		"111": nil,
		"104": nil,
		"":    nil,
	}
	for ppp, want := range tests {
		if got := tab.ProvincesOf(ppp); !slices.Equal(got, want) {
			t.Errorf("ProvincesOf(%q) = %v, want %v", ppp, got, want)
		}
	}
	pp := tab.Prefetture()
	// 107 provinces in the 2020 list, Sud Sardegna has no prefettura of its own.
	if len(pp) != 106 || slices.Contains(pp, "111") || !slices.Contains(pp, "092") || !slices.IsSorted(pp) {
		t.Errorf("Prefetture() = %d codes %v", len(pp), pp)
	}
}

func TestWithPrefetture(t *testing.T) {
	base := Default()
	tab, err := base.WithPrefetture(strings.NewReader(
		"# test table\ncodice;prefettura\n058;058\n111;092\n111001;095\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != base.Len() {
		t.Error("WithPrefetture lost comuni")
	}
	checks := map[string]string{"058091": "058", "111001": "095", "111002": "092", "015146": ""}
	for code, want := range checks {
		got, ok := tab.Prefettura(code)
		if got != want || ok != (want != "") {
			t.Errorf("Prefettura(%s) = %q, %v; want %q", code, got, ok, want)
		}
	}
	if got, _ := base.Prefettura("015146"); got != "015" {
		t.Error("WithPrefetture changed the original table")
	}
	if u := tab.Unmapped(); len(u) != base.Len()-121-107 {
		t.Errorf("Unmapped() = %d comuni", len(u))
	}
	if got := tab.ProvincesOf("092"); !slices.Equal(got, []string{"111"}) {
		t.Errorf("ProvincesOf(092) = %v", got)
	}

	bad := []struct{ src, want string }{
		{"", "empty"},
		{"codice;ufficio\n058;Roma\n", `line 1: the header needs the columns "codice" and "prefettura"`},
		{"codice;prefettura\n58;058\n", `line 2: codice "58"`},
		{"codice;prefettura\n058;58\n", `line 2: prefettura "58" of 058`},
		{"# c\ncodice;prefettura\n058;058\n\n058;059\n", "line 5: codice 058 is already on line 3"},
		{"codice;prefettura\n058091;058\n", "maps no province"},
	}
	for _, tt := range bad {
		_, err := base.WithPrefetture(strings.NewReader(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "istat: prefetture: ") {
			t.Errorf("WithPrefetture(%q) error = %v, want %q", tt.src, err, tt.want)
		}
	}
}
