package jobs

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"anprsec/domain"
	"anprsec/pki/pgp"
	"anprsec/secret"
	"anprsec/store"
)

// The fixture's people in comune 058091 (Roma, prefettura 058).
const (
	cfASC = "RSSMRA68A01H501Y" // ASC, card SC0000000001
	cfALS = "CCCFBA85D03L21VE" // ALS, card SC0000000002
	cfALP = "MRTMRA83T56A269B" // ALP, card SC0000000003
)

func (c *certEnv) drop(rel, content string) {
	c.t.Helper()
	p := filepath.Join(c.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// receipt reads a receipt: riga -> [esito, codice, messaggio].
func (c *certEnv) receipt(rel string) map[string][]string {
	c.t.Helper()
	data, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		c.t.Fatal(err)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, rec := range recs[1:] {
		out[rec[1]] = rec[2:]
	}
	return out
}

const manifestHeader = "Codice ISTAT;Seriale;Codice Fiscale;Data consegna;Ritirata da\n"

// prefetturaSigner returns the development key of prefettura ppp, made and
// installed in keys.prefetture/<PPP>.asc on first use (its secret part is
// kept in the test's folder).
func (c *certEnv) prefetturaSigner(ppp string) *openpgp.Entity {
	c.t.Helper()
	secPath := filepath.Join(c.env.Config.Dir, "prefetture-dev", ppp+".sec.asc")
	if _, err := os.Stat(secPath); err != nil {
		pub, sec, err := pgp.Generate("Prefettura "+ppp+" - sviluppo", "prefettura"+ppp+"@anprsec.invalid")
		if err != nil {
			c.t.Fatal(err)
		}
		dir := c.env.Config.Path(c.env.Config.Keys.Prefetture)
		for p, data := range map[string][]byte{filepath.Join(dir, ppp+".asc"): pub, secPath: sec} {
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				c.t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o600); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	e, err := pgp.ReadSecretFile(secPath)
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

// dropSigned drops a manifest, prefetture/<PPP>/consegne/<name>, with its
// detached signature <name>.asc by the prefettura's key (made on first
// use): signatures are required by default.
func (c *certEnv) dropSigned(rel, content string) {
	c.t.Helper()
	parts := strings.Split(rel, "/")
	if len(parts) < 3 || parts[0] != "prefetture" {
		c.t.Fatalf("%s is not a manifest path", rel)
	}
	sig, err := pgp.SignDetached([]byte(content), c.prefetturaSigner(parts[1]))
	if err != nil {
		c.t.Fatal(err)
	}
	c.drop(rel+".asc", string(sig))
	c.drop(rel, content)
}

// TestConsegne: a manifest of prefettura 058 delivers the sindaco's card
// (ATTIVA at once, second halves queued) and the ALS's (CONSEGNATA), and
// refuses, each with its reason in the receipt and the history: a card of
// someone else, an unknown serial, a date in the future, a parcel collected
// by the ALP (not ASC or APL), a comune of another prefettura, a second
// delivery of the same card.
func TestConsegne(t *testing.T) {
	c := newCertEnv(t)
	c.orderedCards()
	c.dropSigned("prefetture/058/consegne/consegne-1.csv", manifestHeader+
		"58091;SC0000000001;"+cfASC+";20/11/2026;"+cfASC+"\n"+ // 2: numeric ISTAT as Excel writes it
		"058091;SC0000000002;"+cfALS+";2026-11-20;"+cfASC+"\n"+ // 3
		"058091;SC0000000003;"+cfASC+";20/11/2026;"+cfASC+"\n"+ // 4: not his card
		"058091;SC0000000099;"+cfALP+";20/11/2026;"+cfASC+"\n"+ // 5
		"058091;SC0000000003;"+cfALP+";01/01/2099;"+cfASC+"\n"+ // 6
		"058091;SC0000000003;"+cfALP+";20/11/2026;"+cfALP+"\n"+ // 7: the ALP cannot collect
		"015146;SC0000000003;"+cfALP+";20/11/2026;"+cfASC+"\n"+ // 8: Milano, prefettura 015
		"058091;SC0000000001;"+cfASC+";20/11/2026;"+cfASC+"\n") // 9: again
	c.drop("prefetture/999/consegne/x.csv", manifestHeader)
	counts, err := c.run(consegneJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["rows_ok"] != 2 || counts["rows_refused"] != 6 || counts["unknown_folders"] != 1 {
		t.Errorf("counts %v", counts)
	}
	got := c.receipt("prefetture/058/consegne/esiti/consegne-1.csv.esito.csv")
	for row, want := range map[string]string{
		"2": "OK ATTIVA", "3": "OK CONSEGNATA", "4": "SCARTATO TITOLARE_DIVERSO", "5": "SCARTATO SERIALE_SCONOSCIUTO",
		"6": "SCARTATO DATA_FUTURA", "7": "SCARTATO RITIRO_NON_AUTORIZZATO", "8": "SCARTATO FUORI_PROVINCIA", "9": "SCARTATO GIA_CONSEGNATA",
	} {
		if g := got[row]; len(g) < 3 || g[0]+" "+g[1] != want {
			t.Errorf("row %s: %q, want %s", row, g, want)
		}
	}
	cards := c.cards()
	if s := cards["SC0000000001"]; s.State != domain.CardAttiva || s.DeliveredTo != cfASC || s.Activated.IsZero() || s.Delivered.Day() != 20 {
		t.Errorf("ASC card: %+v", s)
	}
	if s := cards["SC0000000002"]; s.State != domain.CardConsegnata {
		t.Errorf("ALS card: %s", s.State)
	}
	if s := cards["SC0000000003"]; s.State != domain.CardProduzione {
		t.Errorf("ALP card: %s", s.State)
	}
	var queued []string
	c.env.Store.View(func(tx *store.Tx) error {
		queued, err = tx.MailsInState(store.MailQueued)
		return err
	})
	if strings.Join(queued, ",") != "pin/SC0000000001" {
		t.Errorf("queued mails %v", queued)
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "consegna.rifiutata" })
	if len(hist) != 6 || hist[0].Actor != "prefettura 058" || hist[0].Row != 4 || !strings.Contains(hist[0].Detail, "TITOLARE_DIVERSO") {
		t.Errorf("refusals in the history: %d, first %+v", len(hist), hist[0])
	}
	if l, _ := filepath.Glob(filepath.Join(c.root, "prefetture/058/consegne/elaborati/*")); len(l) != 2 {
		t.Errorf("elaborati: %v, want the manifest and its signature", l)
	}
	if l, _ := filepath.Glob(filepath.Join(c.root, "prefetture/999/consegne/*")); len(l) != 1 {
		t.Errorf("the unknown prefettura's folder was touched: %v", l)
	}

	// Then the comune registers the delivery of the ALS's card (a console
	// request REGISTRA_CONSEGNA_SC does the same; here the CLI's
	// operation): the sindaco's and the ALS's second halves go out by
	// e-mail.
	c.activateDelivered("SC0000000002")
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 2 {
		t.Errorf("invio-pin: %v %v", counts, err)
	}
}

// TestConsegneSignature: when prefettura 058 has a key, a manifest without
// its signature, or with a signature that does not match, is refused whole
// (nothing applied); a signed one is applied and its signature moves with
// it to elaborati/.
func TestConsegneSignature(t *testing.T) {
	c := newCertEnv(t)
	c.orderedCards()
	pub, sec, err := pgp.Generate("Prefettura di Roma", "prefettura.roma@interno.invalid")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(c.env.Config.Keys.Prefetture, 0o755)
	os.WriteFile(filepath.Join(c.env.Config.Keys.Prefetture, "058.asc"), pub, 0o644)
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(sec))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(data string) string {
		var b bytes.Buffer
		if err := openpgp.ArmoredDetachSign(&b, el[0], strings.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	good := manifestHeader + "058091;SC0000000001;" + cfASC + ";20/11/2026;" + cfASC + "\n"
	other := manifestHeader + "058091;SC0000000002;" + cfALS + ";20/11/2026;" + cfASC + "\n"
	c.drop("prefetture/058/consegne/a-unsigned.csv", other)
	c.drop("prefetture/058/consegne/b-badsig.csv", other)
	c.drop("prefetture/058/consegne/b-badsig.csv.asc", sign(good))
	c.drop("prefetture/058/consegne/c-signed.csv", good)
	c.drop("prefetture/058/consegne/c-signed.csv.asc", sign(good))
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a-unsigned.csv": "FIRMA_MANCANTE", "b-badsig.csv": "FIRMA_NON_VALIDA"} {
		if g := c.receipt("prefetture/058/consegne/esiti/" + name + ".esito.csv")["0"]; len(g) < 2 || g[1] != want {
			t.Errorf("%s: %q, want %s", name, g, want)
		}
	}
	if g := c.receipt("prefetture/058/consegne/esiti/c-signed.csv.esito.csv")["2"]; len(g) < 2 || g[1] != "ATTIVA" {
		t.Errorf("signed manifest: %q", g)
	}
	cards := c.cards()
	if cards["SC0000000001"].State != domain.CardAttiva || cards["SC0000000002"].State != domain.CardProduzione {
		t.Errorf("states %s %s", cards["SC0000000001"].State, cards["SC0000000002"].State)
	}
	var moved []string
	for _, sub := range []string{"elaborati", "scartati"} {
		l, _ := filepath.Glob(filepath.Join(c.root, "prefetture/058/consegne", sub, "*"))
		for _, p := range l {
			moved = append(moved, sub+"/"+filepath.Base(p))
		}
	}
	sort.Strings(moved)
	if strings.Join(moved, ",") != "elaborati/c-signed.csv,elaborati/c-signed.csv.asc,scartati/a-unsigned.csv,scartati/b-badsig.csv,scartati/b-badsig.csv.asc" {
		t.Errorf("moved: %v", moved)
	}

	// The refused content again, now with its right signature: applied.
	c.drop("prefetture/058/consegne/d-fixed.csv", other)
	c.drop("prefetture/058/consegne/d-fixed.csv.asc", sign(other))
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	if g := c.receipt("prefetture/058/consegne/esiti/d-fixed.csv.esito.csv")["2"]; len(g) < 2 || g[1] != "CONSEGNATA" {
		t.Errorf("re-signed manifest: %q", g)
	}

	// Names in upper case, as Windows tools write them: the signature is
	// found and moves with its file.
	third := manifestHeader + "058091;SC0000000003;" + cfALP + ";20/11/2026;" + cfASC + "\n"
	c.drop("prefetture/058/consegne/E-UPPER.CSV", third)
	c.drop("prefetture/058/consegne/E-UPPER.CSV.ASC", sign(third))
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	if g := c.receipt("prefetture/058/consegne/esiti/E-UPPER.CSV.esito.csv")["2"]; len(g) < 2 || g[1] != "CONSEGNATA" {
		t.Errorf("upper-case manifest and signature: %q", g)
	}
	if l, _ := filepath.Glob(filepath.Join(c.root, "prefetture/058/consegne/elaborati/E-UPPER.CSV*")); len(l) != 2 {
		t.Errorf("moved: %v", l)
	}
}

// newClockedCertEnv is newCertEnv with a store whose clock is now: the
// transactions' tx.Now, which the jobs compare dates with.
func newClockedCertEnv(t *testing.T, now time.Time) *certEnv {
	t.Helper()
	c := newCertEnv(t)
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{1}, secret.KeySize), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.env.Store = st
	return c
}

// TestDeliveryDatedTomorrowIsInTheFuture: a delivery manifest row dated
// tomorrow has a date in the future, whatever the hour the job reads it:
// it is refused DATA_FUTURA (docs/rules.md#manifests), and the card stays
// IN PRODUZIONE rather than becoming CONSEGNATA DALLA PREFETTURA (or, for
// the sindaco, ATTIVA with his second halves e-mailed) on a day that has
// not come yet.
func TestDeliveryDatedTomorrowIsInTheFuture(t *testing.T) {
	rome, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, rome) // an afternoon; "tomorrow" is 26/11/2026
	c := newClockedCertEnv(t, now)
	c.orderedCards()
	c.dropSigned("prefetture/058/consegne/domani.csv", manifestHeader+
		"058091;SC0000000002;"+cfALS+";26/11/2026;"+cfASC+"\n") // 2: dated tomorrow
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	got := c.receipt("prefetture/058/consegne/esiti/domani.csv.esito.csv")
	if g := got["2"]; len(g) < 2 || g[0] != "SCARTATO" || g[1] != "DATA_FUTURA" {
		t.Errorf("row 2 dated 26/11/2026, read on 25/11/2026 at 15:00: receipt %q, want SCARTATO DATA_FUTURA", g)
	}
	if s := c.cards()["SC0000000002"]; s.State != domain.CardProduzione {
		t.Errorf("card SC0000000002 is %s after a delivery dated tomorrow, want it still %s", s.State, domain.CardProduzione)
	}
}

// TestDeliveryOfCardOfAnotherProvinceIsRefused: a prefettura hands the
// smart-card parcels to the comuni of its province, and only of its
// province (docs/rules.md#manifests): a card ordered for comune 058091 (the
// order to the producer names prefettura 058) listed in prefettura 015's
// manifest is refused, although its holder also has an utenza in a comune
// of province 015; the card's own comune counts, not only the manifest's
// Codice ISTAT.
func TestDeliveryOfCardOfAnotherProvinceIsRefused(t *testing.T) {
	c := newCertEnv(t)
	x := cfOf("PRFTTR00A01H501")
	people := append(append([]person{}, matrixPeople...), person{x, comA, []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, domain.CardProduzione})
	matrixStore(t, c, people)
	var serial string
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		p, _ := tx.Person(x)
		serial = p.Card
		return tx.PutUtenza(&domain.Utenza{ISTAT: comB, CF: x, Email: "xprefe@example.it", Profiles: []domain.Profile{domain.Operatore},
			Environments: []domain.Environment{domain.Produzione}, NeedsCard: true, State: domain.UtenzaAttiva})
	}); err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(c.env.Loc).Format("02/01/2006")
	c.dropSigned("prefetture/015/consegne/m.csv", manifestHeader+comB+";"+serial+";"+x+";"+today+";"+ascOther+"\n")
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	got := c.receipt("prefetture/015/consegne/esiti/m.csv.esito.csv")["2"]
	if len(got) < 2 || got[0] != "SCARTATO" {
		t.Errorf("prefettura 015 delivered card %s of comune %s (province 058): %q", serial, comA, got)
	}
	if s := c.cards()[serial]; s.State != domain.CardProduzione {
		t.Errorf("card %s of comune %s moved by prefettura 015: %s", serial, comA, s.State)
	}
}

// refusedWhole reports the riga 0 line of a manifest's receipt: [esito,
// codice, messaggio].
func (c *certEnv) refusedWhole(rel string) []string {
	c.t.Helper()
	return c.receipt(rel)["0"]
}

// TestUnsignedManifestIsRefusedOnDefaults: with the default configuration
// a manifest needs a valid signature by its prefettura's key
// (docs/rules.md#manifests): without the prefettura's key installed, every
// manifest is refused FIRMA_CHIAVE_ASSENTE; with it, an unsigned one
// FIRMA_MANCANTE and one signed by another key FIRMA_NON_VALIDA naming the
// prefettura's key; nothing of them applies, and the same content signed
// by the prefettura is then applied.
func TestUnsignedManifestIsRefusedOnDefaults(t *testing.T) {
	c := newCertEnv(t)
	c.orderedCards()
	if !c.env.Config.Cards.RequireSignature {
		t.Fatal("cards.require_signature is off in the default configuration")
	}
	body := manifestHeader + "058091;SC0000000001;" + cfASC + ";20/11/2026;" + cfASC + "\n"
	c.drop("prefetture/058/consegne/a-nokey.csv", body)
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	if g := c.refusedWhole("prefetture/058/consegne/esiti/a-nokey.csv.esito.csv"); len(g) < 3 || g[1] != "FIRMA_CHIAVE_ASSENTE" || !strings.Contains(g[2], "058.asc") {
		t.Errorf("unsigned manifest, no key of the prefettura: %q, want FIRMA_CHIAVE_ASSENTE naming 058.asc", g)
	}

	signer := c.prefetturaSigner("058")
	_, otherSec, err := pgp.Generate("Altra prefettura", "altra@anprsec.invalid")
	if err != nil {
		t.Fatal(err)
	}
	other, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(otherSec))
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := pgp.SignDetached([]byte(body), other[0])
	if err != nil {
		t.Fatal(err)
	}
	c.drop("prefetture/058/consegne/b-unsigned.csv", body)
	c.drop("prefetture/058/consegne/c-otherkey.csv", body)
	c.drop("prefetture/058/consegne/c-otherkey.csv.asc", string(otherSig))
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"b-unsigned.csv": {"FIRMA_MANCANTE", "manca la firma b-unsigned.csv.asc"},
		"c-otherkey.csv": {"FIRMA_NON_VALIDA", "non è quella della prefettura 058"},
	} {
		if g := c.refusedWhole("prefetture/058/consegne/esiti/" + name + ".esito.csv"); len(g) < 3 || g[1] != want[0] || !strings.Contains(g[2], want[1]) {
			t.Errorf("%s: %q, want %s saying %q", name, g, want[0], want[1])
		}
	}
	if s := c.cards()["SC0000000001"]; s.State != domain.CardProduzione {
		t.Fatalf("card SC0000000001 is %s after refused manifests, want %s", s.State, domain.CardProduzione)
	}

	sig, err := pgp.SignDetached([]byte(body), signer)
	if err != nil {
		t.Fatal(err)
	}
	c.drop("prefetture/058/consegne/d-signed.csv.asc", string(sig))
	c.drop("prefetture/058/consegne/d-signed.csv", body)
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	if g := c.receipt("prefetture/058/consegne/esiti/d-signed.csv.esito.csv")["2"]; len(g) < 2 || g[1] != "ATTIVA" {
		t.Errorf("the same content signed by the prefettura: %q, want OK ATTIVA", g)
	}
}

// TestTextModeSignatureIsRefused: a text-mode detached signature (type
// 0x01) by the prefettura's own key is refused FIRMA_TESTUALE, armored or
// binary, although it verifies, with the way to sign right; a binary
// (unarmored) signature of the exact bytes is accepted
// (docs/rules.md#manifests).
func TestTextModeSignatureIsRefused(t *testing.T) {
	c := newCertEnv(t)
	c.orderedCards()
	signer := c.prefetturaSigner("058")
	first := manifestHeader + "058091;SC0000000001;" + cfASC + ";20/11/2026;" + cfASC + "\n"
	second := manifestHeader + "058091;SC0000000002;" + cfALS + ";20/11/2026;" + cfASC + "\n"
	sign := func(data string, armored, text bool) string {
		var b bytes.Buffer
		var err error
		switch {
		case armored && text:
			err = openpgp.ArmoredDetachSignText(&b, signer, strings.NewReader(data), nil)
		case text:
			err = openpgp.DetachSignText(&b, signer, strings.NewReader(data), nil)
		default:
			err = openpgp.DetachSign(&b, signer, strings.NewReader(data), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	c.drop("prefetture/058/consegne/a-text-armored.csv", first)
	c.drop("prefetture/058/consegne/a-text-armored.csv.asc", sign(first, true, true))
	c.drop("prefetture/058/consegne/b-text-binary.csv", second)
	c.drop("prefetture/058/consegne/b-text-binary.csv.asc", sign(second, false, true))
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a-text-armored.csv", "b-text-binary.csv"} {
		g := c.refusedWhole("prefetture/058/consegne/esiti/" + name + ".esito.csv")
		if len(g) < 3 || g[1] != "FIRMA_TESTUALE" || !strings.Contains(g[2], "firma in modalità testo") || !strings.Contains(g[2], "gpg --detach-sign senza --textmode") {
			t.Errorf("%s: %q, want FIRMA_TESTUALE with the way to sign", name, g)
		}
	}
	cards := c.cards()
	if cards["SC0000000001"].State != domain.CardProduzione || cards["SC0000000002"].State != domain.CardProduzione {
		t.Fatalf("cards moved by text-mode signed manifests: %s %s", cards["SC0000000001"].State, cards["SC0000000002"].State)
	}

	c.drop("prefetture/058/consegne/c-binary.csv", second)
	c.drop("prefetture/058/consegne/c-binary.csv.asc", sign(second, false, false))
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	if g := c.receipt("prefetture/058/consegne/esiti/c-binary.csv.esito.csv")["2"]; len(g) < 2 || g[1] != "CONSEGNATA" {
		t.Errorf("unarmored binary signature: %q, want OK CONSEGNATA", g)
	}
}

// TestManifestDroppedAgainWithOtherLineEndsIsDuplicate: a manifest is
// identified by the SHA-256 of its content after decoding and normalising
// line ends (docs/rules.md#drops-and-receipts): the same signed manifest
// dropped again with CRLF line ends (its signature no longer matches), with
// a BOM, in UTF-16 or in Windows-1252 is DUPLICATO, not read again (which
// would answer GIA_CONSEGNATA row by row), and changes nothing.
func TestManifestDroppedAgainWithOtherLineEndsIsDuplicate(t *testing.T) {
	c := newCertEnv(t)
	c.orderedCards()
	body := "Codice ISTAT;Seriale;Codice Fiscale;Data consegna;Ritirata da;Note\n" +
		"058091;SC0000000002;" + cfALS + ";20/11/2026;" + cfASC + ";consegnata in città\n"
	c.dropSigned("prefetture/058/consegne/plichi.csv", body)
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	if g := c.receipt("prefetture/058/consegne/esiti/plichi.csv.esito.csv")["2"]; len(g) < 2 || g[1] != "CONSEGNATA" {
		t.Fatalf("first drop: %q, want OK CONSEGNATA", g)
	}
	sig, err := os.ReadFile(filepath.Join(c.root, "prefetture/058/consegne/elaborati/plichi.csv.asc"))
	if err != nil {
		t.Fatal(err)
	}
	crlf := strings.ReplaceAll(body, "\n", "\r\n")
	cp1252, err := charmap.Windows1252.NewEncoder().String(crlf)
	if err != nil {
		t.Fatal(err)
	}
	utf16, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(crlf)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]string{
		"crlf.csv":    crlf,
		"bom.csv":     "\ufeff" + crlf,
		"utf16.csv":   utf16,
		"cp1252.csv":  cp1252,
		"nofinal.csv": strings.TrimSuffix(body, "\n"),
	}
	for name, data := range variants {
		if data == body {
			t.Fatalf("%s: the same bytes as the first drop", name)
		}
		c.drop("prefetture/058/consegne/"+name, data)
		c.drop("prefetture/058/consegne/"+name+".asc", string(sig))
	}
	counts, err := c.run(consegneJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["duplicates"] != len(variants) || counts["rows_ok"]+counts["rows_refused"] != 0 {
		t.Errorf("counts %v, want %d duplicates and no row read", counts, len(variants))
	}
	for name := range variants {
		g := c.refusedWhole("prefetture/058/consegne/esiti/" + name + ".esito.csv")
		if len(g) < 3 || g[1] != "DUPLICATO" || !strings.Contains(g[2], "plichi.csv") {
			t.Errorf("%s: %q, want DUPLICATO naming plichi.csv", name, g)
		}
	}
	if s := c.cards()["SC0000000002"]; s.State != domain.CardConsegnata {
		t.Errorf("card SC0000000002 is %s, want %s", s.State, domain.CardConsegnata)
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "consegna.rifiutata" })
	if len(hist) != 0 {
		t.Errorf("rows of a duplicate read again: %d refusals in the history", len(hist))
	}
}

// gnupg runs gpg in a throw-away home (in /tmp: the agent's socket path is
// short) holding one signing key without passphrase, uid; the test is
// skipped when gpg is not installed.
func gnupg(t *testing.T, uid string) func(stdin []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	home, err := os.MkdirTemp("/tmp", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "gpg", append([]string{"--batch", "--no-tty", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.Bytes()
	}
	run(nil, "--quick-gen-key", uid, "ed25519", "sign", "never")
	return run
}

// TestManifestSignedWithGnuPG: the prefettura signs with GnuPG, its public
// key exported to keys.prefetture/058.asc: `gpg --detach-sign` (binary, as
// it writes by default) and `gpg --armor --detach-sign` are accepted;
// `gpg --textmode --detach-sign` is refused FIRMA_TESTUALE and nothing of
// that manifest applies (docs/rules.md#manifests).
func TestManifestSignedWithGnuPG(t *testing.T) {
	c := newCertEnv(t)
	c.orderedCards()
	uid := "Prefettura di Roma <prefettura.roma@interno.invalid>"
	gpg := gnupg(t, uid)
	dir := c.env.Config.Path(c.env.Config.Keys.Prefetture)
	os.MkdirAll(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, "058.asc"), gpg(nil, "--armor", "--export", uid), 0o644); err != nil {
		t.Fatal(err)
	}
	manifests := []struct {
		name, body string
		args       []string
		want       string // row 2, or riga 0 for a refusal
	}{
		{"a-binary.csv", manifestHeader + "058091;SC0000000001;" + cfASC + ";20/11/2026;" + cfASC + "\n", []string{"--detach-sign"}, "OK ATTIVA"},
		{"b-armored.csv", manifestHeader + "058091;SC0000000002;" + cfALS + ";20/11/2026;" + cfASC + "\r\n", []string{"--armor", "--detach-sign"}, "OK CONSEGNATA"},
		{"c-textmode.csv", manifestHeader + "058091;SC0000000003;" + cfALP + ";20/11/2026;" + cfASC + "\n", []string{"--textmode", "--detach-sign"}, "SCARTATO FIRMA_TESTUALE"},
	}
	for _, m := range manifests {
		sig := gpg([]byte(m.body), append([]string{"--local-user", uid, "--output", "-"}, m.args...)...)
		c.drop("prefetture/058/consegne/"+m.name+".asc", string(sig))
		c.drop("prefetture/058/consegne/"+m.name, m.body)
	}
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	for _, m := range manifests {
		got := c.receipt("prefetture/058/consegne/esiti/" + m.name + ".esito.csv")
		g := got["2"]
		if strings.HasPrefix(m.want, "SCARTATO") {
			g = got["0"]
		}
		if len(g) < 2 || g[0]+" "+g[1] != m.want {
			t.Errorf("%s (gpg %s): %q, want %s", m.name, strings.Join(m.args, " "), g, m.want)
		}
	}
	if s := c.cards()["SC0000000003"]; s.State != domain.CardProduzione {
		t.Errorf("card of the text-mode signed manifest: %s, want %s", s.State, domain.CardProduzione)
	}
}

// TestManifestSignedByAnOfficerWithCAdES: a prefettura officer listed in
// cards.prefettura_officers signs a manifest with `openssl cms -sign
// -cades` (enveloping .p7m) under trust.signature_ca: it is applied; the
// same signed by someone who is not an officer of that prefettura changes
// nothing; the officer's manifest signed again is DUPLICATO
// (docs/rules.md#manifests).
func TestManifestSignedByAnOfficerWithCAdES(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	c := newCertEnv(t)
	c.orderedCards()
	lab := t.TempDir()
	officer := "RSSMRA80A01H501U"
	other := cfOf("VRDGPP70A01H501")
	openssl(t, lab, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "qca.key", "-out", "qca.pem",
		"-subj", "/C=IT/O=Prova/CN=Firma qualificata di prova", "-days", "3650",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	os.WriteFile(filepath.Join(lab, "sig.ext"), []byte("keyUsage=critical,digitalSignature,nonRepudiation\nbasicConstraints=CA:FALSE\n"), 0o600)
	for name, cf := range map[string]string{"funzionario": officer, "estraneo": other} {
		openssl(t, lab, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name+".key", "-out", name+".csr",
			"-subj", "/C=IT/CN=PROVA/serialNumber=TINIT-"+cf)
		openssl(t, lab, "x509", "-req", "-in", name+".csr", "-CA", "qca.pem", "-CAkey", "qca.key", "-CAcreateserial",
			"-out", name+".pem", "-days", "365", "-extfile", "sig.ext")
	}
	c.env.Config.Trust.SignatureCA = filepath.Join(lab, "qca.pem")
	c.env.Config.Cards.PrefetturaOfficers = map[string][]string{"058": {officer}}
	manifest := manifestHeader + "058091;SC0000000001;" + cfASC + ";20/11/2026;" + cfASC + "\n"
	os.WriteFile(filepath.Join(lab, "m.csv"), []byte(manifest), 0o600)
	dir := filepath.Join(c.root, "prefetture", "058", "consegne")
	os.MkdirAll(dir, 0o755)
	sign := func(signer, out string) {
		openssl(t, lab, "cms", "-sign", "-cades", "-binary", "-nodetach", "-md", "sha256", "-in", "m.csv",
			"-signer", signer+".pem", "-inkey", signer+".key", "-outform", "DER", "-out", filepath.Join(dir, out))
	}
	sign("estraneo", "a-estraneo.csv.p7m")
	sign("funzionario", "b-funzionario.csv.p7m")
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	if got := c.receipt("prefetture/058/consegne/esiti/a-estraneo.csv.p7m.esito.csv"); len(got["0"]) < 2 || got["0"][1] != "FIRMATARIO_NON_AUTORIZZATO" {
		t.Errorf("manifest signed by a non-officer: %v", got)
	}
	if got := c.receipt("prefetture/058/consegne/esiti/b-funzionario.csv.p7m.esito.csv"); len(got["2"]) < 2 || got["2"][0] != "OK" {
		t.Errorf("manifest signed by the officer: %v", got)
	}
	// Signed again (a new envelope of the same document): the same manifest.
	sign("funzionario", "c-di-nuovo.csv.p7m")
	if _, err := c.run(consegneJob); err != nil {
		t.Fatal(err)
	}
	if got := c.receipt("prefetture/058/consegne/esiti/c-di-nuovo.csv.p7m.esito.csv"); len(got["0"]) < 2 || got["0"][1] != "DUPLICATO" {
		t.Errorf("the same manifest signed again: %v", got)
	}
}
