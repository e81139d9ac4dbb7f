package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsAddress(t *testing.T) {
	if got := Default("/x").Metrics.Address; got != "127.0.0.1:9464" {
		t.Errorf("default metrics.address = %q, want 127.0.0.1:9464", got)
	}
	for _, tc := range []struct {
		addr string
		want string // "" = accepted, else a piece of the error
	}{
		{"127.0.0.1:9464", ""},
		{"127.0.0.2:80", ""},
		{"[::1]:9464", ""},
		{"localhost:9464", ""},
		{"127.0.0.1:0", ""},
		{"", ""}, // disabled
		{"0.0.0.0:9464", "non è un indirizzo di loopback"},
		{"192.168.1.10:9464", "non è un indirizzo di loopback"},
		{"[::]:9464", "non è un indirizzo di loopback"},
		{"example.org:9464", "non è un indirizzo di loopback"},
		{":9464", "tutte le interfacce"},
		{"127.0.0.1", "serve host:porta"},
		{"127.0.0.1:http", "non è un numero"},
		{"127.0.0.1:70000", "non è un numero"},
	} {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		os.WriteFile(p, []byte("metrics:\n  address: \""+tc.addr+"\"\n"), 0o600)
		c, err := Load(p, true)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("metrics.address %q: %v", tc.addr, err)
		case tc.want == "" && c.Metrics.Address != tc.addr:
			t.Errorf("metrics.address %q loaded as %q", tc.addr, c.Metrics.Address)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "metrics.address")):
			t.Errorf("metrics.address %q: error %v, want one naming metrics.address and saying %q", tc.addr, err, tc.want)
		}
	}
}
