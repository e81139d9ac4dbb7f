package jobs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/domain"
	"anprsec/store"
)

// openssl runs the openssl CLI in dir and fails the test on error.
func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestRequestsSignedWithOpenSSLCAdES: request files signed with `openssl
// cms -sign -cades -binary`, enveloping (.p7m) and detached (.p7s), by
// card certificates made by openssl for the operators' codici fiscali
// (serialNumber=TINIT-<CF>) under the configured card CA, are applied; each
// file without a valid signature of the right person changes nothing and is
// refused whole with its code (docs/rules.md#console-requests).
func TestRequestsSignedWithOpenSSLCAdES(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	lab := t.TempDir()
	ca := func(name string) {
		openssl(t, lab, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name+".key", "-out", name+".pem",
			"-subj", "/C=IT/O=Prova/CN="+name, "-days", "3650",
			"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	}
	card := func(name, caName, cf string) {
		os.WriteFile(filepath.Join(lab, "card.ext"), []byte("keyUsage=critical,digitalSignature,nonRepudiation\nbasicConstraints=CA:FALSE\n"), 0o600)
		openssl(t, lab, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name+".key", "-out", name+".csr",
			"-subj", "/C=IT/CN=PROVA PERSONA/serialNumber=TINIT-"+cf)
		openssl(t, lab, "x509", "-req", "-in", name+".csr", "-CA", caName+".pem", "-CAkey", caName+".key", "-CAcreateserial",
			"-out", name+".pem", "-days", "365", "-extfile", "card.ext")
	}
	ca("cardca")
	ca("altraca")
	card("alp", "cardca", opALP)
	card("alscard", "cardca", opALSCard) // an ALS whose card is BLOCCATA
	card("intruso", "altraca", opALP)    // the right CF, under another CA
	c.env.Config.Trust.CardCA = filepath.Join(lab, "cardca.pem")

	dir := filepath.Join(c.root, "comuni", comA, "richieste")
	os.MkdirAll(dir, 0o755)
	request := func(name, operator, label string) string {
		p := filepath.Join(lab, name)
		os.WriteFile(p, []byte("Operazione;Operatore;Nome postazione\nREGISTRA_POSTAZIONE;"+operator+";"+label+"\n"), 0o600)
		return p
	}
	sign := func(doc, signer, out string, detached bool) {
		args := []string{"cms", "-sign", "-cades", "-binary", "-md", "sha256", "-in", doc, "-signer", signer + ".pem", "-inkey", signer + ".key",
			"-outform", "DER", "-out", out}
		if !detached {
			args = append(args, "-nodetach")
		}
		openssl(t, lab, args...)
	}
	copyTo := func(src, name string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}

	// Accepted: enveloping, with Operatore empty (the signer) ...
	sign(request("busta.csv", "", "Sportello Busta"), "alp", filepath.Join(dir, "busta.csv.p7m"), false)
	// ... and detached, with Operatore the signer.
	copyTo(request("staccata.csv", opALP, "Sportello Staccata"), "staccata.csv")
	sign(filepath.Join(dir, "staccata.csv"), "alp", filepath.Join(dir, "staccata.csv.p7s"), true)
	// Refused whole.
	copyTo(request("nonfirmata.csv", opALP, "Sportello Nonfirmata"), "nonfirmata.csv")
	copyTo(request("altro.csv", opALP, "Sportello Altro"), "altro.csv")
	sign(request("vero.csv", opALP, "Sportello Vero"), "alp", filepath.Join(dir, "altro.csv.p7s"), true) // over other content
	sign(request("intruso.csv", "", "Sportello Intruso"), "intruso", filepath.Join(dir, "intruso.csv.p7m"), false)
	sign(request("scambio.csv", opALS, "Sportello Scambio"), "alp", filepath.Join(dir, "scambio.csv.p7m"), false)
	sign(request("bloccata.csv", "", "Sportello Bloccata"), "alscard", filepath.Join(dir, "bloccata.csv.p7m"), false)

	if _, err := c.run(richiesteJob); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"busta.csv.p7m":    "REGISTRATA",
		"staccata.csv":     "REGISTRATA",
		"nonfirmata.csv":   "FIRMA_ASSENTE",
		"altro.csv":        "FIRMA_NON_VALIDA",
		"intruso.csv.p7m":  "CERTIFICATO_NON_FIDATO",
		"scambio.csv.p7m":  "FIRMATARIO_NON_OPERATORE",
		"bloccata.csv.p7m": "FIRMATARIO_SMART_CARD_NON_ATTIVA",
	} {
		got := c.receipt("comuni/" + comA + "/richieste/esiti/" + file + ".esito.csv")
		row := "2"
		if want != "REGISTRATA" {
			row = "0"
		}
		if g := got[row]; len(g) < 2 || g[1] != want {
			t.Errorf("%s: receipt %v, want row %s %s", file, got, row, want)
		}
	}
	labels := map[string]bool{}
	c.env.Store.View(func(tx *store.Tx) error {
		return tx.PostazioniOfComune(comA, func(p *domain.Postazione) error {
			labels[p.Label] = true
			return nil
		})
	})
	for _, l := range []string{"Sportello Busta", "Sportello Staccata"} {
		if !labels[l] {
			t.Errorf("%s not registered", l)
		}
	}
	for _, l := range []string{"Sportello Nonfirmata", "Sportello Altro", "Sportello Vero", "Sportello Intruso", "Sportello Scambio", "Sportello Bloccata"} {
		if labels[l] {
			t.Errorf("%s registered from a file without a valid signature of its operator", l)
		}
	}
	// The signer and the certificate are in the history of the file.
	var signedBy int
	c.env.Store.View(func(tx *store.Tx) error {
		return tx.EachHistory(0, func(e *store.Entry) (bool, error) {
			if e.Action == "richiesta.firma" && e.Actor == opALP && strings.Contains(e.Detail, "firmata da "+opALP) {
				signedBy++
			}
			return true, nil
		})
	})
	if signedBy != 2 {
		t.Errorf("%d richiesta.firma entries for the two signed files", signedBy)
	}
}
