package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPersonaRetentionDefaultsTo180DaysAndRefusesNegative: a person
// without utenza and card is kept 180 days by default, 0 is accepted (the
// next run), a negative period is refused; pulizia-persone runs daily
// outside the DST hour.
func TestPersonaRetentionDefaultsTo180DaysAndRefusesNegative(t *testing.T) {
	c := Default("/srv/anprsec")
	if c.Retention.PersonaDays != 180 || c.Schedules["pulizia-persone"] != "30 3 * * *" {
		t.Errorf("defaults: persona_days %d, schedule %q", c.Retention.PersonaDays, c.Schedules["pulizia-persone"])
	}
	load := func(yaml string) (*Config, error) {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p, true)
	}
	if c, err := load("retention:\n  persona_days: 0\n"); err != nil || c.Retention.PersonaDays != 0 {
		t.Errorf("0 days: %v, %v", c, err)
	}
	if _, err := load("retention:\n  persona_days: -1\n"); err == nil || !strings.Contains(err.Error(), "retention.persona_days") {
		t.Errorf("-1 days: err %v, want one about retention.persona_days", err)
	}
}
