package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c := Default("/srv/anprsec")
	if c.Drop.Type != "local" || c.Drop.Settle != time.Minute || c.Drop.MaxFileSize != 64<<20 || c.Timezone != "Europe/Rome" {
		t.Errorf("defaults = %+v", c.Drop)
	}
	if c.PKI.RevokeGrace != 24*time.Hour || c.PKI.CRLValidity != 25*time.Hour {
		t.Errorf("pki.revoke_grace = %s, pki.crl_validity = %s", c.PKI.RevokeGrace, c.PKI.CRLValidity)
	}
	if c.Richieste.ScanPerRun != 800 || c.Richieste.HotWindow != 24*time.Hour {
		t.Errorf("richieste.scan_per_run = %d, richieste.hot_window = %s", c.Richieste.ScanPerRun, c.Richieste.HotWindow)
	}
	if got := c.Path(c.Keys.Store); got != "/srv/anprsec/var/keys/store.key" {
		t.Errorf("store key path = %s", got)
	}
	for _, job := range []string{"ingest-censimento", "certificati", "export-audit", "scadenze"} {
		if c.Schedules[job] == "" {
			t.Errorf("no default schedule for %s", job)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1024", 1024, true}, {"64MiB", 64 << 20, true}, {"1GiB", 1 << 30, true}, {"10MB", 10e6, true},
		{"5KiB", 5 << 10, true}, {"12XB", 0, false}, {"MiB", 0, false}, {"-1", 0, false},
	} {
		got, err := ParseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"drop:\n  setle: 0s\n", `chiave "setle" sconosciuta`},
		{"timezone: Mars/Olympus\n", "timezone"},
		{"drop:\n  type: ftp\n", "drop.type"},
		{"drop:\n  max_file_size: 12XB\n", "unità \"XB\" sconosciuta"},
		{"drop:\n  settle: soon\n", "riga 2: `soon` non è una durata"},
		{"census:\n  chunk_rows: 0\n", "chunk_rows"},
		{"pki:\n  revoke_grace: -1h\n", "pki.revoke_grace"},
		{"pki:\n  revoke_grace: presto\n", "`presto` non è una durata"},
		{"pki:\n  crl_validity: 1h\n", "pki.crl_validity"},
		{"pki:\n  crl_validity: 30m\n", "pki.crl_validity"},
		{"pki:\n  ocsp_url: ldap://pki.example/ocsp\n", "pki.ocsp_url"},
		{"pki:\n  crl_url: /crl/anprsec.crl\n", "URL http:// assoluto"},
		{"pki:\n  ocsp_url: http://pki.example/ocsp?x=1\n", "niente query"},
		{"pki:\n  crl_url: http://a.example/p\n  ca_issuers_url: http://b.example/p\n", "stesso percorso"},
		{"pki:\n  http_address: pki.example\n", "pki.http_address"},
		{"pki:\n  ocsp_validity: 30s\n", "pki.ocsp_validity"},
		{"pki:\n  ocsp_nonce_rate: -1\n", "pki.ocsp_nonce_rate"},
		{"pki:\n  http_address: \":https\"\n", "pki.http_address"},
		{"richieste:\n  scan_per_run: -1\n", "richieste.scan_per_run"},
		{"richieste:\n  hot_window: -1h\n", "richieste.hot_window"},
	} {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		os.WriteFile(p, []byte(tc.yaml), 0o600)
		_, err := Load(p, true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) = %v, want an error containing %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "struct {") {
			t.Errorf("Load(%q) error shows Go types: %v", tc.yaml, err)
		}
	}
}

func TestLoadOverridesOneSchedule(t *testing.T) {
	p := filepath.Join(t.TempDir(), "anprsec.yaml")
	os.WriteFile(p, []byte("schedules:\n  certificati: \"*/10 * * * *\"\n"), 0o600)
	c, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Schedules["certificati"] != "*/10 * * * *" || c.Schedules["ingest-censimento"] != "* * * * *" {
		t.Errorf("schedules = %v", c.Schedules)
	}
}

func TestLoadPKIDurations(t *testing.T) {
	p := filepath.Join(t.TempDir(), "anprsec.yaml")
	os.WriteFile(p, []byte("pki:\n  revoke_grace: 0s\n  crl_validity: 2h\n"), 0o600)
	c, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.PKI.RevokeGrace != 0 || c.PKI.CRLValidity != 2*time.Hour {
		t.Errorf("pki.revoke_grace = %s, pki.crl_validity = %s", c.PKI.RevokeGrace, c.PKI.CRLValidity)
	}
}

// TestUnknownKeyMessageHasNoGoTypeLeftovers: a mistyped key in a section
// that holds a sub-section (drop: sftp, mail: smtp) gets a message that
// names the key and ends with the hint, in words an operator understands
// (docs/architecture.md): no tail of a Go struct type (`"yaml:\"sftp\"" }`)
// is left in it.
func TestUnknownKeyMessageHasNoGoTypeLeftovers(t *testing.T) {
	for _, yml := range []string{
		"drop:\n  setle: 0s\n",
		"mail:\n  fromm: x@example.it\n",
	} {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p, true)
		if err == nil {
			t.Fatalf("Load(%q): no error", yml)
		}
		msg := err.Error()
		if !strings.HasSuffix(msg, "(vedere la configurazione commentata scritta da anprsec init)") ||
			strings.Contains(msg, `yaml:\"`) || strings.Contains(msg, "}") {
			t.Errorf("Load(%q) = %q: the operator sees leftovers of a Go struct type", yml, msg)
		}
	}
}

// TestManifestSignaturesAreRequiredByDefault: cards.require_signature is on
// unless a config turns it off (docs/rules.md#manifests); a config that
// does not name it keeps it on.
func TestManifestSignaturesAreRequiredByDefault(t *testing.T) {
	if !Default("/srv/anprsec").Cards.RequireSignature {
		t.Error("cards.require_signature is off by default")
	}
	dir := t.TempDir()
	for yaml, want := range map[string]bool{
		"cards:\n  order_max: 10\n":            true,
		"cards:\n  require_signature: false\n": false,
	} {
		p := filepath.Join(dir, "anprsec.yaml")
		os.WriteFile(p, []byte(yaml), 0o600)
		c, err := Load(p, true)
		if err != nil {
			t.Fatal(err)
		}
		if c.Cards.RequireSignature != want {
			t.Errorf("%q: require_signature %v, want %v", yaml, c.Cards.RequireSignature, want)
		}
	}
}

func TestLoadRevocationDiscovery(t *testing.T) {
	p := filepath.Join(t.TempDir(), "anprsec.yaml")
	os.WriteFile(p, []byte("pki:\n  crl_url: http://pki.example.it/crl/anprsec.crl\n  ocsp_url: https://pki.example.it/ocsp\n  http_address: \":8080\"\n"), 0o600)
	c, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.PKI.CRLURL != "http://pki.example.it/crl/anprsec.crl" || c.PKI.OCSPURL != "https://pki.example.it/ocsp" || c.PKI.CAIssuersURL != "" || c.PKI.HTTPAddress != ":8080" {
		t.Errorf("pki = %+v", c.PKI)
	}
	if d := Default("/srv"); d.PKI.OCSPValidity != time.Hour || d.PKI.OCSPNonceRate != 50 {
		t.Errorf("pki.ocsp_validity %s, pki.ocsp_nonce_rate %g", d.PKI.OCSPValidity, d.PKI.OCSPNonceRate)
	}
	if d := Default("/srv"); d.PKI.CRLURL != "" || d.PKI.OCSPURL != "" || d.PKI.CAIssuersURL != "" || d.PKI.HTTPAddress != "" {
		t.Errorf("the defaults serve or name URLs: %+v", d.PKI)
	}
}

// TestRetiredComuniCSVKeyIsAcceptedEmptyAndRefusedSet: configs written by
// earlier versions of init carry "comuni_csv" empty and still load; a
// value is refused with a message naming what replaces it.
func TestRetiredComuniCSVKeyIsAcceptedEmptyAndRefusedSet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "anprsec.yaml")
	if err := os.WriteFile(p, []byte("istat:\n  comuni_csv: \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, true); err != nil {
		t.Errorf("empty istat.comuni_csv: %v", err)
	}
	if err := os.WriteFile(p, []byte("istat:\n  comuni_csv: elenco.csv\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, true)
	if err == nil || !strings.Contains(err.Error(), "istat.comuni_csv") || !strings.Contains(err.Error(), "anprsec istat aggiorna FILE") {
		t.Errorf("istat.comuni_csv set: %v, want a refusal pointing to anprsec istat aggiorna FILE", err)
	}
}

// TestDefaultConfigNoLongerNamesComuniCSV: the commented default that init
// writes does not offer the retired key.
func TestDefaultConfigNoLongerNamesComuniCSV(t *testing.T) {
	if strings.Contains(string(DefaultYAML), "comuni_csv") {
		t.Error("default.yaml still names istat.comuni_csv")
	}
}

func TestEveryCommandRunsUnderA128MiBSoftMemoryLimitByDefault(t *testing.T) {
	if got := Default(t.TempDir()).MemoryLimit; got != 128<<20 {
		t.Errorf("default memory_limit %d bytes, want 128 MiB", got)
	}
	c, err := parse([]byte("memory_limit: 0\n"), Default(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if c.MemoryLimit != 0 {
		t.Errorf("memory_limit: 0 gives %d, want no limit", c.MemoryLimit)
	}
}
