package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/domain"
	"anprsec/istat"
	"anprsec/pki/pgp"
	"anprsec/store"
	"anprsec/trust/cades"
)

// TestKillCampaign: across a randomized kill -9 campaign over all jobs on
// an Italy-scale subset, after each restart every input file is processed
// exactly once, each code has at most one certificate, every activated
// card's second halves are sent (same Message-ID if repeated), and history
// verify passes.
//
// A census of 200 comuni, then the prefetture's manifests for every card
// and, per comune, the console requests that follow a census (the ASC
// registers the first ALS's card, the ALS the others', the ALP a new
// workstation), are processed by `anprsec jobs run` of every job in turn,
// SIGKILLed at random moments; after each kill the invariants are checked on the store as the
// killed process left it; then the jobs run to the end and the outcome is
// checked whole.
func TestKillCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs every job many times")
	}
	bin := binary(t)
	base := t.TempDir()
	gen := &workdir{t: t, bin: bin, dir: base}
	wbPath := filepath.Join(base, "big.xlsx")
	gen.run("gen", "censimento", "--comuni", "200", "--users", "1500", "-o", wbPath)
	workbook, err := os.ReadFile(wbPath)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkdir(t, bin, filepath.Join(base, "w"), workbook)
	w.editConfig(map[string]string{
		"key_algorithm: rsa2048": "key_algorithm: ecdsa-p256",
		"batch_max: 2000":        "batch_max: 300",
		"key_pool: 2000":         "key_pool: 0",
		"order_max: 5000":        "order_max: 300",
	})
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	t.Logf("kill delays drawn with seed %d", seed)
	// Every job in turn, in one process: `anprsec jobs run ...`.
	args := []string{"jobs", "run", "ingest-censimento", "ingest-consegne", "ingest-richieste", "certificati", "ordini-sc", "invio-pin", "crl", "scadenze"}

	campaign := func(phase string, kills int, done func() bool) {
		t.Helper()
		hits := 0
		for i := 0; i < kills && !done(); i++ {
			d := time.Duration(20+rng.IntN(600)) * time.Millisecond
			killed, _ := w.killCmdAfter(d, args...)
			if killed {
				hits++
			}
			w.checkInvariants(t, fmt.Sprintf("%s kill %d after %v", phase, i+1, d))
		}
		for i := 0; !done(); i++ {
			if i == 15 {
				t.Fatalf("%s: work left after 15 uninterrupted runs: inputs %d %d %d, certs %d, bundles %d, cards RICHIESTA %d, orders %d, mails queued %d",
					phase, w.inputsLeft("var/drop/censimento"), w.inputsLeft("var/drop/prefetture"), w.inputsLeft("var/drop/comuni"),
					w.certsPending(), w.bundlesPending(), w.cardsIn(domain.CardRichiesta), w.pendingOrders(), w.mails(store.MailQueued))
			}
			w.try(nil, args...) // a run may fail (e.g. a job refusing a file) and still progress
			w.checkInvariants(t, phase+" final run")
		}
		t.Logf("%s: %d kills hit a running process", phase, hits)
	}
	// Phase 1: census, certificates, card orders.
	campaign("census", 10, func() bool {
		return w.inputsLeft("var/drop/censimento") == 0 && w.certsPending() == 0 && w.cardsIn(domain.CardRichiesta) == 0 && w.pendingOrders() == 0 && w.bundlesPending() == 0
	})

	// Phase 2: manifests and console requests.
	files := w.writeDeliveries(t)
	t.Logf("%d manifests and request files dropped", files)
	campaign("deliveries", 12, func() bool {
		return w.inputsLeft("var/drop/prefetture") == 0 && w.inputsLeft("var/drop/comuni") == 0 && w.mails(store.MailQueued) == 0 &&
			w.certsPending() == 0 && w.bundlesPending() == 0
	})
	w.checkCampaignOutcome(t)
}

// inputsLeft counts the input files still waiting under root (any depth,
// outside elaborati/, scartati/, esiti/ and the outputs).
func (w *workdir) inputsLeft(root string) int {
	n := 0
	filepath.Walk(w.path(root), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		dir := filepath.Base(filepath.Dir(p))
		if dir == "richieste" || dir == "consegne" || dir == "censimento" {
			if !strings.HasSuffix(p, ".asc") {
				n++
			}
		}
		return nil
	})
	return n
}

// writeDeliveries drops, for every comune with cards IN PRODUZIONE, its
// prefettura's manifest row for each card (collected by the ASC), and the
// comune's requests: the ASC registers the ALS's card, the ALS the other
// cards, the ALP registers one more workstation. It returns the files.
func (w *workdir) writeDeliveries(t *testing.T) int {
	t.Helper()
	st := w.openStore(false)
	defer st.Close()
	comuni := istat.Default()
	manifests := map[string]*bytes.Buffer{}
	type signedFile struct{ cf, body string }
	requests := map[string]signedFile{} // drop path -> signer and content
	err := st.View(func(tx *store.Tx) error {
		return tx.Comuni(func(c *domain.Comune) error {
			var asc, als, alp string
			type holder struct{ cf, serial string }
			var holders []holder
			err := tx.UtenzeOfComune(c.ISTAT, func(u *domain.Utenza) error {
				p, err := tx.Person(u.CF)
				if err != nil {
					return err
				}
				switch {
				case u.Has(domain.ASC) && asc == "":
					asc = u.CF
				case u.Has(domain.ALS) && als == "":
					als = u.CF
				case u.Has(domain.ALP) && alp == "":
					alp = u.CF
				}
				if p.Card != "" {
					if sc, err := tx.Card(p.Card); err == nil && sc.State == domain.CardProduzione && sc.ISTAT == c.ISTAT {
						holders = append(holders, holder{u.CF, p.Card})
					}
				}
				return nil
			})
			if err != nil || asc == "" || als == "" || alp == "" {
				return err
			}
			ppp, ok := comuni.Prefettura(c.ISTAT)
			if !ok {
				return fmt.Errorf("comune %s has no prefettura", c.ISTAT)
			}
			if manifests[ppp] == nil {
				manifests[ppp] = bytes.NewBufferString("Codice ISTAT;Seriale;Codice Fiscale;Data consegna;Ritirata da\n")
			}
			// One file per operator, each signed with his card: the
			// sindaco registers the ALS's card, the ALS the others', the
			// ALP a workstation (files are read in name order).
			const header = "Operazione;Operatore;Codice Fiscale;Seriale;Nome postazione\n"
			byASC, byALS := bytes.NewBufferString(header), bytes.NewBufferString(header)
			for _, h := range holders {
				fmt.Fprintf(manifests[ppp], "%s;%s;%s;20/11/2026;%s\n", c.ISTAT, h.serial, h.cf, asc)
				switch h.cf {
				case asc:
				case als:
					fmt.Fprintf(byASC, "REGISTRA_CONSEGNA_SC;%s;%s;%s;\n", asc, h.cf, h.serial)
				default:
					fmt.Fprintf(byALS, "REGISTRA_CONSEGNA_SC;%s;%s;%s;\n", als, h.cf, h.serial)
				}
			}
			dir := "var/drop/comuni/" + c.ISTAT + "/richieste/"
			if byASC.Len() > len(header) {
				requests[dir+"attivazione-1-asc.csv.p7m"] = signedFile{asc, byASC.String()}
			}
			if byALS.Len() > len(header) {
				requests[dir+"attivazione-2-als.csv.p7m"] = signedFile{als, byALS.String()}
			}
			requests[dir+"attivazione-3-alp.csv.p7m"] = signedFile{alp, fmt.Sprintf(header+"REGISTRA_POSTAZIONE;%s;;;Sportello %s\n", alp, c.ISTAT)}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for ppp, b := range manifests {
		p := w.path("var/drop/prefetture/" + ppp + "/consegne/plichi.csv")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p+".asc", w.prefetturaSignature(t, ppp, b.Bytes()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := cades.LoadDevCA(w.path("var/pki"))
	if err != nil {
		t.Fatal(err)
	}
	for rel, f := range requests {
		card, err := cades.IssueCard(ca, f.cf, "carta "+f.cf, time.Now().AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		env, err := cades.Sign([]byte(f.body), card.Cert, card.Key, false)
		if err != nil {
			t.Fatal(err)
		}
		p := w.path(rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, env, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return len(manifests) + len(requests)
}

// prefetturaSignature installs a key of prefettura ppp in
// keys.prefetture and returns its detached signature of a manifest:
// manifests are signed by default (docs/rules.md#manifests).
func (w *workdir) prefetturaSignature(t *testing.T, ppp string, manifest []byte) []byte {
	t.Helper()
	pub, sec, err := pgp.Generate("Prefettura "+ppp, "prefettura"+ppp+"@anprsec.invalid")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.path("var/keys/prefetture/"+ppp+".asc"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(sec))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := pgp.SignDetached(manifest, el[0])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// checkInvariants checks, on a copy of the store as a killed process left
// it: the history chain intact, no code issued twice, no input file with
// two records of processing, and no spool file without its message.
func (w *workdir) checkInvariants(t *testing.T, when string) {
	t.Helper()
	st := w.openStore(true)
	defer st.Close()
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("%s: history: %v", when, err)
	}
	issued := map[string]int{}
	es, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.attiva" })
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if issued[e.Key]++; issued[e.Key] == 2 {
			t.Errorf("%s: %s issued twice", when, e.Key)
		}
	}
	applied := map[string]int{}
	es, _ = st.History(0, 0, func(e *store.Entry) bool { return e.Action == "file.elaborato" })
	for _, e := range es {
		if applied[e.Key]++; applied[e.Key] == 2 {
			t.Errorf("%s: file %s (%s) processed twice", when, e.Key[:12], e.File)
		}
	}
}

var messageID = regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>`)

// checkCampaignOutcome: every input file processed once and moved; every
// certificate once in exactly one ZIP; every ATTIVA card's halves sent,
// one spool file per message with its own Message-ID; history intact.
func (w *workdir) checkCampaignOutcome(t *testing.T) {
	t.Helper()
	for _, root := range []string{"var/drop/censimento", "var/drop/prefetture", "var/drop/comuni"} {
		filepath.Walk(w.path(root), func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return nil
			}
			name := fi.Name()
			if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") {
				t.Errorf("temporary file left: %s", p)
			}
			if filepath.Base(filepath.Dir(p)) == "scartati" {
				t.Errorf("input refused: %s", p)
			}
			return nil
		})
	}
	st := w.openStore(false)
	var activeCards, sent int
	err := st.View(func(tx *store.Tx) error {
		ss, err := tx.CardsInState(domain.CardAttiva)
		if err != nil {
			return err
		}
		activeCards = len(ss)
		for _, s := range ss {
			m, err := tx.Mail(store.PINMailID(s))
			if err != nil || m.State != store.MailSent {
				t.Errorf("card %s ATTIVA but its second halves are not sent: %+v %v", s, m, err)
				continue
			}
			sent++
			if c, _ := tx.Card(s); len(c.SecondSealed) != 0 {
				t.Errorf("card %s: halves not erased", s)
			}
		}
		// The sindaco's first certificate of each comune is an e-mail too
		// (docs/rules.md#the-first-certificate).
		sentIDs, err := tx.MailsInState(store.MailSent)
		if err != nil {
			return err
		}
		for _, id := range sentIDs {
			if strings.HasPrefix(id, store.MailFirstCert+"/") {
				sent++
			}
		}
		left, _ := tx.CardsInState(domain.CardProduzione)
		left2, _ := tx.CardsInState(domain.CardConsegnata)
		if len(left)+len(left2) > 0 {
			t.Errorf("%d cards not delivered, %d not activated", len(left), len(left2))
		}
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	emls, _ := filepath.Glob(w.path("var/mail/*"))
	for _, f := range emls {
		data, _ := os.ReadFile(f)
		m := messageID.FindSubmatch(data)
		if m == nil || ids[string(m[1])] {
			t.Errorf("%s: Message-ID missing or repeated", f)
			continue
		}
		ids[string(m[1])] = true
	}
	if len(emls) != sent || activeCards == 0 {
		t.Errorf("%d spool files for %d messages sent (%d active cards)", len(emls), sent, activeCards)
	}
	w.checkCertsInZips(t)
	if out, _ := w.run("history", "verify"); !strings.Contains(out, "integra") {
		t.Errorf("history verify: %q", out)
	}
	t.Logf("outcome: %d cards active, %d messages, %d spool files", activeCards, sent, len(emls))
}

// checkCertsInZips: every ATTIVO certificate in exactly one published ZIP.
func (w *workdir) checkCertsInZips(t *testing.T) {
	t.Helper()
	st := w.openStore(false)
	serials := map[string]string{}
	st.View(func(tx *store.Tx) error {
		codes, _ := tx.PostazioniInState(domain.CertAttivo)
		for _, c := range codes {
			p, _ := tx.Postazione(c)
			serials[c] = p.Serial
		}
		return nil
	})
	st.Close()
	inZip := map[string]bool{}
	zips, _ := filepath.Glob(w.path("var/drop/comuni/*/certificati/*.zip"))
	for _, z := range zips {
		for code, serial := range zipCerts(t, z) {
			if inZip[code] {
				t.Errorf("%s in two ZIPs", code)
			}
			inZip[code] = true
			if serials[code] != serial {
				t.Errorf("%s: ZIP serial %s, store %s", code, serial, serials[code])
			}
		}
	}
	if len(inZip) != len(serials) || len(serials) == 0 {
		t.Errorf("%d certificates in ZIPs, %d ATTIVO", len(inZip), len(serials))
	}
}
