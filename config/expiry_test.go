package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLateCardsRetentionAndBackofficeKeysAreChecked: the keys of late
// cards, the last-card warning, the back-office address and the
// retention refuse values that make no sense, naming the key.
func TestLateCardsRetentionAndBackofficeKeysAreChecked(t *testing.T) {
	c := Default(t.TempDir())
	if c.Cards.LateWorkingDays != 15 || c.Cards.LastCardWarningDays != 90 || c.Pulizia.RetentionDays != 365 ||
		c.Pulizia.CertificatiDays != 90 || c.Pulizia.MaxFiles != 1000 || c.Notify.Backoffice != "" || c.Schedules["pulizia"] == "" {
		t.Errorf("defaults: cards %+v, pulizia %+v, schedule %q", c.Cards, c.Pulizia, c.Schedules["pulizia"])
	}
	for _, tc := range []struct{ yaml, want string }{
		{"cards:\n  late_working_days: 0\n", "cards.late_working_days"},
		{"cards:\n  last_card_warning_days: -1\n", "cards.last_card_warning_days"},
		{"cards:\n  holidays: [\"31/02\"]\n", "cards.holidays"},
		{"cards:\n  holidays: [\"29 giugno\"]\n", "cards.holidays"},
		{"notify:\n  backoffice: \"non un indirizzo\"\n", "notify.backoffice"},
		{"pulizia:\n  retention_days: 0\n", "pulizia.retention_days"},
		{"pulizia:\n  max_files: -5\n", "pulizia.max_files"},
	} {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		os.WriteFile(p, []byte(tc.yaml), 0o600)
		if _, err := Load(p, true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) = %v, want an error naming %q", tc.yaml, err, tc.want)
		}
	}
	p := filepath.Join(t.TempDir(), "anprsec.yaml")
	os.WriteFile(p, []byte("cards:\n  holidays: [\"29/06\", \"04/12\"]\nnotify:\n  backoffice: \"Back office <bo@example.it>\"\n"), 0o600)
	if _, err := Load(p, true); err != nil {
		t.Errorf("valid keys refused: %v", err)
	}
}
