package e2e

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/store"
)

// TestKillDuringRenewals: the renewal of every certificate of a census,
// its certificati batches killed with kill -9 at random moments and then
// let finish, gives each code exactly one new certificate: the old one its
// only predecessor, one renewal in the history, the new certificate in
// exactly one ZIP published after the one of the old certificate, no
// renewal left pending, the history chain intact (docs/rules.md#renewal).
func TestKillDuringRenewals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and issues some 300 certificates twice")
	}
	bin := binary(t)
	base := t.TempDir()
	gen := &workdir{t: t, bin: bin, dir: base}
	wbPath := filepath.Join(base, "renew.xlsx")
	gen.run("gen", "censimento", "--comuni", "60", "--users", "240", "--postazioni", "4", "-o", wbPath)
	workbook, err := os.ReadFile(wbPath)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkdir(t, bin, filepath.Join(base, "w"), workbook)
	w.editConfig(map[string]string{
		"key_algorithm: rsa2048": "key_algorithm: ecdsa-p256",
		"batch_max: 2000":        "batch_max: 100",
		"key_pool: 2000":         "key_pool: 0",
	})
	w.run("jobs", "run", "ingest-censimento")
	aim := time.Hour
	for i := 0; w.certsPending() > 0; i++ {
		if i == 10 {
			t.Fatal("the first issue is still pending after 10 runs")
		}
		start := time.Now()
		w.run("jobs", "run", "certificati")
		aim = min(aim, time.Since(start))
	}

	originals := map[string]string{} // code -> serial before the renewal
	st := w.openStore(false)
	err = st.View(func(tx *store.Tx) error {
		return tx.EachPostazioneIn([]domain.CertState{domain.CertAttivo}, func(p *domain.Postazione) error {
			originals[p.Code] = p.Serial
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for code := range originals {
		if _, err := lifecycle.RequestRenewal(st, store.Source{Actor: "back-office:e2e"}, code, "rinnovo di prova"); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if len(originals) < 200 {
		t.Fatalf("%d certificates issued, want more than 200", len(originals))
	}

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	t.Logf("%d renewals; kill delays drawn with seed %d around %v", len(originals), seed, aim)
	hits := 0
	for round := 0; round < 12 && w.renewalsPending() > 0; round++ {
		d := time.Duration(float64(aim) * (0.2 + rng.Float64()))
		killed, ran, _ := w.killCmdWithin(d, "jobs", "run", "certificati")
		if killed {
			hits++
		} else {
			aim = min(aim, ran)
		}
		t.Logf("kill after %v (hit: %v): %d renewals and %d bundles pending", d.Round(time.Millisecond), killed, w.renewalsPending(), w.bundlesPending())
	}
	if hits == 0 {
		t.Errorf("no kill hit a running batch")
	}
	for i := 0; w.renewalsPending() > 0 || w.bundlesPending() > 0; i++ {
		if i == 10 {
			t.Fatal("still pending after 10 runs following the kills")
		}
		w.run("jobs", "run", "certificati")
	}
	w.run("jobs", "run", "certificati") // issues and publishes nothing more
	checkRenewals(t, w, originals)
}

func (w *workdir) renewalsPending() int {
	w.t.Helper()
	st := w.openStore(false)
	defer st.Close()
	var n int
	if err := st.View(func(tx *store.Tx) error {
		codes, err := tx.PostazioniToRenew()
		n = len(codes)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// checkRenewals: every code has a new certificate and its old one as its
// only predecessor, one renewal in the history, and appears in exactly
// two ZIPs: the first with the old certificate, the later with the new.
func checkRenewals(t *testing.T, w *workdir, originals map[string]string) {
	t.Helper()
	st := w.openStore(false)
	current := map[string]string{}
	err := st.View(func(tx *store.Tx) error {
		for code, old := range originals {
			p, err := tx.Postazione(code)
			if err != nil {
				return err
			}
			current[code] = p.Serial
			switch {
			case p.State != domain.CertAttivo || p.Renewal != nil:
				t.Errorf("%s: %s, renewal %v", code, p.State, p.Renewal)
			case p.Serial == old:
				t.Errorf("%s: not renewed", code)
			case len(p.Predecessors) != 1 || p.Predecessors[0].Serial != old || p.Predecessors[0].SupersededBy != p.Serial:
				t.Errorf("%s: predecessors %+v, want only %s", code, p.Predecessors, old)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.rinnovata" })
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	renewed := map[string]int{}
	for _, e := range es {
		renewed[e.Key]++
	}
	for code := range originals {
		if renewed[code] != 1 {
			t.Errorf("%s renewed %d times in the history", code, renewed[code])
		}
	}
	var zips []string
	err = filepath.Walk(w.path("var/drop"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		if strings.HasPrefix(fi.Name(), ".") || strings.HasSuffix(fi.Name(), ".tmp") {
			t.Errorf("temporary file left in the drop: %s", p)
		}
		if filepath.Base(filepath.Dir(p)) == "certificati" {
			zips = append(zips, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(zips) // <ISTAT>-certificati-<YYYYMMDD-HHMMSS>: a comune's in time order
	seen := map[string][]string{}
	for _, z := range zips {
		for code, serial := range zipCerts(t, z) {
			seen[code] = append(seen[code], serial)
		}
	}
	for code, old := range originals {
		if s := seen[code]; len(s) != 2 || s[0] != old || s[1] != current[code] {
			t.Errorf("%s: the ZIPs hold %v, want %s then %s", code, s, old, current[code])
		}
	}
	if out, _ := w.run("history", "verify"); !strings.Contains(out, "intact") || !strings.Contains(out, "registro delle installazioni conforme") {
		t.Errorf("history verify: %q", out)
	}
}
