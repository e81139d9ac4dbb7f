package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAvvisiDefaultsAndRefusals: the notice campaigns default to a
// 30-day deadline, a weekly reminder, no back-office address, a text that
// names the campaign, and schedules twice a year and daily; a text with an
// unknown field or without the campaign's code, a bad back-office address
// and a negative interval are refused, naming the key.
func TestAvvisiDefaultsAndRefusals(t *testing.T) {
	c := Default("/srv/anprsec")
	a := c.Avvisi
	if a.DeadlineDays != 30 || a.ReminderEvery != 168*time.Hour || c.Notify.Backoffice != "" || !strings.Contains(a.Text, "{{.Campagna}}") ||
		c.Schedules["avviso-sicurezza"] != "0 9 15 1,7 *" || c.Schedules["avvisi-promemoria"] != "30 9 * * *" {
		t.Errorf("defaults: %+v, schedules %q %q", a, c.Schedules["avviso-sicurezza"], c.Schedules["avvisi-promemoria"])
	}
	for _, word := range []string{"PIN", "PUK", "password", "phishing", "CONFERMA_VERIFICA", "{{.Scadenza}}", "tempestivamente"} {
		if !strings.Contains(a.Text, word) {
			t.Errorf("the default text lacks %q", word)
		}
	}
	load := func(yaml string) error {
		p := filepath.Join(t.TempDir(), "anprsec.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p, true)
		return err
	}
	if err := load("notify:\n  backoffice: \"Back office <bo@example.it>\"\navvisi:\n  reminder_every: 0s\n"); err != nil {
		t.Errorf("a named back-office address and no reminders: %v", err)
	}
	for bad, key := range map[string]string{
		"avvisi:\n  text: \"Gentile {{.Sindaco}} {{.Campagna}}\"\n": "avvisi.text",
		"avvisi:\n  text: \"Gentile {{.Nome}}\"\n":                  "avvisi.text",
		"avvisi:\n  text: \"{{.Campagna\"\n":                        "avvisi.text",
		"notify:\n  backoffice: backoffice\n":                       "notify.backoffice",
		"avvisi:\n  back_office: bo@example.it\n":                   "back_office",
		"avvisi:\n  reminder_every: -1h\n":                          "avvisi.reminder_every",
		"avvisi:\n  deadline_days: 0\n":                             "avvisi.deadline_days",
	} {
		if err := load(bad); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v, want an error naming %s", bad, err, key)
		}
	}
}
