package e2e

import (
	"bytes"
	"encoding/csv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki/pgp"
	"anprsec/store"
)

// TestKillDuringCards: kill -9 during invio-pin and during ordini-sc loses
// nothing; a message in flight is repeated only with the same Message-ID;
// no order is published twice with different contents
// (docs/rules.md#card-lifecycle); and no clear half exists at rest, in a
// backup or in a log (docs/rules.md#card-secrets).
//
// A census of 300 comuni requests about a thousand cards. ordini-sc
// (cards.order_max 150, so one run makes several orders) is killed at
// random moments of its runs, then run to the end: every card is in exactly one order file,
// each order file decrypts (producer key) with a good signature, every card
// is IN PRODUZIONE. Then every card is delivered and activated (in
// process), and invio-pin (to the spool) is killed at random moments, then
// run to the end: one .eml per card (the spool file is named by the
// Message-ID, so a repeated message replaces itself), every message sent,
// every second half erased. Finally the store's values, a backup and every
// log line are searched for the halves in clear.
func TestKillDuringCards(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and orders and mails about a thousand cards")
	}
	bin := binary(t)
	base := t.TempDir()
	gen := &workdir{t: t, bin: bin, dir: base}
	wbPath := filepath.Join(base, "big.xlsx")
	gen.run("gen", "censimento", "--comuni", "300", "--users", "2500", "-o", wbPath)
	workbook, err := os.ReadFile(wbPath)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkdir(t, bin, filepath.Join(base, "w"), workbook)
	w.editConfig(map[string]string{"order_max: 5000": "order_max: 150"})
	var logs bytes.Buffer
	_, stderr := w.run("jobs", "run", "ingest-censimento")
	logs.WriteString(stderr)
	cards := w.cardsIn(domain.CardRichiesta)
	if cards < 500 {
		t.Fatalf("%d cards requested, want at least 500", cards)
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	t.Logf("%d cards; kill delays drawn with seed %d", cards, seed)

	// ordini-sc, killed. One run orders every card (several orders of
	// cards.order_max), so the time of an uninterrupted run is measured on
	// a copy of the working directory, and a run that ends before its kill
	// while fewer than three kills have hit starts over from a copy taken
	// before (a kill may land before the first order is committed).
	before := filepath.Join(base, "before-orders")
	if err := copyDir(w.dir, before); err != nil {
		t.Fatal(err)
	}
	probe := &workdir{t: t, bin: bin, dir: filepath.Join(base, "probe")}
	if err := copyDir(w.dir, probe.dir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	probe.run("jobs", "run", "ordini-sc")
	aim := time.Since(start) // aim: see TestKillDuringCertificati
	t.Logf("an uninterrupted ordini-sc took %v", aim.Round(time.Millisecond))
	hits := 0
	for i := 0; i < 12; i++ {
		if w.cardsIn(domain.CardRichiesta) == 0 && w.pendingOrders() == 0 {
			if hits >= 3 {
				break
			}
			if err := os.RemoveAll(w.dir); err != nil {
				t.Fatal(err)
			}
			if err := copyDir(before, w.dir); err != nil {
				t.Fatal(err)
			}
		}
		d := time.Duration(float64(aim) * (0.1 + 0.8*rng.Float64()))
		killed, ran, se := w.killCmdWithin(d, "jobs", "run", "ordini-sc")
		logs.WriteString(se)
		if killed {
			hits++
		} else {
			aim = min(aim, ran)
		}
		t.Logf("ordini-sc kill %d after %v (hit: %v): %d cards still RICHIESTA, %d orders pending", i+1, d.Round(time.Millisecond), killed, w.cardsIn(domain.CardRichiesta), w.pendingOrders())
	}
	for i := 0; w.cardsIn(domain.CardRichiesta) > 0 || w.pendingOrders() > 0; i++ {
		if i == 20 {
			t.Fatal("cards still to order after 20 runs")
		}
		_, stderr = w.run("jobs", "run", "ordini-sc")
		logs.WriteString(stderr)
	}
	if hits == 0 {
		t.Error("no kill hit a running ordini-sc")
	}
	firsts := w.checkOrders(t, cards)

	// Every card delivered and activated: second halves queued, in
	// transactions of 200 cards (a transaction is bounded: store.Open).
	st := w.openStore(false)
	var serials []string
	err = st.View(func(tx *store.Tx) (err error) {
		serials, err = tx.CardsInState(domain.CardProduzione)
		return err
	})
	for chunk := range slices.Chunk(serials, 200) {
		if err != nil {
			break
		}
		err = st.Update(func(tx *store.Tx) error {
			for _, s := range chunk {
				c, err := tx.Card(s)
				if err != nil {
					return err
				}
				src := store.Source{Actor: "test"}
				if err := lifecycle.DeliverCard(tx, src, c, time.Time{}, "TEST", false); err != nil {
					return err
				}
				if err := lifecycle.ActivateCard(tx, src, c); err != nil {
					return err
				}
			}
			return nil
		})
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	// invio-pin (to the spool: a file written and synced per message),
	// killed at random moments, then run to the end.
	hits, aim = 0, 250*time.Millisecond
	for i := 0; i < 8 && w.mails(store.MailQueued) > 0; i++ {
		d := time.Duration(float64(aim) * (0.1 + 0.9*rng.Float64()))
		killed, ran, se := w.killCmdWithin(d, "jobs", "run", "invio-pin")
		logs.WriteString(se)
		if killed {
			hits++
		} else {
			aim = min(aim, ran)
		}
		t.Logf("invio-pin kill %d after %v (hit: %v): %d sent, %d queued", i+1, d, killed, w.mails(store.MailSent), w.mails(store.MailQueued))
	}
	if hits == 0 {
		t.Error("no kill hit a running invio-pin")
	}
	for i := 0; w.mails(store.MailQueued) > 0; i++ {
		if i == 10 {
			t.Fatal("messages still queued after 10 runs")
		}
		_, stderr = w.run("jobs", "run", "invio-pin")
		logs.WriteString(stderr)
	}
	seconds := w.checkMails(t, cards)

	// No half in clear: the store's values, a backup, the logs.
	pattern := regexp.MustCompile(`"(pin|puk|password)":"`)
	st = w.openStore(false)
	err = st.RawScan(func(k, v []byte) error {
		if pattern.Match(v) {
			t.Errorf("store key %q holds a half in clear", k)
		}
		for _, h := range seconds {
			if bytes.Contains(v, []byte(h)) {
				t.Errorf("store key %q holds the second half %q", k, h)
			}
		}
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	w.run("backup", "backup.anprsec")
	bk, err := os.ReadFile(w.path("backup.anprsec"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range append(append([]string{}, firsts...), seconds...) {
		if bytes.Contains(bk, []byte(h)) || strings.Contains(logs.String(), h) {
			t.Errorf("the half %q is in clear in the backup or the logs", h)
		}
	}
	if out, _ := w.run("history", "verify"); !strings.Contains(out, "integra") {
		t.Errorf("history verify: %q", out)
	}
}

func (w *workdir) cardsIn(state domain.CardState) int {
	w.t.Helper()
	st := w.openStore(false)
	defer st.Close()
	n := 0
	if err := st.View(func(tx *store.Tx) error {
		s, err := tx.CardsInState(state)
		n = len(s)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *workdir) pendingOrders() int {
	w.t.Helper()
	st := w.openStore(false)
	defer st.Close()
	n := 0
	if err := st.View(func(tx *store.Tx) error {
		s, err := tx.PendingCardOrders()
		n = len(s)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *workdir) mails(state store.MailState) int {
	w.t.Helper()
	st := w.openStore(false)
	defer st.Close()
	n := 0
	if err := st.View(func(tx *store.Tx) error {
		s, err := tx.MailsInState(state)
		n = len(s)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// checkOrders decrypts every published order: each card once, in the
// order the store says, the store's orders all published; it returns the
// password first halves (long enough to search for).
func (w *workdir) checkOrders(t *testing.T, cards int) []string {
	t.Helper()
	sec, err := pgp.ReadSecretFile(w.path("var/keys/producer.sec.asc"))
	if err != nil {
		t.Fatal(err)
	}
	service, err := pgp.ReadPublicFile(w.path("var/keys/service.pub.asc"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(w.path("var/drop/produttore/ordini/*"))
	seen := map[string]string{}
	var halves []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".csv.pgp") {
			t.Errorf("not an order: %s", f)
			continue
		}
		data, _ := os.ReadFile(f)
		plain, signer, err := pgp.Decrypt(data, append(service, sec))
		if err != nil || pgp.Fingerprint(signer) != pgp.Fingerprint(service[0]) {
			t.Errorf("%s: %v", f, err)
			continue
		}
		r := csv.NewReader(bytes.NewReader(plain))
		r.Comma = ';'
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs[1:] {
			if prev, ok := seen[rec[0]]; ok {
				t.Errorf("card %s in %s and in %s", rec[0], prev, filepath.Base(f))
			}
			seen[rec[0]] = filepath.Base(f)
			halves = append(halves, rec[9])
		}
	}
	st := w.openStore(false)
	defer st.Close()
	err = st.View(func(tx *store.Tx) error {
		for serial, file := range seen {
			c, err := tx.Card(serial)
			if err != nil {
				return err
			}
			if c.State != domain.CardProduzione || c.Order != file || len(c.FirstSealed) != 0 || len(c.SecondSealed) == 0 {
				t.Errorf("%s: %s, order %q (in %s), first %d bytes", serial, c.State, c.Order, file, len(c.FirstSealed))
			}
			o, err := tx.CardOrder(file)
			if err != nil || o.State != store.OrderPublished {
				t.Errorf("order %s: %+v %v", file, o, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != cards {
		t.Errorf("%d cards in %d order files, want %d", len(seen), len(files), cards)
	}
	return halves
}

// checkMails: one .eml per card, every message sent and its halves erased;
// it returns the password second halves, read back from a sample.
func (w *workdir) checkMails(t *testing.T, cards int) []string {
	t.Helper()
	emls, _ := filepath.Glob(w.path("var/mail/*"))
	if len(emls) != cards {
		t.Errorf("%d files in the spool, want one per card (%d)", len(emls), cards)
	}
	ids := map[string]bool{}
	gw, err := pgp.ReadSecretFile(w.path("var/keys/gateway.sec.asc"))
	if err != nil {
		t.Fatal(err)
	}
	service, _ := pgp.ReadPublicFile(w.path("var/keys/service.pub.asc"))
	var halves []string
	pw := regexp.MustCompile(`Password, seconda met=C3=A0:\s+(\S+)`)
	for i, f := range emls {
		if !strings.HasSuffix(f, ".eml") {
			t.Errorf("not a message: %s", f)
			continue
		}
		data, _ := os.ReadFile(f)
		id := regexp.MustCompile(`(?m)^Message-ID: <(pin-SC\d+@[^>]+)>`).FindSubmatch(data)
		if id == nil || ids[string(id[1])] {
			t.Errorf("%s: Message-ID missing or repeated", f)
			continue
		}
		ids[string(id[1])] = true
		if i%50 != 0 {
			continue
		}
		a := bytes.Index(data, []byte("-----BEGIN PGP MESSAGE-----"))
		b := bytes.Index(data, []byte("-----END PGP MESSAGE-----"))
		plain, _, err := pgp.Decrypt(data[a:b+len("-----END PGP MESSAGE-----")], append(service, gw))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if m := pw.FindSubmatch(plain); m != nil {
			halves = append(halves, string(m[1]))
		} else {
			t.Errorf("%s: no password half in the text", f)
		}
	}
	if left := w.mails(store.MailQueued) + w.mails(store.MailFailed); left != 0 {
		t.Errorf("%d messages not sent", left)
	}
	if n := w.mails(store.MailSent); n != cards {
		t.Errorf("%d messages sent, want %d", n, cards)
	}
	st := w.openStore(false)
	defer st.Close()
	st.View(func(tx *store.Tx) error {
		ss, _ := tx.CardsInState(domain.CardAttiva)
		for _, s := range ss {
			c, _ := tx.Card(s)
			if len(c.SecondSealed) != 0 {
				t.Errorf("%s: second halves still sealed after the message", s)
			}
		}
		return nil
	})
	return halves
}
