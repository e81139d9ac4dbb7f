package jobs

import (
	"archive/zip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/export/bundle"
	"anprsec/store"
)

// requestFile drops a request CSV in comune istat's folder, signed by
// operator's card, with the header cols and one row per vals.
func (c *certEnv) requestFile(istat, name, operator string, cols []string, rows ...[]string) {
	c.t.Helper()
	var b strings.Builder
	b.WriteString(strings.Join(cols, ";") + "\n")
	for _, r := range rows {
		b.WriteString(strings.Join(r, ";") + "\n")
	}
	c.dropSignedRequest(istat, name, []byte(b.String()), operator)
}

var publishedPath = regexp.MustCompile(`comuni/[0-9]{6}/(certificati|report)/[^ ]+?\.(zip|xlsx)`)

// publishedOf is the drop path a receipt line names.
func publishedOf(t *testing.T, line []string) string {
	t.Helper()
	if len(line) < 3 || line[0] != "OK" || line[1] != "IN_PUBBLICAZIONE" {
		t.Fatalf("receipt line %q, want OK IN_PUBBLICAZIONE", line)
	}
	p := publishedPath.FindString(line[2])
	if p == "" {
		t.Fatalf("receipt line %q names no file", line)
	}
	return p
}

// openBundle reads a ZIP of the drop: code -> P12, code -> password.
func (c *certEnv) openBundle(rel string) (map[string][]byte, map[string]string) {
	t := c.t
	t.Helper()
	zr, err := zip.OpenReader(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	defer zr.Close()
	p12s, pws := map[string][]byte{}, map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == bundle.PasswordFile {
			for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				code, pw, _ := strings.Cut(l, ";")
				pws[code] = pw
			}
			continue
		}
		p12s[strings.TrimSuffix(f.Name, ".p12")] = b
	}
	return p12s, pws
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// issueFor registers n postazioni of comune istat after its matrix ones and
// issues them through the certificati job.
func (c *certEnv) issueFor(istat string, from, n int) {
	c.t.Helper()
	err := c.env.Store.Update(func(tx *store.Tx) error {
		for i := from; i < from+n; i++ {
			w := &domain.Postazione{Code: domain.WorkstationCode(istat, i), ISTAT: istat, Label: "Sportello", State: domain.CertRichiesta, Created: tx.Now, Updated: tx.Now}
			if err := tx.PutPostazione(w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.run(certificatiJob); err != nil {
		c.t.Fatal(err)
	}
}

// TestDownloadCertificatesGivesTheALPTheComunesActiveCertificates: an ALP's
// SCARICA_CERTIFICATI is answered in the same run of ingest-richieste by a
// ZIP in the comune's certificati/ folder holding its ATTIVO certificates
// (all, or the one named) with password.txt, each P12 opening in OpenSSL
// with its password; a blocked certificate is not given, the ALS may not
// ask, and another comune's ALP never gets this comune's certificates: not
// from this comune's folder (even with an utenza there), not by naming
// them from his own.
func TestDownloadCertificatesGivesTheALPTheComunesActiveCertificates(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	c.issueFor(comA, 3, 3) // PC-0003..0005
	c.issueFor(comB, 3, 1)
	blocked := domain.WorkstationCode(comA, 5)
	c.env.Store.Update(func(tx *store.Tx) error {
		p, _ := tx.Postazione(blocked)
		p.State = domain.CertBloccato
		return tx.PutPostazione(p)
	})
	// Another comune's ALP with a plain utenza in comune A.
	c.env.Store.Update(func(tx *store.Tx) error {
		return tx.PutUtenza(&domain.Utenza{ISTAT: comA, CF: opALPOther, Email: "bice@example.it", Profiles: []domain.Profile{domain.Operatore},
			Environments: []domain.Environment{domain.Produzione}, State: domain.UtenzaAttiva, Created: tx.Now, Updated: tx.Now})
	})
	before := map[string]bool{}
	for _, istat := range []string{comA, comB} {
		m, _ := filepath.Glob(filepath.Join(c.root, "comuni", istat, "certificati", "*.zip"))
		for _, f := range m {
			before[f] = true
		}
	}

	cols := []string{"Operazione", "Operatore", "Codice postazione"}
	pc := func(istat string, n int) string { return domain.WorkstationCode(istat, n) }
	c.requestFile(comA, "alp.csv", opALP, cols,
		[]string{"SCARICA_CERTIFICATI", opALP, ""},
		[]string{"scarica certificati", opALP, pc(comA, 4)},
		[]string{"SCARICA_CERTIFICATI", opALP, blocked},
		[]string{"SCARICA_CERTIFICATI", opALP, pc(comB, 3)},
		[]string{"SCARICA_CERTIFICATI", opALP, pc(comA, 99)})
	c.requestFile(comA, "als.csv", opALS, cols, []string{"SCARICA_CERTIFICATI", opALS, ""})
	c.requestFile(comA, "intruso.csv", opALPOther, cols, []string{"SCARICA_CERTIFICATI", opALPOther, ""})
	c.requestFile(comB, "altro.csv", opALPOther, cols,
		[]string{"SCARICA_CERTIFICATI", opALPOther, pc(comA, 3)},
		[]string{"SCARICA_CERTIFICATI", opALPOther, ""})
	counts, err := c.run(richiesteJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["bundles"] != 3 {
		t.Errorf("counts %v, want 3 bundles", counts)
	}

	got := c.receipt("comuni/" + comA + "/richieste/esiti/alp.csv.p7m.esito.csv")
	all := publishedOf(t, got["2"])
	one := publishedOf(t, got["3"])
	for row, want := range map[string]string{"4": "STATO", "5": "ALTRO_COMUNE", "6": "POSTAZIONE_SCONOSCIUTA"} {
		if g := got[row]; len(g) < 2 || g[0] != "SCARTATO" || g[1] != want {
			t.Errorf("row %s: %q, want %s", row, g, want)
		}
	}
	for _, tc := range []struct{ file, want string }{
		{"comuni/" + comA + "/richieste/esiti/als.csv.p7m.esito.csv", "NON_AUTORIZZATO"},
		{"comuni/" + comA + "/richieste/esiti/intruso.csv.p7m.esito.csv", "NON_AUTORIZZATO"},
	} {
		if g := c.receipt(tc.file)["2"]; len(g) < 2 || g[1] != tc.want {
			t.Errorf("%s: %q, want %s", tc.file, g, tc.want)
		}
	}
	other := c.receipt("comuni/" + comB + "/richieste/esiti/altro.csv.p7m.esito.csv")
	if g := other["2"]; len(g) < 2 || g[1] != "ALTRO_COMUNE" {
		t.Errorf("B's ALP naming A's certificate: %q", g)
	}
	bAll := publishedOf(t, other["3"])

	for _, tc := range []struct {
		rel   string
		codes []string
	}{
		{all, []string{pc(comA, 3), pc(comA, 4)}},
		{one, []string{pc(comA, 4)}},
		{bAll, []string{pc(comB, 3)}},
	} {
		if !strings.HasPrefix(tc.rel, "comuni/"+tc.codes[0][:6]+"/certificati/") {
			t.Errorf("%s is not in the certificati folder of %s", tc.rel, tc.codes[0][:6])
		}
		p12s, pws := c.openBundle(tc.rel)
		if g := keysOf(p12s); strings.Join(g, ",") != strings.Join(tc.codes, ",") {
			t.Errorf("%s holds %v, want %v", tc.rel, g, tc.codes)
		}
		if g := keysOf(pws); strings.Join(g, ",") != strings.Join(tc.codes, ",") {
			t.Errorf("%s: password.txt for %v, want %v", tc.rel, g, tc.codes)
		}
		openSSLCheck(t, pws, p12s)
	}
	// No ZIP of comune B, old or new, holds a certificate of comune A.
	m, _ := filepath.Glob(filepath.Join(c.root, "comuni", comB, "certificati", "*.zip"))
	for _, f := range m {
		rel, _ := filepath.Rel(c.root, f)
		p12s, _ := c.openBundle(filepath.ToSlash(rel))
		for code := range p12s {
			if !strings.HasPrefix(code, comB) {
				t.Errorf("%s holds %s of another comune", rel, code)
			}
		}
	}
	newA, _ := filepath.Glob(filepath.Join(c.root, "comuni", comA, "certificati", "*.zip"))
	n := 0
	for _, f := range newA {
		if !before[f] {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d new ZIPs for comune A, want 2", n)
	}
	// The downloads are in the history, by the ALP who asked.
	es, err := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "bundle.richiesto" && e.Actor == opALP })
	if err != nil {
		t.Fatal(err)
	}
	if found := len(es); found != 2 {
		t.Errorf("%d bundle.richiesto entries by the ALP, want 2", found)
	}
}

// reportOf reads the sheets of a STATO workbook and which CSVs lie beside
// it: sheet -> its text, and "-utenti.csv"/"-postazioni.csv" -> content.
func (c *certEnv) reportOf(rel string) (map[string]string, map[string]string) {
	t := c.t
	t.Helper()
	f, err := excelize.OpenFile(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	defer f.Close()
	sheets := map[string]string{}
	for _, s := range f.GetSheetList() {
		rows, err := f.GetRows(s)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, r := range rows {
			b.WriteString(strings.Join(r, ";") + "\n")
		}
		sheets[s] = b.String()
	}
	csvs := map[string]string{}
	base := strings.TrimSuffix(filepath.Join(c.root, filepath.FromSlash(rel)), ".xlsx")
	for _, suf := range []string{"-utenti.csv", "-postazioni.csv"} {
		if b, err := os.ReadFile(base + suf); err == nil {
			csvs[suf] = string(b)
		}
	}
	return sheets, csvs
}

// TestStatusReportShowsWhatTheProfileManages: STATO is answered in the
// same run by a report in the comune's report/ folder, xlsx and CSV: the
// utenze with their cards for the ALS, the postazioni for the ALP, both for
// the ASC; an APL may not ask, and another comune's operator gets nothing
// of this comune.
func TestStatusReportShowsWhatTheProfileManages(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	cols := []string{"Operazione", "Operatore"}
	for _, who := range []struct{ name, cf string }{{"als", opALS}, {"alp", opALP}, {"asc", opASC}, {"apl", opAPL}} {
		c.requestFile(comA, who.name+".csv", who.cf, cols, []string{"STATO", who.cf})
	}
	c.requestFile(comA, "intruso.csv", opALSOther, cols, []string{"STATO", opALSOther})
	counts, err := c.run(richiesteJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["reports"] != 3 {
		t.Errorf("counts %v, want 3 reports", counts)
	}
	esiti := "comuni/" + comA + "/richieste/esiti/"
	for _, tc := range []struct {
		file             string
		utenze, stations bool
	}{{"als", true, false}, {"alp", false, true}, {"asc", true, true}} {
		rel := publishedOf(t, c.receipt(esiti + tc.file + ".csv.p7m.esito.csv")["2"])
		if !strings.HasPrefix(rel, "comuni/"+comA+"/report/stato-"+comA+"-") {
			t.Errorf("%s: report %s", tc.file, rel)
		}
		sheets, csvs := c.reportOf(rel)
		_, hasU := sheets["Utenti"]
		_, hasW := sheets["Postazioni"]
		_, hasUC := csvs["-utenti.csv"]
		_, hasWC := csvs["-postazioni.csv"]
		if hasU != tc.utenze || hasUC != tc.utenze || hasW != tc.stations || hasWC != tc.stations {
			t.Errorf("%s: sheets %v, csv %v; want utenze %v postazioni %v", tc.file, keysOf(sheets), keysOf(csvs), tc.utenze, tc.stations)
		}
		all := sheets["Utenti"] + sheets["Postazioni"] + csvs["-utenti.csv"] + csvs["-postazioni.csv"]
		for _, own := range map[bool][]string{true: {tgtUser, tgtActive, "ATTIVA"}}[tc.utenze] {
			if !strings.Contains(sheets["Utenti"], own) || !strings.Contains(csvs["-utenti.csv"], own) {
				t.Errorf("%s: %s missing from the utenze", tc.file, own)
			}
		}
		if tc.stations && (!strings.Contains(sheets["Postazioni"], domain.WorkstationCode(comA, 1)) || !strings.Contains(csvs["-postazioni.csv"], "BLOCCATO")) {
			t.Errorf("%s: postazioni missing:\n%s", tc.file, sheets["Postazioni"])
		}
		for _, foreign := range []string{tgtOther, opALSOther, domain.WorkstationCode(comB, 1)} {
			if strings.Contains(all, foreign) {
				t.Errorf("%s: the report shows %s of comune B", tc.file, foreign)
			}
		}
	}
	for file, want := range map[string]string{"apl": "NON_AUTORIZZATO", "intruso": "OPERATORE_SCONOSCIUTO"} {
		if g := c.receipt(esiti + file + ".csv.p7m.esito.csv")["2"]; len(g) < 2 || g[1] != want {
			t.Errorf("%s: %q, want %s", file, g, want)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(c.root, "comuni", comB, "report", "*")); len(m) != 0 {
		t.Errorf("comune B got %v", m)
	}
}

// selfServiceFailDrop fails the writes of self-service files (ZIPs and
// STATO reports) while fail is set: a drop lost between the receipt and
// the files.
type selfServiceFailDrop struct {
	drop.Drop
	fail bool
}

func (d *selfServiceFailDrop) Write(ctx context.Context, name string, r io.Reader) error {
	if d.fail && (strings.Contains(name, "/certificati/") || strings.Contains(name, "/report/stato-")) {
		return errors.New("simulated loss of the drop")
	}
	return d.Drop.Write(ctx, name, r)
}

// TestSelfServiceFilesLeftPendingArePublishedByTheNextRun: when the drop
// does not take the ZIP and the report after the receipt, the run fails
// naming them and they stay pending; the next run, with no request to
// read, writes them under the names the receipt gave.
func TestSelfServiceFilesLeftPendingArePublishedByTheNextRun(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	c.issueFor(comA, 3, 1)
	fd := &selfServiceFailDrop{Drop: c.env.Drop, fail: true}
	c.env.Drop = fd
	cols := []string{"Operazione", "Operatore"}
	c.requestFile(comA, "alp.csv", opALP, cols, []string{"SCARICA_CERTIFICATI", opALP}, []string{"STATO", opALP})
	if _, err := c.run(richiesteJob); err == nil || !strings.Contains(err.Error(), "simulated loss") {
		t.Fatalf("first run: err = %v, want the drop's failure", err)
	}
	got := c.receipt("comuni/" + comA + "/richieste/esiti/alp.csv.p7m.esito.csv")
	zipPath, report := publishedOf(t, got["2"]), publishedOf(t, got["3"])
	for _, p := range []string{zipPath, report} {
		if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(p))); err == nil {
			t.Errorf("%s written while the drop failed", p)
		}
	}
	fd.fail = false
	counts, err := c.run(richiesteJob)
	if err != nil || counts["bundles"] != 1 || counts["reports"] != 1 {
		t.Fatalf("second run: %v %v", counts, err)
	}
	p12s, pws := c.openBundle(zipPath)
	if g := keysOf(p12s); len(g) != 1 || g[0] != domain.WorkstationCode(comA, 3) {
		t.Errorf("%s holds %v", zipPath, g)
	}
	openSSLCheck(t, pws, p12s)
	if sheets, _ := c.reportOf(report); sheets["Postazioni"] == "" {
		t.Errorf("%s: no Postazioni sheet", report)
	}
	if counts, err := c.run(richiesteJob); err != nil || counts["bundles"] != 0 || counts["reports"] != 0 {
		t.Errorf("third run published again: %v %v", counts, err)
	}
}

// TestStatusReportNeedsTheProfileInTheFoldersComune: the ALS of comune B
// who also has a plain utenza in comune A asks STATO from A's folder: his
// profiles in B do not count in A, he is refused and no report of A is
// written.
func TestStatusReportNeedsTheProfileInTheFoldersComune(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		return tx.PutUtenza(&domain.Utenza{ISTAT: comA, CF: opALSOther, Email: "als.b@example.it", Profiles: []domain.Profile{domain.Operatore},
			Environments: []domain.Environment{domain.Produzione}, State: domain.UtenzaAttiva, Created: tx.Now, Updated: tx.Now})
	}); err != nil {
		t.Fatal(err)
	}
	cols := []string{"Operazione", "Operatore"}
	c.requestFile(comA, "doppia.csv", opALSOther, cols, []string{"STATO", opALSOther})
	counts, err := c.run(richiesteJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["reports"] != 0 {
		t.Errorf("counts %v, want no report", counts)
	}
	if g := c.receipt("comuni/" + comA + "/richieste/esiti/doppia.csv.p7m.esito.csv")["2"]; len(g) < 2 || g[1] != "NON_AUTORIZZATO" {
		t.Errorf("B's ALS with a plain utenza in A: %q, want NON_AUTORIZZATO", g)
	}
	if m, _ := filepath.Glob(filepath.Join(c.root, "comuni", comA, "report", "*")); len(m) != 0 {
		t.Errorf("comune A's report folder holds %v", m)
	}
}
