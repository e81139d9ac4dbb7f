package e2e

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"anprsec/domain"
	"anprsec/store"
)

// TestKillDuringCertificati: a certificate batch killed with kill -9,
// repeatedly, then let finish leaves each code exactly one certificate,
// each published ZIP whole, nothing temporary visible, and history verify
// passing (docs/rules.md#certificates). A census of 250 comuni asks for about 1,250 certificates; the batch
// (pki.batch_max 200, so several runs, ECDSA keys so that signing, P12
// encoding, commits and publication fill the time rather than RSA key
// generation) is killed with SIGKILL at random moments of its runs, then
// run to the end.
func TestKillDuringCertificati(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and issues 1,250 certificates several times")
	}
	bin := binary(t)
	base := t.TempDir()
	gen := &workdir{t: t, bin: bin, dir: base}
	wbPath := filepath.Join(base, "big.xlsx")
	gen.run("gen", "censimento", "--comuni", "250", "--users", "1000", "--postazioni", "4", "-o", wbPath)
	workbook, err := os.ReadFile(wbPath)
	if err != nil {
		t.Fatal(err)
	}
	want := 0 // four workstations each, and most comuni a server

	setup := func(name string) *workdir {
		w := newWorkdir(t, bin, filepath.Join(base, name), workbook)
		w.editConfig(map[string]string{
			"key_algorithm: rsa2048": "key_algorithm: ecdsa-p256",
			"batch_max: 2000":        "batch_max: 200",
			"key_pool: 2000":         "key_pool: 0",
		})
		w.run("jobs", "run", "ingest-censimento")
		n := w.certsPending()
		if want == 0 && n > 1000 {
			want = n
		}
		if n != want {
			t.Fatalf("%s: %d certificates pending after the census, want %d (more than 1,000)", name, n, want)
		}
		return w
	}

	// Reference: the runs one after the other, timed.
	ref := setup("ref")
	var runs []time.Duration
	for i := 0; ref.certsPending() > 0; i++ {
		if i == 10 {
			t.Fatal("reference: still pending after 10 runs")
		}
		start := time.Now()
		ref.run("jobs", "run", "certificati")
		runs = append(runs, time.Since(start))
	}
	checkCertOutcome(t, ref, want)
	t.Logf("reference: %d runs of certificati: %v", len(runs), runs)

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	t.Logf("kill delays drawn with seed %d", seed)
	w := setup("killed")
	// Aim: the shortest full reference run, then, whenever a run ends
	// before its kill, that run's own time. go test runs other packages
	// alongside, so a run's time changes under the test.
	aim := runs[0]
	for _, r := range runs[:len(runs)-1] {
		aim = min(aim, r)
	}
	kills, hits := 0, 0
	for round := 0; round < 12 && w.certsPending() > 0; round++ {
		d := time.Duration(float64(aim) * (0.2 + rng.Float64()))
		killed, ran, _ := w.killCmdWithin(d, "jobs", "run", "certificati")
		kills++
		if killed {
			hits++
		} else {
			aim = min(aim, ran)
		}
		t.Logf("kill %d after %v (hit: %v): %d certificates and %d bundles pending", kills, d.Round(time.Millisecond), killed, w.certsPending(), w.bundlesPending())
	}
	if hits == 0 {
		t.Errorf("no kill hit a running batch")
	}
	for i := 0; w.certsPending() > 0 || w.bundlesPending() > 0; i++ {
		if i == 10 {
			t.Fatal("still pending after 10 runs following the kills")
		}
		w.run("jobs", "run", "certificati")
	}
	w.run("jobs", "run", "certificati") // publishes nothing twice
	checkCertOutcome(t, w, want)
}

// editConfig replaces text in anprsec.yaml; each old text must be there.
func (w *workdir) editConfig(repl map[string]string) {
	w.t.Helper()
	p := w.path("anprsec.yaml")
	cfg, err := os.ReadFile(p)
	if err != nil {
		w.t.Fatal(err)
	}
	for old, cur := range repl {
		if !bytes.Contains(cfg, []byte(old)) {
			w.t.Fatalf("anprsec.yaml has no %q", old)
		}
		cfg = bytes.Replace(cfg, []byte(old), []byte(cur), 1)
	}
	if err := os.WriteFile(p, cfg, 0o640); err != nil {
		w.t.Fatal(err)
	}
}

func (w *workdir) certsPending() int {
	w.t.Helper()
	st := w.openStore(false)
	defer st.Close()
	var n int
	if err := st.View(func(tx *store.Tx) error {
		codes, err := tx.PostazioniInState(domain.CertRichiesta)
		n = len(codes)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *workdir) bundlesPending() int {
	w.t.Helper()
	st := w.openStore(false)
	defer st.Close()
	var n int
	if err := st.View(func(tx *store.Tx) error {
		ids, err := tx.PendingBundles()
		n = len(ids)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// checkCertOutcome: every postazione ATTIVO with one certificate (one
// issuance in the history), every ZIP in the drop whole, every certificate
// in exactly one ZIP and that ZIP's P12 holds the certificate of the store,
// opened with the password of password.txt; no temporary file; the history
// chain intact; no run left "running".
func checkCertOutcome(t *testing.T, w *workdir, want int) {
	t.Helper()
	st := w.openStore(false)
	serials := map[string]string{} // code -> serial
	issued := map[string]int{}
	var runs []string
	err := st.View(func(tx *store.Tx) error {
		for _, state := range []domain.CertState{domain.CertRichiesta, domain.CertAttivo} {
			codes, err := tx.PostazioniInState(state)
			if err != nil {
				return err
			}
			for _, c := range codes {
				p, err := tx.Postazione(c)
				if err != nil {
					return err
				}
				if p.State != domain.CertAttivo {
					t.Errorf("%s is %s", c, p.State)
					continue
				}
				serials[c] = p.Serial
			}
		}
		rs, err := tx.Runs("certificati", 0)
		for _, r := range rs {
			runs = append(runs, r.Outcome)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.attiva" })
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, e := range es {
		issued[e.Key]++
	}
	if len(serials) != want {
		t.Errorf("%d certificates ATTIVO, want %d", len(serials), want)
	}
	for c, n := range issued {
		if n != 1 {
			t.Errorf("%s issued %d times", c, n)
		}
	}
	if len(issued) != want {
		t.Errorf("%d codes issued, want %d", len(issued), want)
	}
	for _, r := range runs {
		if r == "running" {
			t.Errorf("a run of certificati is still marked running: %v", runs)
			break
		}
	}

	inZip := map[string]string{}
	zips := 0
	err = filepath.Walk(w.path("var/drop"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		name := fi.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part") {
			t.Errorf("temporary file left in the drop: %s", p)
		}
		if filepath.Base(filepath.Dir(p)) != "certificati" {
			return nil
		}
		zips++
		for code, serial := range zipCerts(t, p) {
			if prev, ok := inZip[code]; ok {
				t.Errorf("%s is in %s and in %s", code, prev, p)
			}
			inZip[code] = p
			if serials[code] != serial {
				t.Errorf("%s: the P12 in %s holds serial %s, the store %s", code, p, serial, serials[code])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inZip) != want {
		t.Errorf("%d certificates in %d ZIPs, want %d", len(inZip), zips, want)
	}
	if out, _ := w.run("history", "verify"); !strings.Contains(out, "integra") {
		t.Errorf("history verify: %q", out)
	}
}

// zipCerts opens a bundle: every <code>.p12 with its password from
// password.txt; it returns code -> certificate serial (hex).
func zipCerts(t *testing.T, path string) map[string]string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return nil
	}
	defer zr.Close()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Errorf("%s: %s: %v", path, f.Name, err)
			return nil
		}
		data, err := io.ReadAll(rc) // checks the CRC at EOF
		rc.Close()
		if err != nil {
			t.Errorf("%s: %s: %v", path, f.Name, err)
			return nil
		}
		files[f.Name] = data
	}
	pws := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(files["password.txt"])), "\n") {
		code, pw, ok := strings.Cut(strings.TrimSpace(line), ";")
		if !ok {
			t.Errorf("%s: password.txt line %q", path, line)
			continue
		}
		pws[code] = pw
	}
	out := map[string]string{}
	for name, data := range files {
		code, ok := strings.CutSuffix(name, ".p12")
		if !ok {
			continue
		}
		_, cert, _, err := pkcs12.DecodeChain(data, pws[code])
		if err != nil {
			t.Errorf("%s: %s: %v", path, name, err)
			continue
		}
		out[code] = fmt.Sprintf("%X", cert.SerialNumber)
	}
	if len(out) != len(pws) || len(files) != len(pws)+1 {
		t.Errorf("%s: %d P12s, %d passwords, %d files", path, len(out), len(pws), len(files))
	}
	return out
}
