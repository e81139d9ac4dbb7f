package jobs

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/pki/pgp"
	"anprsec/store"
)

// withPGP gives the environment development OpenPGP keys (service,
// producer, gateway) in its folder, as `anprsec init` does.
func (c *certEnv) withPGP() {
	c.t.Helper()
	dir := filepath.Join(c.env.Config.Dir, "keys")
	if err := os.MkdirAll(filepath.Join(dir, "holders"), 0o700); err != nil {
		c.t.Fatal(err)
	}
	for _, k := range []struct{ name, email string }{{"service", "sicurezza@anprsec.invalid"}, {"producer", "produttore@anprsec.invalid"}, {"gateway", "gateway@anprsec.invalid"}} {
		pub, sec, err := pgp.Generate(k.name, k.email)
		if err != nil {
			c.t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, k.name+".pub.asc"), pub, 0o644)
		os.WriteFile(filepath.Join(dir, k.name+".sec.asc"), sec, 0o600)
	}
	k := &c.env.Config.Keys
	k.Service = filepath.Join(dir, "service.sec.asc")
	k.Producer = filepath.Join(dir, "producer.pub.asc")
	k.Gateway = filepath.Join(dir, "gateway.pub.asc")
	k.Holders = filepath.Join(dir, "holders")
	k.Prefetture = filepath.Join(dir, "prefetture")
}

func (c *certEnv) cards() map[string]*domain.SmartCard {
	c.t.Helper()
	out := map[string]*domain.SmartCard{}
	err := c.env.Store.View(func(tx *store.Tx) error {
		for _, st := range []domain.CardState{domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata, domain.CardRevocata, domain.CardScaduta} {
			ss, err := tx.CardsInState(st)
			if err != nil {
				return err
			}
			for _, s := range ss {
				sc, err := tx.Card(s)
				if err != nil {
					return err
				}
				out[s] = sc
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// readOrder decrypts a published order with the producer's secret key and
// checks the service's signature; it returns the CSV records.
func (c *certEnv) readOrder(path string) [][]string {
	c.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	dir := filepath.Join(c.env.Config.Dir, "keys")
	sec, err := pgp.ReadSecretFile(filepath.Join(dir, "producer.sec.asc"))
	if err != nil {
		c.t.Fatal(err)
	}
	service, err := pgp.ReadPublicFile(filepath.Join(dir, "service.pub.asc"))
	if err != nil {
		c.t.Fatal(err)
	}
	plain, signer, err := pgp.Decrypt(data, append(service, sec))
	if err != nil {
		c.t.Fatalf("decrypting %s: %v", path, err)
	}
	if pgp.Fingerprint(signer) != pgp.Fingerprint(service[0]) {
		c.t.Errorf("order signed by %s, not by the service key", pgp.Fingerprint(signer))
	}
	r := csv.NewReader(bytes.NewReader(plain))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil {
		c.t.Fatal(err)
	}
	return recs
}

// TestOrdini: after the census, one run of ordini-sc puts every requested
// card into one encrypted, signed order with the first halves; the cards
// are IN PRODUZIONE with the first halves erased and the second halves
// sealed; GnuPG decrypts the order with the producer's key and reports the
// service's good signature; a second run orders nothing.
func TestOrdini(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	before := c.cards()
	if len(before) == 0 {
		t.Fatal("the census requested no card")
	}
	// The first attempt commits the order but cannot publish it: the cards
	// stay RICHIESTA, in the pending order, secrets sealed.
	c.fd.fails.Store(1)
	counts, err := c.run(ordiniJob)
	if err == nil || counts["cards_ordered"] != len(before) || counts["orders"] != 0 {
		t.Fatalf("failed publication: counts %v, err %v", counts, err)
	}
	for s, sc := range c.cards() {
		if sc.State != domain.CardRichiesta || sc.Order == "" || len(sc.FirstSealed) == 0 || len(sc.SecondSealed) == 0 {
			t.Errorf("%s after a failed publication: %s, order %q", s, sc.State, sc.Order)
		}
	}
	counts, err = c.run(ordiniJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["cards_ordered"] != 0 || counts["orders"] != 1 || counts["cards_in_production"] != len(before) {
		t.Errorf("counts %v, %d cards", counts, len(before))
	}
	orders, _ := filepath.Glob(filepath.Join(c.root, "produttore", "ordini", "*"))
	if len(orders) != 1 || !strings.HasPrefix(filepath.Base(orders[0]), "ordine-") || !strings.HasSuffix(orders[0], ".csv.pgp") {
		t.Fatalf("orders: %v", orders)
	}
	recs := c.readOrder(orders[0])
	if strings.Join(recs[0], ";") != strings.Join(OrderHeader, ";") {
		t.Errorf("header %q", recs[0])
	}
	if len(recs) != len(before)+1 {
		t.Fatalf("order has %d rows, want %d", len(recs)-1, len(before))
	}
	after := c.cards()
	for _, r := range recs[1:] {
		sc := after[r[0]]
		if sc == nil || sc.CF != r[1] || sc.ISTAT != r[4] || r[6] != "058" || r[5] == "" || r[2] == "" {
			t.Errorf("order row %q, card %+v", r, sc)
			continue
		}
		if sc.State != domain.CardProduzione || len(sc.FirstSealed) != 0 || len(sc.SecondSealed) == 0 || sc.Expires.IsZero() || sc.Order != filepath.Base(orders[0]) {
			t.Errorf("card %s after the order: state %s, first %d bytes, second %d bytes, expires %v, order %q", sc.Serial, sc.State, len(sc.FirstSealed), len(sc.SecondSealed), sc.Expires, sc.Order)
		}
		second, err := c.env.Sealer.Open(sc.SecondSealed, domain.CardSecretsSealContext(sc.Serial, "seconda"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := pki.UnmarshalCardHalf(second)
		if err != nil {
			t.Fatal(err)
		}
		if len(r[7]) != 4 || len(r[8]) != 4 || len(r[9]) != 5 || len(h.PIN) != 4 || len(h.Password) != 5 {
			t.Errorf("halves: order %q, second %+v", r[7:], h)
		}
		if bytes.Contains(sc.SecondSealed, []byte(h.PIN+h.PUK)) {
			t.Error("the second half is stored in clear")
		}
	}

	// GnuPG reads it with the producer's secret key.
	if _, err := exec.LookPath("gpg"); err == nil {
		home, err := os.MkdirTemp("", "gpg")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(home)
		defer exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		keys := filepath.Join(c.env.Config.Dir, "keys")
		for _, f := range []string{"producer.sec.asc", "service.pub.asc"} {
			if out, err := exec.Command("gpg", "--batch", "--homedir", home, "--import", filepath.Join(keys, f)).CombinedOutput(); err != nil {
				t.Fatalf("gpg import %s: %v\n%s", f, err, out)
			}
		}
		cmd := exec.Command("gpg", "--batch", "--homedir", home, "--trust-model", "always", "--decrypt", orders[0])
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg --decrypt: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "Good signature") || !strings.HasPrefix(stdout.String(), "Seriale;Codice Fiscale;") {
			t.Errorf("gpg: %s\n%.200s", stderr.String(), stdout.String())
		}
	} else {
		t.Log("gpg not installed: GnuPG check skipped")
	}

	// Nothing new: no second order.
	counts, err = c.run(ordiniJob)
	if err != nil || counts["orders"] != 0 {
		t.Errorf("second run: %v %v", counts, err)
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "smartcard.in-produzione" })
	if len(hist) != len(before) {
		t.Errorf("%d history entries smartcard.in-produzione, want %d", len(hist), len(before))
	}
}

// ackLostDrop writes the next produttore/ file, then reports a failure: the
// file is published but the job does not know (an SFTP rename whose reply is
// lost, or kill -9 between Drop.Write and the following Update).
type ackLostDrop struct {
	drop.Drop
	lose int
}

func (d *ackLostDrop) Write(ctx context.Context, name string, r io.Reader) error {
	if err := d.Drop.Write(ctx, name, r); err != nil {
		return err
	}
	if strings.HasPrefix(name, "produttore/") && d.lose > 0 {
		d.lose--
		return errors.New("simulated: written, but the acknowledgement was lost")
	}
	return nil
}

// TestOrderRepublishedWithTheSameContent: no order is published twice with
// different contents (docs/rules.md#card-lifecycle). When the file of a
// pending order is published but the job does not learn it (a lost reply
// after Drop.Write, or a crash before the following commit) and a card of
// the order is replaced in between (NUOVA_SC), the same
// ordine-<stamp>.csv.pgp is written again with the same cards.
func TestOrderRepublishedWithTheSameContent(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	c.env.Drop = &ackLostDrop{Drop: c.fd, lose: 1}
	if _, err := c.run(ordiniJob); err == nil {
		t.Fatal("the simulated lost acknowledgement did not fail the run")
	}
	orders, _ := filepath.Glob(filepath.Join(c.root, "produttore", "ordini", "*"))
	if len(orders) != 1 {
		t.Fatalf("orders: %v", orders)
	}
	first := c.readOrder(orders[0])
	// Meanwhile the ALP's card is reported lost (console NUOVA_SC or CLI).
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		_, _, err := lifecycle.ReplaceCard(tx, store.Source{Actor: lifecycle.BackOfficeActor}, cfALP, "smarrimento", c.env.Config.Cards.SerialPrefix, "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(ordiniJob); err != nil {
		t.Fatal(err)
	}
	again := c.readOrder(orders[0])
	join := func(recs [][]string) string {
		var rows []string
		for _, r := range recs {
			rows = append(rows, strings.Join(r, ";"))
		}
		return strings.Join(rows, "\n")
	}
	if join(first) != join(again) {
		t.Errorf("%s published twice with different contents: %d rows, then %d rows", filepath.Base(orders[0]), len(first)-1, len(again)-1)
	}
}

// TestOneRunOrdersEveryRequestedCardInOrdersOfAtMostOrderMax: with more
// cards requested than cards.order_max, one run of ordini-sc makes as many
// orders as needed, each of at most cards.order_max cards, and puts every
// card IN PRODUZIONE; each card is in exactly one order file.
func TestOneRunOrdersEveryRequestedCardInOrdersOfAtMostOrderMax(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	before := c.cards()
	if len(before) < 3 {
		t.Fatalf("the census requested %d cards, want at least 3", len(before))
	}
	c.env.Config.Cards.OrderMax = 2
	counts, err := c.run(ordiniJob)
	if err != nil {
		t.Fatal(err)
	}
	want := (len(before) + 1) / 2
	if counts["cards_ordered"] != len(before) || counts["orders"] != want || counts["cards_in_production"] != len(before) {
		t.Errorf("counts %v for %d cards, want %d orders", counts, len(before), want)
	}
	for s, sc := range c.cards() {
		if sc.State != domain.CardProduzione {
			t.Errorf("%s after one run: %s", s, sc.State)
		}
	}
	orders, _ := filepath.Glob(filepath.Join(c.root, "produttore", "ordini", "*"))
	if len(orders) != want {
		t.Fatalf("%d order files, want %d", len(orders), want)
	}
	seen := map[string]int{}
	for _, o := range orders {
		recs := c.readOrder(o)
		if len(recs) < 2 || len(recs) > 3 {
			t.Errorf("%s holds %d cards, want 1 or 2", filepath.Base(o), len(recs)-1)
		}
		for _, r := range recs[1:] {
			seen[r[0]]++
		}
	}
	for s := range before {
		if seen[s] != 1 {
			t.Errorf("card %s is in %d order files", s, seen[s])
		}
	}
}

func TestAnOrderLargerThanATransactionIsOneFileWithEveryCardInProduction(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	before := c.cards()
	if len(before) < 3 {
		t.Fatalf("the census requested %d cards, want at least 3", len(before))
	}
	defer func(n int) { orderTxCards = n }(orderTxCards)
	orderTxCards = 1
	c.env.Config.Cards.OrderMax = len(before)
	counts, err := c.run(ordiniJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["cards_ordered"] != len(before) || counts["orders"] != 1 || counts["cards_in_production"] != len(before) {
		t.Errorf("counts %v for %d cards, want them all in 1 order", counts, len(before))
	}
	for s, sc := range c.cards() {
		if sc.State != domain.CardProduzione || len(sc.FirstSealed) != 0 || len(sc.SecondSealed) == 0 {
			t.Errorf("%s after one run: %s, first halves %d bytes, second %d", s, sc.State, len(sc.FirstSealed), len(sc.SecondSealed))
		}
	}
	orders, _ := filepath.Glob(filepath.Join(c.root, "produttore", "ordini", "*"))
	if len(orders) != 1 {
		t.Fatalf("%d order files, want 1", len(orders))
	}
	if recs := c.readOrder(orders[0]); len(recs)-1 != len(before) {
		t.Errorf("the order holds %d cards, want %d", len(recs)-1, len(before))
	}
}

func TestAnOrderCutShortByACrashHoldsOnlyTheCardsThatNameIt(t *testing.T) {
	c := newCertEnv(t)
	c.withPGP()
	c.census()
	var serials []string
	for s := range c.cards() {
		serials = append(serials, s)
	}
	if len(serials) < 3 {
		t.Fatalf("the census requested %d cards, want at least 3", len(serials))
	}
	sort.Strings(serials)
	first := serials[0]
	// What a crash leaves after an order's first transaction (the order
	// with its serials) and the first of its cards' transactions.
	err := c.env.Store.Update(func(tx *store.Tx) error {
		o, err := tx.NewCardOrder(tx.Now, c.env.Loc, serials)
		if err != nil {
			return err
		}
		card, err := tx.Card(first)
		if err != nil {
			return err
		}
		sec, err := pki.NewCardSecrets()
		if err != nil {
			return err
		}
		a, b := sec.Split()
		card.FirstSealed = c.env.Sealer.Seal(a.Marshal(), domain.CardSecretsSealContext(first, "prima"))
		card.SecondSealed = c.env.Sealer.Seal(b.Marshal(), domain.CardSecretsSealContext(first, "seconda"))
		card.Order = o.Name
		return tx.PutCard(card)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(ordiniJob); err != nil {
		t.Fatal(err)
	}
	for s, sc := range c.cards() {
		if sc.State != domain.CardProduzione {
			t.Errorf("%s after the run: %s", s, sc.State)
		}
	}
	orders, _ := filepath.Glob(filepath.Join(c.root, "produttore", "ordini", "*"))
	if len(orders) != 2 {
		t.Fatalf("%d order files, want 2 (the cut order and one for the rest)", len(orders))
	}
	seen := map[string]int{}
	cut := false
	for _, o := range orders {
		recs := c.readOrder(o)
		if len(recs) == 2 && recs[1][0] == first {
			cut = true
		}
		for _, r := range recs[1:] {
			seen[r[0]]++
		}
	}
	if !cut {
		t.Errorf("no order file lists only %s, the one card that named the cut order", first)
	}
	for _, s := range serials {
		if seen[s] != 1 {
			t.Errorf("card %s is in %d order files", s, seen[s])
		}
	}
}

func TestEveryOrderNamesEachHolderAndComuneAsTheStoreDoes(t *testing.T) {
	// One order (names read with it) and orders of 2 cards (the run reads
	// every holder's name at its start).
	for _, orderMax := range []int{1000, 2} {
		t.Run(fmt.Sprint(orderMax), func(t *testing.T) {
			c := newCertEnv(t)
			c.withPGP()
			c.census()
			before := c.cards()
			if len(before) < 3 {
				t.Fatalf("the census requested %d cards, want at least 3", len(before))
			}
			c.env.Config.Cards.OrderMax = orderMax
			if _, err := c.run(ordiniJob); err != nil {
				t.Fatal(err)
			}
			orders, _ := filepath.Glob(filepath.Join(c.root, "produttore", "ordini", "*"))
			rows := 0
			for _, o := range orders {
				for _, r := range c.readOrder(o)[1:] {
					rows++
					err := c.env.Store.View(func(tx *store.Tx) error {
						p, err := tx.Person(r[1])
						if err != nil {
							return err
						}
						com, err := tx.Comune(r[4])
						if err != nil {
							return err
						}
						if r[2] != p.Surname || r[3] != p.Name || r[5] != com.Name || p.Surname == "" || com.Name == "" {
							t.Errorf("row %q: holder %s %s, comune %s", r[:7], p.Surname, p.Name, com.Name)
						}
						return nil
					})
					if err != nil {
						t.Fatalf("row %q: %v", r[:7], err)
					}
				}
			}
			if rows != len(before) {
				t.Errorf("%d rows in %d orders, want %d", rows, len(orders), len(before))
			}
		})
	}
}
