package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControlSocketAndGroup(t *testing.T) {
	d := Default("/srv/anprsec")
	if got := d.Path(d.Control.Socket); got != "/srv/anprsec/var/run/anprsec.sock" {
		t.Errorf("default control.socket = %q, want var/run/anprsec.sock under the config's folder", got)
	}
	if d.Control.Group != "" {
		t.Errorf("default control.group = %q, want empty (the daemon's group)", d.Control.Group)
	}
	long := "/" + strings.Repeat("d", 120) + "/s.sock"
	for _, tc := range []struct {
		yaml string
		want string // "" = accepted, else a piece of the error
	}{
		{"control:\n  socket: /run/anprsec/anprsec.sock\n  group: anprsec-op\n", ""},
		{"control:\n  group: operatori.anpr_1\n", ""},
		{"control:\n  socket: \"\"\n", "control.socket è vuoto"},
		{"control:\n  socket: " + long + "\n", "ne ammette al massimo 107"},
		{"control:\n  group: \"-x\"\n", "control.group"},
		{"control:\n  group: \"anpr op\"\n", "control.group"},
		{"control:\n  group: \"../etc\"\n", "control.group"},
	} {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		os.WriteFile(p, []byte(tc.yaml), 0o600)
		_, err := Load(p, true)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one saying %q", tc.yaml, err, tc.want)
		}
	}
}
