package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegistroDestinatariAreAddresses: registro.destinatari is empty by
// default, takes a list of addresses (with or without a name), refuses
// anything that is not one, and the registro job has a daily schedule.
func TestRegistroDestinatariAreAddresses(t *testing.T) {
	c := Default("/srv/anprsec")
	if len(c.Registro.Destinatari) != 0 || c.Schedules["registro"] != "45 5 * * *" {
		t.Errorf("defaults: destinatari %q, schedule %q", c.Registro.Destinatari, c.Schedules["registro"])
	}
	load := func(yaml string) (*Config, error) {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p, true)
	}
	c, err := load("registro:\n  destinatari:\n    - revisore@example.it\n    - \"Archivio <archivio@example.it>\"\n")
	if err != nil || len(c.Registro.Destinatari) != 2 || c.Registro.Destinatari[1] != "Archivio <archivio@example.it>" {
		t.Errorf("two addresses: %+v, %v", c, err)
	}
	for _, bad := range []string{"registro:\n  destinatari: [revisore]\n", "registro:\n  destinatari: [\"\"]\n", "registro:\n  destinatari: [a@b.it, \"<x\"]\n"} {
		if _, err := load(bad); err == nil || !strings.Contains(err.Error(), "registro.destinatari") {
			t.Errorf("%q: err %v, want one about registro.destinatari", bad, err)
		}
	}
	if _, err := load("registro:\n  destinatari: revisore@example.it\n"); err == nil || !strings.Contains(err.Error(), "riga 2") {
		t.Errorf("a single address, not a list: err %v, want one at line 2", err)
	}
}
