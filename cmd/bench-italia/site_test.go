package main

import (
	"os"
	"path/filepath"
	"testing"

	"anprsec/config"
)

// The benchmark sets the key pool, and the mail server in
// the configuration that `anprsec init` writes: a renamed or moved key
// makes it fail at once instead of measuring another set-up.
func TestBenchmarkSettingsReachTheConfiguration(t *testing.T) {
	p := filepath.Join(t.TempDir(), "anprsec.yaml")
	if err := os.WriteFile(p, config.DefaultYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := editConfig(p, map[string]string{"memory_limit: ": defaultMemoryLimit(), "  key_pool: ": "40000", "    tls: ": "none"}); err != nil {
		t.Fatal(err)
	}
	if err := setSMTPAddress(p, "127.0.0.1:2525"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PKI.KeyPool != 40000 || cfg.Mail.SMTP.Address != "127.0.0.1:2525" || cfg.Mail.SMTP.TLS != "none" {
		t.Errorf("key_pool %d, smtp %q tls %q", cfg.PKI.KeyPool, cfg.Mail.SMTP.Address, cfg.Mail.SMTP.TLS)
	}
	if defaultMemoryLimit() == "0" || cfg.MemoryLimit == 0 {
		t.Errorf("memory_limit: the default %q, loaded %v", defaultMemoryLimit(), cfg.MemoryLimit)
	}
	if err := editConfig(p, map[string]string{"  no_such_key: ": "1"}); err == nil {
		t.Error("a key not in the file: no error")
	}
}
