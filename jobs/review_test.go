package jobs

// Review tests (issue 4/5 review): each demonstrates one defect and fails
// until it is fixed.

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/ingest/esito"
	"anprsec/ingest/richieste"
	"anprsec/lifecycle"
	"anprsec/store"
)

// TestReviewInserisciSpacedCFBypassesInvariant: a CF written with a space
// (as spreadsheets and copy-paste often do; also NBSP or a zero-width space)
// is looked up raw by jobs/richieste.go (utente: tx.Utenza(p.istat, cf) and
// lifecycle.ChangeBreach(tx, istat, cf, ...)) but normalized by the census
// validator (codfisc.Normalize) before ApplyUser. So INSERISCI_UTENTE on an
// EXISTING utenza is not refused UTENZA_ESISTENTE, the Invariant counts the
// target among "the others", and ApplyUser overwrites the profiles: the
// comune's only ALP loses ALP (issue 5: "no operation may leave a comune
// without its ASC, an ALS or an ALP").
func TestReviewInserisciSpacedCFBypassesInvariant(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	spaced := opALP[:6] + " " + opALP[6:] // same person, as typed in a spreadsheet
	cols := []string{richieste.ColOperazione, richieste.ColOperatore, richieste.ColCF, richieste.ColCognome, richieste.ColNome,
		richieste.ColEmail, richieste.ColProfili, richieste.ColCard, richieste.ColAmbiente}
	vals := []string{"INSERISCI_UTENTE", opALS, spaced, "Prova", "Persona", "alpaaa@example.it", "OPERATORE", "NO", "PRODUZIONE"}
	line := applyRow(t, c, comA, cols, vals)
	if line.Outcome != esito.Scartato {
		t.Errorf("INSERISCI_UTENTE of the existing only ALP (CF with a space) was applied: %s %s %q; want SCARTATO (UTENZA_ESISTENTE or COMUNE_SENZA_ALP)",
			line.Outcome, line.Code, line.Message)
	}
	c.env.Store.View(func(tx *store.Tx) error {
		u, err := tx.Utenza(comA, opALP)
		if err != nil {
			t.Fatal(err)
		}
		if !u.Has(domain.ALP) {
			t.Errorf("comune %s has no ALP left: %s now has %v", comA, opALP, u.Profiles)
		}
		return nil
	})
}

// TestReviewNuovaSCGoesToTheRequestingComune: seed 000 "Nuova Smart Card":
// the new cards "sono recapitate alla prefettura competente per la consegna
// all'ente" and the subjects "devono essere relativi come dipendenti
// dell'ente". lifecycle.ReplaceCard (smartcard/smartcard.go:238-263) requests the
// new card through the comune of the OLD card, even when the holder no
// longer has an utenza there and the request comes from another comune: the
// order names the wrong prefettura, and that prefettura cannot deliver it
// (consegne: TITOLARE_NON_DEL_COMUNE).
func TestReviewNuovaSCGoesToTheRequestingComune(t *testing.T) {
	c := newCertEnv(t)
	x := cfOf("XNUOVA00A01H501")
	people := append(append([]person{}, matrixPeople...), person{x, comA, []domain.Profile{domain.Operatore}, domain.UtenzaCancellata, domain.CardAttiva})
	matrixStore(t, c, people)
	// x left Roma (utenza deleted; card kept because he works in Milano).
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		// matrixStore writes serials SC0000000001.. without the sequence:
		// move the sequence past them (InsertCard would overwrite).
		for i := 0; i < 50; i++ {
			if _, err := tx.Sequence("smartcard"); err != nil {
				return err
			}
		}
		return tx.PutUtenza(&domain.Utenza{ISTAT: comB, CF: x, Email: "xnuova@example.it", Profiles: []domain.Profile{domain.Operatore},
			Environments: []domain.Environment{domain.Produzione}, NeedsCard: true, State: domain.UtenzaAttiva})
	}); err != nil {
		t.Fatal(err)
	}
	line := applyRow(t, c, comB, []string{"Operazione", "Operatore", "Codice Fiscale", "Motivo"}, []string{"NUOVA_SC", opALSOther, x, "smarrimento"})
	if line.Outcome != esito.OK {
		t.Fatalf("NUOVA_SC: %+v", line)
	}
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(x)
		sc, err := tx.Card(p.Card)
		if err != nil {
			t.Fatal(err)
		}
		ppp, _ := c.env.Comuni.Prefettura(sc.ISTAT)
		if sc.ISTAT != comB {
			t.Errorf("new card %s requested by the ALS of %s is for comune %s (prefettura %s), where %s has no utenza", sc.Serial, comB, sc.ISTAT, ppp, x)
		}
		return nil
	})
}

// TestReviewConsegneOtherProvinceCard: a card ordered for comune 058091
// (the order to the producer names prefettura 058, jobs/ordini.go:207) is
// "delivered" by prefettura 015 because its holder also has an utenza in a
// comune of province 015: ingest/consegne/consegne.go checks the manifest's
// Codice ISTAT against the folder but never the card's own comune. SPEC: a
// prefettura "hands the smart-card parcel to each comune of its province,
// and only of its province"; it cannot hold a parcel sent to another one.
func TestReviewConsegneOtherProvinceCard(t *testing.T) {
	c := newCertEnv(t)
	x := cfOf("XPREFE00A01H501")
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
	c.drop("prefetture/015/consegne/m.csv", manifestHeader+comB+";"+serial+";"+x+";"+today+";"+cfOf("ASCBBB00A01H501")+"\n")
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

// TestReviewScadenzeSecondRunSameDay: the ID of an expiry notice is
// avviso/<ISTAT>/<what>/<day>-<min threshold>/<CF> (jobs/scadenze.go:383),
// so a second run on the same day (jobs run scadenze, a restart, a
// certificate that crosses its threshold a few hours later) builds the same
// ID for a DIFFERENT notice: QueueMail refuses it (queued=false), the
// certificate is nevertheless marked Warned, and the history says no ALP
// could be written to. The warning about the second certificate is lost.
func TestReviewScadenzeSecondRunSameDay(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	setNotAfter := func(code string, d time.Duration) {
		if err := c.env.Store.Update(func(tx *store.Tx) error {
			p, err := tx.Postazione(code)
			if err != nil {
				return err
			}
			p.State, p.NotAfter = domain.CertAttivo, now.Add(d)
			return tx.PutPostazione(p)
		}); err != nil {
			t.Fatal(err)
		}
	}
	setNotAfter("058091-PC-0003", 10*24*time.Hour)
	if counts, err := c.run(scadenzeJob); err != nil || counts["avvisi_certificati"] == 0 {
		t.Fatalf("first run: %v %v", counts, err)
	}
	// Later the same day another certificate is within 30 days.
	setNotAfter("058091-PC-0001", 20*24*time.Hour)
	counts, err := c.run(scadenzeJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["avvisi_certificati"] == 0 {
		t.Errorf("second run the same day: no notice queued for 058091-PC-0001 (counts %v)", counts)
	}
	found := false
	c.env.Store.View(func(tx *store.Tx) error {
		for _, st := range []store.MailState{store.MailQueued, store.MailSent} {
			ids, _ := tx.MailsInState(st)
			for _, id := range ids {
				if m, err := tx.Mail(id); err == nil && m.Kind == store.MailAvviso && strings.Contains(m.Text, "058091-PC-0001") {
					found = true
				}
			}
		}
		return nil
	})
	if !found {
		t.Errorf("no notice in the outbox mentions 058091-PC-0001, yet it is marked warned: %d", c.postazioni()["058091-PC-0001"].Warned)
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "avviso.senza-destinatario" })
	if len(hist) > 0 {
		t.Errorf("history says nobody could be warned, but the comune has an ALP with e-mail: %s", hist[0].Detail)
	}
}

// TestReviewInserisciRenamesPersonOfOtherComune: MODIFICA_UTENTE refuses
// Cognome/Nome ("si corregge con il censimento"), but INSERISCI_UTENTE in
// comune B for a person who already exists (here: the sindaco of comune A)
// rewrites the national person record through census.ApplyUser (the
// validator checks only sex and birth date against the CF, not the name):
// comune A's ASC is renamed by a file in comune B's folder (issue 5: "A file
// in one comune's folder never touches another comune"); the new name then
// goes on card orders and on A's audit list.
func TestReviewInserisciRenamesPersonOfOtherComune(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	cols := []string{richieste.ColOperazione, richieste.ColOperatore, richieste.ColCF, richieste.ColCognome, richieste.ColNome,
		richieste.ColEmail, richieste.ColProfili, richieste.ColCard, richieste.ColAmbiente}
	vals := []string{"INSERISCI_UTENTE", opALSOther, opASC, "Falso", "Nome", "x@example.it", "OPERATORE", "NO", "PRODUZIONE"}
	line := applyRow(t, c, comB, cols, vals)
	t.Logf("esito: %s %s %q", line.Outcome, line.Code, line.Message)
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(opASC)
		if p.Surname != "Prova" || p.Name != "Persona" {
			t.Errorf("the sindaco of %s was renamed %s %s by a request of comune %s", comA, p.Surname, p.Name, comB)
		}
		return nil
	})
}

// TestReviewScadenzeCardWarnsComuneOfRequest: the card warnings go to the
// ALS of the comune the card was requested through (c.ISTAT,
// jobs/scadenze.go:288), even when the holder's utenza there is deleted
// and he works in another comune (seed 000: CANCELLA with utenze elsewhere
// keeps the card). The ALS of a comune the person left receives his name,
// CF and serial; the ALS who could act (NUOVA_SC is ALTRO_COMUNE in the old
// comune) is never warned.
func TestReviewScadenzeCardWarnsComuneOfRequest(t *testing.T) {
	c := newCertEnv(t)
	x := cfOf("XSCADE00A01H501")
	people := append(append([]person{}, matrixPeople...), person{x, comA, []domain.Profile{domain.Operatore}, domain.UtenzaCancellata, domain.CardAttiva})
	matrixStore(t, c, people)
	var serial string
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		p, _ := tx.Person(x)
		serial = p.Card
		sc, err := tx.Card(serial)
		if err != nil {
			return err
		}
		sc.Expires = time.Now().Add(5 * 24 * time.Hour)
		if err := tx.PutCard(sc); err != nil {
			return err
		}
		return tx.PutUtenza(&domain.Utenza{ISTAT: comB, CF: x, Email: "xscade@example.it", Profiles: []domain.Profile{domain.Operatore},
			Environments: []domain.Environment{domain.Produzione}, NeedsCard: true, State: domain.UtenzaAttiva})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(scadenzeJob); err != nil {
		t.Fatal(err)
	}
	var to []string
	c.env.Store.View(func(tx *store.Tx) error {
		ids, _ := tx.MailsInState(store.MailQueued)
		for _, id := range ids {
			if m, err := tx.Mail(id); err == nil && m.Kind == store.MailAvviso && strings.Contains(m.Text, serial) {
				to = append(to, m.ISTAT+":"+m.CF)
			}
		}
		return nil
	})
	if len(to) == 0 || strings.Contains(strings.Join(to, ","), comA+":") || !strings.Contains(strings.Join(to, ","), comB+":"+opALSOther) {
		t.Errorf("warning about card %s of %s (works only in %s) sent to %v; want the ALS of %s", serial, x, comB, to, comB)
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

// TestReviewOrderRepublishedWithDifferentContent: issue 4, crash: "no order
// published twice with different contents". publishOrder
// (jobs/ordini.go:166-234) rebuilds a pending order from the store each
// time; when the file was already published (crash or lost reply after
// Drop.Write) and a card of it is replaced in between (NUOVA_SC), the same
// ordine-<stamp>.csv.pgp is written again with a different set of cards.
func TestReviewOrderRepublishedWithDifferentContent(t *testing.T) {
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
