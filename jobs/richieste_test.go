package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/ingest"
	"anprsec/ingest/esito"
	"anprsec/ingest/richieste"
	"anprsec/ingest/table"
	"anprsec/lifecycle"
	"anprsec/store"
	"anprsec/trust/cades"
)

// The people of the authorization matrix. Comune A (Roma) has every
// profile with an active card, and operators whose card or utenza is not
// usable; comune B (Milano) has its own ALS and ALP.
const comA, comB = "058091", "015146"

// Valid codici fiscali (check letter computed) for the people of the
// matrix; their surnames and names, in matrixNames, give the first six
// letters.
var (
	opASC      = cfOf("SNDLDA00A01H501") // ASC of A
	opALS      = cfOf("SCRLDA00A01H501")
	opALP      = cfOf("PSTLDA00A01H501")
	opAPL      = cfOf("PLZLDA00A01H501")
	opOper     = cfOf("PRTLDA00A01H501") // OPERATORE, no card
	opALSCard  = cfOf("SCRBCC00A01H501") // ALS whose card is BLOCCATA
	opALSBlock = cfOf("SCRBLD00A01H501") // ALS whose utenza is BLOCCATA
	opALSOther = cfOf("SCRBCI00A01H501") // ALS of comune B
	opALPOther = cfOf("PSTBCI00A01H501") // ALP of comune B
	ascOther   = cfOf("SNDBCI00A01H501") // ASC of comune B
	tgtUser    = cfOf("BRSGUO00A01H501") // OPERATORE of A, ATTIVA
	tgtBlocked = cfOf("BRSBCC00A01H501") // OPERATORE of A, BLOCCATA
	tgtDeliv   = cfOf("BRSDLA00A01H501") // card CONSEGNATA DALLA PREFETTURA
	tgtActive  = cfOf("BRSTTL00A01H501") // card ATTIVA
	tgtCardBlk = cfOf("BRSSBN00A01H501") // card BLOCCATA
	tgtOther   = cfOf("BRSTLL00A01H501") // OPERATORE of B, card ATTIVA
	newCF      = "THDSDA95P08Z330H"      // a valid CF for INSERISCI_UTENTE (Thdsda Saida)
)

// matrixNames holds the surname and name of each person of the tests, by
// the first six letters of the codice fiscale they give.
var matrixNames = map[string][2]string{
	"SNDLDA": {"Sindaco", "Aldo"}, "SCRLDA": {"Sicurezza", "Aldo"}, "PSTLDA": {"Postazioni", "Aldo"},
	"PLZLDA": {"Polizia", "Aldo"}, "PRTLDA": {"Operatore", "Aldo"}, "SCRBCC": {"Sicurezza", "Bloccata"},
	"SCRBLD": {"Sicurezza", "Ubaldo"}, "SCRBCI": {"Sicurezza", "Bice"}, "PSTBCI": {"Postazioni", "Bice"},
	"SNDBCI": {"Sindaco", "Bice"}, "BRSGUO": {"Bersaglio", "Ugo"}, "BRSBCC": {"Bersaglio", "Bloccato"},
	"BRSDLA": {"Bersaglio", "Dalia"}, "BRSTTL": {"Bersaglio", "Attilio"}, "BRSSBN": {"Bersaglio", "Sabina"},
	"BRSTLL": {"Bersaglio", "Otello"},
	"NVUNVU": {"Nuovi", "Nuova"}, "PRFTTR": {"Prefetti", "Ettore"}, "SCDTTR": {"Scaduti", "Ettore"},
}

// namesOf returns the surname and name of a person of the tests.
func namesOf(t *testing.T, cf string) (surname, name string) {
	t.Helper()
	n, ok := matrixNames[cf[:6]]
	if !ok {
		t.Fatalf("no surname and name for %s in matrixNames", cf)
	}
	return n[0], n[1]
}

func cfOf(first15 string) string { return first15 + string(codfisc.CheckLetter(first15)) }

type person struct {
	cf, istat string
	profiles  []domain.Profile
	utenza    domain.UtenzaState
	card      domain.CardState // "" = none
}

var matrixPeople = []person{
	{opASC, comA, []domain.Profile{domain.ASC}, domain.UtenzaAttiva, domain.CardAttiva},
	{opALS, comA, []domain.Profile{domain.ALS}, domain.UtenzaAttiva, domain.CardAttiva},
	{opALP, comA, []domain.Profile{domain.ALP}, domain.UtenzaAttiva, domain.CardAttiva},
	{opAPL, comA, []domain.Profile{domain.APL}, domain.UtenzaAttiva, domain.CardAttiva},
	{opOper, comA, []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, ""},
	{opALSCard, comA, []domain.Profile{domain.ALS}, domain.UtenzaAttiva, domain.CardBloccata},
	{opALSBlock, comA, []domain.Profile{domain.ALS}, domain.UtenzaBloccata, domain.CardAttiva},
	{opALSOther, comB, []domain.Profile{domain.ALS}, domain.UtenzaAttiva, domain.CardAttiva},
	{opALPOther, comB, []domain.Profile{domain.ALP}, domain.UtenzaAttiva, domain.CardAttiva},
	{ascOther, comB, []domain.Profile{domain.ASC}, domain.UtenzaAttiva, domain.CardAttiva},
	{tgtUser, comA, []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, ""},
	{tgtBlocked, comA, []domain.Profile{domain.Operatore}, domain.UtenzaBloccata, ""},
	{tgtDeliv, comA, []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, domain.CardConsegnata},
	{tgtActive, comA, []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, domain.CardAttiva},
	{tgtCardBlk, comA, []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, domain.CardBloccata},
	{tgtOther, comB, []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, domain.CardAttiva},
}

// matrixStore writes the people, comuni and postazioni of the matrix.
func matrixStore(t *testing.T, c *certEnv, people []person) {
	t.Helper()
	n := 0
	err := c.env.Store.Update(func(tx *store.Tx) error {
		for _, istat := range []string{comA, comB} {
			info, _ := c.env.Comuni.Lookup(istat)
			if err := tx.PutComune(&domain.Comune{ISTAT: istat, Name: info.Name, Province: info.Province, NextPC: 2, Workstations: 2}); err != nil {
				return err
			}
			for i, st := range []domain.CertState{domain.CertAttivo, domain.CertBloccato} {
				code := domain.WorkstationCode(istat, i+1)
				if err := tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: istat, State: st, Serial: fmt.Sprintf("%X", i+100)}); err != nil {
					return err
				}
			}
		}
		for _, p := range people {
			surname, name := namesOf(t, p.cf)
			pe := &domain.Person{CF: p.cf, Surname: surname, Name: name}
			if p.card != "" {
				n++
				pe.Card = fmt.Sprintf("MX%010d", n) // not the sequence's SC serials
				sc := &domain.SmartCard{Serial: pe.Card, CF: p.cf, ISTAT: p.istat, State: p.card, SecondSealed: []byte("sealed")}
				if err := tx.InsertCard(sc); err != nil {
					return err
				}
			}
			if err := tx.PutPerson(pe); err != nil {
				return err
			}
			u := &domain.Utenza{ISTAT: p.istat, CF: p.cf, Email: strings.ToLower(p.cf[:6]) + "@example.it", Profiles: p.profiles,
				Environments: []domain.Environment{domain.Produzione}, NeedsCard: p.card != "", State: p.utenza}
			if err := tx.PutUtenza(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// matrixCampaign is the security notice campaign of the matrix tests.
const matrixCampaign = "AVV-20260115"

// matrixCampaignOf writes campaign matrixCampaign, open, with comuni
// notified (no mail queued).
func matrixCampaignOf(t *testing.T, c *certEnv, comuni ...string) {
	t.Helper()
	err := c.env.Store.Update(func(tx *store.Tx) error {
		camp := &store.Campaign{ID: matrixCampaign, State: store.CampaignOpen, Start: tx.Now, Deadline: tx.Now.AddDate(0, 0, 30),
			ReminderEvery: 7 * 24 * time.Hour, Comuni: comuni}
		if err := tx.PutCampaign(camp); err != nil {
			return err
		}
		for _, istat := range comuni {
			if err := tx.PutCampaignComune(&store.CampaignComune{Campaign: camp.ID, ISTAT: istat, Notified: tx.Now, LastSent: tx.Now, Recipients: 1}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var errRollback = errors.New("rollback")

// tryRow applies one request row of comune istat in a transaction that is
// then rolled back, and returns its esito line and the history actions it
// recorded.
func tryRow(t *testing.T, c *certEnv, istat string, cols []string, vals []string) (esito.Line, []string) {
	t.Helper()
	csv := strings.Join(cols, ";") + "\n" + strings.Join(vals, ";") + "\n"
	tab, err := table.Open("r.csv", []byte(csv), table.Options{Required: richieste.Required, Optional: richieste.Optional})
	if err != nil {
		t.Fatal(err)
	}
	p := &richieste.Processor{Store: c.env.Store, Comuni: c.env.Comuni, CardPrefix: c.env.Config.Cards.SerialPrefix,
		MaxRows: c.env.Config.Census.MaxRows, Loc: c.env.Loc, ISTAT: istat, BlockTenure: c.env.Config.Cards.BlockTenure}
	f := &ingest.File{Path: "comuni/" + istat + "/richieste/r.csv", Name: "r.csv"}
	var line esito.Line
	var actions []string
	err = c.env.Store.Update(func(tx *store.Tx) error {
		var err error
		if line, err = p.ApplyRow(tx, f, tab, tab.Rows[0]); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	_ = actions
	return line, actions
}

// opRow is a request row for an operation with a target that exists.
func opRow(op lifecycle.Op, operator, istat string) ([]string, []string) {
	cols := []string{richieste.ColOperazione, richieste.ColOperatore}
	vals := []string{string(op), operator}
	add := func(c, v string) { cols, vals = append(cols, c), append(vals, v) }
	pc := func(n int) string { return domain.WorkstationCode(istat, n) }
	target := func(own, other string) string {
		if istat == comA {
			return own
		}
		return other
	}
	switch op {
	case lifecycle.OpRegisterPostazione:
		add(richieste.ColEtichetta, "Anagrafe 3")
	case lifecycle.OpBlockPostazione, lifecycle.OpRevokePostazione:
		add(richieste.ColCodice, pc(1))
		add(richieste.ColMotivo, "prova")
	case lifecycle.OpUnblockPostazione:
		add(richieste.ColCodice, pc(2))
		add(richieste.ColMotivo, "prova")
	case lifecycle.OpRenewPostazione:
		add(richieste.ColCodice, pc(1))
		add(richieste.ColMotivo, "scadenza")
	case lifecycle.OpRegisterInstall:
		add(richieste.ColCodice, pc(1))
		add(richieste.ColHost, "PC-ANAGRAFE-01")
	case lifecycle.OpInsertUtente:
		for _, kv := range [][2]string{{richieste.ColCF, newCF}, {richieste.ColCognome, "Thadsda"}, {richieste.ColNome, "Sda"},
			{richieste.ColEmail, "sda@example.it"}, {richieste.ColProfili, "OPERATORE"}, {richieste.ColCard, "NO"}, {richieste.ColAmbiente, "PRODUZIONE"}} {
			add(kv[0], kv[1])
		}
	case lifecycle.OpModifyUtente:
		add(richieste.ColCF, target(tgtUser, tgtOther))
		add(richieste.ColEmail, "nuova@example.it")
	case lifecycle.OpBlockUtente, lifecycle.OpCancelUtente:
		add(richieste.ColCF, target(tgtUser, tgtOther))
	case lifecycle.OpUnblockUtente:
		add(richieste.ColCF, target(tgtBlocked, tgtOther))
	case lifecycle.OpRegisterCardDelivery:
		add(richieste.ColCF, target(tgtDeliv, tgtOther))
		add(richieste.ColSeriale, "")
	case lifecycle.OpNewCard, lifecycle.OpBlockCard:
		add(richieste.ColCF, target(tgtActive, tgtOther))
		add(richieste.ColMotivo, "prova")
	case lifecycle.OpUnblockCard:
		add(richieste.ColCF, target(tgtCardBlk, tgtOther))
		add(richieste.ColMotivo, "prova")
	case lifecycle.OpDownloadCertificates:
		add(richieste.ColCodice, pc(1))
	case lifecycle.OpConfirmCheck:
		add(richieste.ColCampagna, matrixCampaign)
	}
	return cols, vals
}

// TestRichiesteAuthorization: every operation × operator (profile, card,
// utenza, comune) in comune A's folder, and every operation aimed at a
// target of comune B from comune A's folder. Each row is OK or SCARTATO
// with its reason, never anything else.
func TestRichiesteAuthorization(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	matrixCampaignOf(t, c, comA)
	// REGISTRA_CONSEGNA_SC needs the serial of the delivered card.
	var delivSerial string
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(tgtDeliv)
		delivSerial = p.Card
		return nil
	})

	// SCARICA_CERTIFICATI needs a certificate to download (the bundle is
	// never built: every row is rolled back).
	c.env.Store.Update(func(tx *store.Tx) error {
		for _, istat := range []string{comA, comB} {
			p, _ := tx.Postazione(domain.WorkstationCode(istat, 1))
			p.P12Sealed = []byte("sealed")
			tx.PutPostazione(p)
		}
		return nil
	})

	workstation := map[lifecycle.Op]bool{lifecycle.OpRegisterPostazione: true, lifecycle.OpBlockPostazione: true, lifecycle.OpUnblockPostazione: true,
		lifecycle.OpRevokePostazione: true, lifecycle.OpDownloadCertificates: true,
		lifecycle.OpRenewPostazione: true, lifecycle.OpRegisterInstall: true}
	okCode := map[lifecycle.Op]string{
		lifecycle.OpRegisterPostazione: "REGISTRATA", lifecycle.OpBlockPostazione: "BLOCCATO", lifecycle.OpUnblockPostazione: "ATTIVO",
		lifecycle.OpRevokePostazione: "REVOCATA IN LAVORAZIONE", lifecycle.OpRenewPostazione: "RINNOVO_RICHIESTO",
		lifecycle.OpRegisterInstall: "INSTALLAZIONE_REGISTRATA", lifecycle.OpInsertUtente: "CREATA", lifecycle.OpModifyUtente: "AGGIORNATA",
		lifecycle.OpBlockUtente: "BLOCCATA", lifecycle.OpUnblockUtente: "ATTIVA", lifecycle.OpCancelUtente: "CANCELLATA",
		lifecycle.OpRegisterCardDelivery: "ATTIVA", lifecycle.OpNewCard: "RICHIESTA", lifecycle.OpBlockCard: "BLOCCATA", lifecycle.OpUnblockCard: "ATTIVA",
		lifecycle.OpDownloadCertificates: "IN_PUBBLICAZIONE", lifecycle.OpStatus: "IN_PUBBLICAZIONE",
		lifecycle.OpConfirmCheck: "VERIFICA_CONFERMATA",
	}
	type who struct {
		name, cf string
	}
	operators := []who{{"ASC", opASC}, {"ALS", opALS}, {"ALP", opALP}, {"APL", opAPL}, {"OPERATORE", opOper},
		{"ALS card blocked", opALSCard}, {"ALS utenza blocked", opALSBlock}, {"ALS of B", opALSOther}, {"unknown", cfOf("ZZZZZZ00A01H501")}, {"empty", ""}}
	cases := 0
	for _, rule := range lifecycle.Rules {
		for _, w := range operators {
			want := "NON_AUTORIZZATO"
			switch {
			case w.cf == "":
				want = "OPERATORE"
			case w.cf == opALSOther || w.cf == cfOf("ZZZZZZ00A01H501"):
				want = "OPERATORE_SCONOSCIUTO"
			case w.cf == opALSBlock:
				want = "OPERATORE_NON_ATTIVO"
			case w.cf == opALSCard:
				want = "OPERATORE_SMART_CARD_NON_ATTIVA"
			case w.cf == opOper:
				want = "OPERATORE_SENZA_SMART_CARD"
			case rule.Op == lifecycle.OpStatus && (w.cf == opALS || w.cf == opALP || w.cf == opASC):
				want = okCode[rule.Op] // STATO: each sees what his profile manages
			case rule.Op == lifecycle.OpStatus:
			case workstation[rule.Op] && w.cf == opALP, !workstation[rule.Op] && w.cf == opALS,
				rule.Op == lifecycle.OpConfirmCheck && w.cf == opASC: // the sindaco answers a notice too
				want = okCode[rule.Op]
			}
			cols, vals := opRow(rule.Op, w.cf, comA)
			if rule.Op == lifecycle.OpRegisterCardDelivery {
				vals[len(vals)-1] = delivSerial
			}
			t.Run(fmt.Sprintf("%s/%s", rule.Op, w.name), func(t *testing.T) {
				line, _ := tryRow(t, c, comA, cols, vals)
				if line.Code != want || (want == okCode[rule.Op]) != (line.Outcome == esito.OK) {
					t.Errorf("%s %s: %s %s %q, want %s", rule.Op, w.name, line.Outcome, line.Code, line.Message, want)
				}
			})
			cases++
		}
		// The target in comune B, asked from comune A's folder by the
		// operator who would be allowed.
		if rule.Op == lifecycle.OpRegisterPostazione || rule.Op == lifecycle.OpInsertUtente || rule.Op == lifecycle.OpStatus || rule.Op == lifecycle.OpConfirmCheck {
			continue // their target is the folder's comune by construction
		}
		allowed := opALS
		if workstation[rule.Op] {
			allowed = opALP
		}
		cols, vals := opRow(rule.Op, allowed, comB)
		if rule.Op == lifecycle.OpRegisterCardDelivery {
			c.env.Store.View(func(tx *store.Tx) error { p, _ := tx.Person(tgtOther); vals[len(vals)-1] = p.Card; return nil })
		}
		t.Run(fmt.Sprintf("%s/target in B", rule.Op), func(t *testing.T) {
			line, _ := tryRow(t, c, comA, cols, vals)
			if line.Outcome != esito.Scartato || (line.Code != "ALTRO_COMUNE" && line.Code != "UTENZA_SCONOSCIUTA") {
				t.Errorf("%s on a target of B: %s %s %q", rule.Op, line.Outcome, line.Code, line.Message)
			}
		})
		cases++
	}
	t.Logf("%d cases", cases)
}

// TestRichiesteFirstALS: while comune A has no ALS with an active card, the
// ASC and an APL may do the ALS's operations (the sindaco names the first
// ALS), not the ALP's; once an ALS has an active card they may not.
func TestRichiesteFirstALS(t *testing.T) {
	c := newCertEnv(t)
	var people []person
	for _, p := range matrixPeople {
		if p.cf == opALS {
			p.card = domain.CardConsegnata // the first ALS: card not active yet
		}
		people = append(people, p)
	}
	matrixStore(t, c, people)
	for _, tc := range []struct {
		op       lifecycle.Op
		operator string
		want     string
	}{
		{lifecycle.OpInsertUtente, opASC, "CREATA"},
		{lifecycle.OpInsertUtente, opAPL, "CREATA"},
		{lifecycle.OpBlockUtente, opASC, "BLOCCATA"},
		{lifecycle.OpNewCard, opAPL, "RICHIESTA"},
		{lifecycle.OpBlockPostazione, opASC, "NON_AUTORIZZATO"},
		{lifecycle.OpInsertUtente, opALP, "NON_AUTORIZZATO"},
		{lifecycle.OpInsertUtente, opALS, "OPERATORE_SMART_CARD_NON_ATTIVA"},
	} {
		cols, vals := opRow(tc.op, tc.operator, comA)
		if line, _ := tryRow(t, c, comA, cols, vals); line.Code != tc.want {
			t.Errorf("%s by %s: %s %s %q, want %s", tc.op, tc.operator, line.Outcome, line.Code, line.Message, tc.want)
		}
	}
	// The ASC registers the delivery of the first ALS's card: from now on
	// the ALS's operations are the ALS's.
	cols, vals := opRow(lifecycle.OpRegisterCardDelivery, opASC, comA)
	cols[2], vals[2] = richieste.ColCF, opALS
	var serial string
	c.env.Store.View(func(tx *store.Tx) error { p, _ := tx.Person(opALS); serial = p.Card; return nil })
	vals[3] = serial
	// Applied for real (no rollback) through a one-row file.
	line := applyRow(t, c, comA, cols, vals)
	if line.Outcome != esito.OK || line.Code != "ATTIVA" {
		t.Fatalf("first ALS card: %+v", line)
	}
	cols, vals = opRow(lifecycle.OpInsertUtente, opASC, comA)
	if line, _ := tryRow(t, c, comA, cols, vals); line.Code != "NON_AUTORIZZATO" || !strings.Contains(line.Message, "ha già un ALS") {
		t.Errorf("ASC after the first ALS: %+v", line)
	}
}

// applyRow applies one row for real and returns its esito line.
func applyRow(t *testing.T, c *certEnv, istat string, cols, vals []string) esito.Line {
	t.Helper()
	csv := strings.Join(cols, ";") + "\n" + strings.Join(vals, ";") + "\n"
	tab, err := table.Open("r.csv", []byte(csv), table.Options{Required: richieste.Required, Optional: richieste.Optional})
	if err != nil {
		t.Fatal(err)
	}
	p := &richieste.Processor{Store: c.env.Store, Comuni: c.env.Comuni, CardPrefix: c.env.Config.Cards.SerialPrefix,
		MaxRows: c.env.Config.Census.MaxRows, Loc: c.env.Loc, ISTAT: istat, BlockTenure: c.env.Config.Cards.BlockTenure}
	f := &ingest.File{Path: "comuni/" + istat + "/richieste/r.csv", Name: "r.csv"}
	var line esito.Line
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		var err error
		line, err = p.ApplyRow(tx, f, tab, tab.Rows[0])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return line
}

// TestRichiesteInvariants: no request leaves a comune without its ASC, an
// ALS or an ALP, or gives it a second ASC; refusals are in the history with
// the operator's CF.
func TestRichiesteInvariants(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	// Comune A's only ATTIVA ALP is opALP; its ALS are opALS and opALSCard
	// (opALSBlock is blocked); its ASC is opASC.
	for _, tc := range []struct {
		name string
		cols []string
		vals []string
		want string
	}{
		{"block the only ALP", []string{"Operazione", "Operatore", "Codice Fiscale"}, []string{"BLOCCA_UTENTE", opALS, opALP}, "COMUNE_SENZA_ALP"},
		{"delete the only ALP", []string{"Operazione", "Operatore", "Codice Fiscale"}, []string{"CANCELLA_UTENTE", opALS, opALP}, "COMUNE_SENZA_ALP"},
		{"the ASC loses ASC", []string{"Operazione", "Operatore", "Codice Fiscale", "Profili"}, []string{"MODIFICA_UTENTE", opALS, opASC, "OPERATORE"}, "COMUNE_SENZA_ASC"},
		{"a second ASC", []string{"Operazione", "Operatore", "Codice Fiscale", "Profili", "Smart Card"}, []string{"MODIFICA_UTENTE", opALS, tgtUser, "ASC", "SI"}, "ASC_DOPPIO"},
		{"block one of two ALS", []string{"Operazione", "Operatore", "Codice Fiscale"}, []string{"BLOCCA_UTENTE", opALS, opALSCard}, "BLOCCATA"},
		{"a label with special characters", []string{"Operazione", "Operatore", "Nome postazione"}, []string{"REGISTRA_POSTAZIONE", opALP, "Ufficio/1"}, "NOME_POSTAZIONE"},
		{"a PEC as personal e-mail", []string{"Operazione", "Operatore", "Codice Fiscale", "Email"}, []string{"MODIFICA_UTENTE", opALS, tgtUser, "mario@pec.comune.roma.it"}, "EMAIL_PEC"},
		{"unknown operation", []string{"Operazione", "Operatore"}, []string{"CANCELLA_TUTTO", opALS}, "OPERAZIONE"},
		{"missing motivo", []string{"Operazione", "Operatore", "Codice postazione"}, []string{"BLOCCA_POSTAZIONE", opALP, comA + "-PC-0001"}, "CAMPO_MANCANTE"},
		{"wrong state", []string{"Operazione", "Operatore", "Codice postazione", "Motivo"}, []string{"SBLOCCA_POSTAZIONE", opALP, comA + "-PC-0001", "x"}, "STATO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if line, _ := tryRow(t, c, comA, tc.cols, tc.vals); line.Code != tc.want {
				t.Errorf("%s %s %q, want %s", line.Outcome, line.Code, line.Message, tc.want)
			}
		})
	}
	// A refusal is recorded with the operator.
	line := applyRow(t, c, comA, []string{"Operazione", "Operatore", "Codice Fiscale"}, []string{"BLOCCA_UTENTE", opALP, tgtUser})
	if line.Code != "NON_AUTORIZZATO" {
		t.Fatalf("%+v", line)
	}
	hist, _ := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == richieste.RefusedAuthz })
	if len(hist) != 1 || hist[0].Actor != opALP || hist[0].File != "comuni/"+comA+"/richieste/r.csv" || !strings.Contains(hist[0].Detail, "NON_AUTORIZZATO") {
		t.Errorf("history: %+v", hist)
	}
}

// TestCancellaUtente: with utenze in other comuni only this comune's utenza
// goes and the card stays; with none, the card is disabled
// (docs/rules.md#utenza-lifecycle).
func TestCancellaUtente(t *testing.T) {
	c := newCertEnv(t)
	people := append([]person{}, matrixPeople...)
	people = append(people, person{tgtActive, comB, []domain.Profile{domain.Operatore}, domain.UtenzaAttiva, ""})
	matrixStore(t, c, people)
	// tgtActive also works in B (its card, made once, stays).
	c.env.Store.Update(func(tx *store.Tx) error {
		p, _ := tx.Person(tgtActive)
		if p.Card == "" {
			sc := &domain.SmartCard{Serial: "SC9999999999", CF: tgtActive, ISTAT: comA, State: domain.CardAttiva}
			tx.InsertCard(sc)
			p.Card = sc.Serial
			tx.PutPerson(p)
		}
		return nil
	})
	line := applyRow(t, c, comA, []string{"Operazione", "Operatore", "Codice Fiscale"}, []string{"CANCELLA_UTENTE", opALS, tgtActive})
	if line.Code != "CANCELLATA" || !strings.Contains(line.Message, "la smart card resta") {
		t.Errorf("with another comune: %+v", line)
	}
	line = applyRow(t, c, comA, []string{"Operazione", "Operatore", "Codice Fiscale"}, []string{"CANCELLA_UTENTE", opALS, tgtCardBlk})
	if line.Code != "CANCELLATA" || !strings.Contains(line.Message, "disabilitata definitivamente") {
		t.Errorf("last utenza: %+v", line)
	}
	c.env.Store.View(func(tx *store.Tx) error {
		for cf, want := range map[string]domain.CardState{tgtActive: domain.CardAttiva, tgtCardBlk: domain.CardRevocata} {
			p, _ := tx.Person(cf)
			sc, _ := tx.Card(p.Card)
			if sc.State != want {
				t.Errorf("%s: card %s, want %s", cf, sc.State, want)
			}
		}
		return nil
	})
	_ = time.Now
}

// TestRichiesteJobXLSX: a request workbook through the job: rows in file
// order, each with its receipt line (sheet and row of the workbook); the
// ISTAT code of the folder is the only comune touched.
func TestRichiesteJobXLSX(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "Richieste")
	rows := [][]any{
		{"Operazione", "Operatore", "Nome postazione", "Codice postazione", "Motivo", "Codice Fiscale"},
		{"REGISTRA_POSTAZIONE", opALP, "Sportello 1", "", "", ""},
		{"registra postazione", "", "Sportello 2", "", "", ""}, // spelled loosely; the operator is the signer
		{"BLOCCA_POSTAZIONE", opALP, "", comA + "-PC-0001", "guasto", ""},
		{"BLOCCA_UTENTE", opALP, "", "", "prova", tgtUser}, // the ALS's, not the ALP's
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		f.SetSheetRow("Richieste", cell, &r)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	c.dropSignedRequest(comA, "r.xlsx", buf.Bytes(), opALP)
	counts, err := c.run(richiesteJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["rows_ok"] != 3 || counts["rows_refused"] != 1 || counts["crl_number"] != 1 {
		t.Errorf("counts %v", counts)
	}
	got := c.receipt("comuni/" + comA + "/richieste/esiti/r.xlsx.p7m.esito.csv")
	for row, want := range map[string]string{"2": "REGISTRATA", "3": "REGISTRATA", "4": "BLOCCATO", "5": "NON_AUTORIZZATO"} {
		if g := got[row]; len(g) < 2 || g[1] != want {
			t.Errorf("row %s: %q, want %s", row, g, want)
		}
	}
	c.env.Store.View(func(tx *store.Tx) error {
		p, err := tx.Postazione(comA + "-PC-0003")
		if err != nil || p.Label != "Sportello 1" || p.State != domain.CertRichiesta {
			t.Errorf("PC-0003: %+v %v", p, err)
		}
		p, err = tx.Postazione(comA + "-PC-0001")
		if err != nil || p.State != domain.CertBloccato {
			t.Errorf("PC-0001: %+v %v", p, err)
		}
		return nil
	})
}

// TestRichiesteCRLDirty: a block committed by a run that died before the
// CRL (the mark is left in the store) is published by the next run, even
// with no request to read; the publication clears the mark.
func TestRichiesteCRLDirty(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	c.env.Store.Update(func(tx *store.Tx) error { return tx.SetMeta(lifecycle.CRLDirtyMeta, true) })
	counts, err := c.run(richiesteJob)
	if err != nil || counts["crl_number"] != 1 {
		t.Fatalf("counts %v, err %v", counts, err)
	}
	if crlDirty(c.env) {
		t.Error("the mark is still there after the CRL was published")
	}
	if counts, _ := c.run(richiesteJob); counts["crl_number"] != 0 {
		t.Errorf("a CRL signed again without a change: %v", counts)
	}
}

// TestScanRichiestePassesOverAFileNamedRichieste: a comune that puts a
// file named "richieste" (no extension) in its folder has no requests
// folder: the scan passes over it, and the run goes on without an error for
// every other comune. A listing that finds a non-folder means "no
// requests", not a failure of the job.
func TestScanRichiestePassesOverAFileNamedRichieste(t *testing.T) {
	c := newCertEnv(t)
	for _, p := range []string{"comuni/001001/richieste", "comuni/001002/richieste/r.csv"} {
		full := filepath.Join(c.root, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, _, errs := scanRichieste(context.Background(), c.env, false)
	if len(errs) > 0 {
		t.Errorf("scan errors %v: a file named richieste in comuni/001001/ fails the run", errs)
	}
	if want := []string{"001002"}; !slices.Equal(got, want) {
		t.Errorf("visited %v, want %v", got, want)
	}
}

// TestInserisciWithSpacedCFIsTheSamePerson: a codice fiscale written with a
// space (as spreadsheets and copy-paste often have it; also NBSP or a
// zero-width space) names the same person as without it, in a request's
// look-ups as in the census: INSERISCI_UTENTE with the spaced CF of an
// existing utenza is refused (UTENZA_ESISTENTE or COMUNE_SENZA_ALP), and
// the comune's only ALP keeps ALP: no operation leaves a comune without its
// ASC, an ALS or an ALP (docs/rules.md#comune-invariant).
func TestInserisciWithSpacedCFIsTheSamePerson(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	spaced := opALP[:6] + " " + opALP[6:] // same person, as typed in a spreadsheet
	cols := []string{richieste.ColOperazione, richieste.ColOperatore, richieste.ColCF, richieste.ColCognome, richieste.ColNome,
		richieste.ColEmail, richieste.ColProfili, richieste.ColCard, richieste.ColAmbiente}
	vals := []string{"INSERISCI_UTENTE", opALS, spaced, "Postazioni", "Aldo", "pstlda@example.it", "OPERATORE", "NO", "PRODUZIONE"}
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

// TestNuovaSCIsForTheRequestingComune: a new card asked for with NUOVA_SC
// is requested through the comune that asks for it, whose employee the
// holder is, and goes to that comune's prefettura for delivery
// (docs/rules.md#card-lifecycle): a holder who left the comune of his old
// card (utenza cancelled, card kept because he works in another comune)
// gets his new card for the comune where he works, not for the one he
// left, whose prefettura could not deliver it.
func TestNuovaSCIsForTheRequestingComune(t *testing.T) {
	c := newCertEnv(t)
	x := cfOf("NVUNVU00A01H501")
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

// TestInserisciDoesNotRenamePersonOfOtherComune: a file in one comune's
// folder never touches another comune (docs/rules.md#console-requests):
// INSERISCI_UTENTE in comune B for a person who already exists (here the
// sindaco of comune A) with another Cognome/Nome leaves the national person
// record as it is. Names are corrected by the census, as MODIFICA_UTENTE
// answers; a renamed ASC of A would go on card orders and on A's audit
// list.
func TestInserisciDoesNotRenamePersonOfOtherComune(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	cols := []string{richieste.ColOperazione, richieste.ColOperatore, richieste.ColCF, richieste.ColCognome, richieste.ColNome,
		richieste.ColEmail, richieste.ColProfili, richieste.ColCard, richieste.ColAmbiente}
	vals := []string{"INSERISCI_UTENTE", opALSOther, opASC, "Falso", "Nome", "x@example.it", "OPERATORE", "NO", "PRODUZIONE"}
	line := applyRow(t, c, comB, cols, vals)
	t.Logf("esito: %s %s %q", line.Outcome, line.Code, line.Message)
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(opASC)
		if p.Surname != "Sindaco" || p.Name != "Aldo" {
			t.Errorf("the sindaco of %s was renamed %s %s by a request of comune %s", comA, p.Surname, p.Name, comB)
		}
		return nil
	})
}

// TestCardTakeoverAcrossComuniFails: the ALS of comune A inserts the
// sindaco of comune B as an OPERATORE of A (a legitimate multi-comune
// insert), then tries to replace and to block his card: each step that
// would give A power over the card is refused with its reason, and the card
// stays ATTIVA with its home in B (docs/rules.md#card-lifecycle).
func TestCardTakeoverAcrossComuniFails(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	sindacoB := ascOther
	var serial string
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(sindacoB)
		serial = p.Card
		return nil
	})
	ins := applyRow(t, c, comA, []string{"Operazione", "Operatore", "Codice Fiscale", "Cognome", "Nome", "Email", "Profili", "Smart Card", "Ambiente"},
		[]string{"INSERISCI_UTENTE", opALS, sindacoB, "Sindaco", "Bice", "attaccante@example.it", "OPERATORE", "SI", "PRODUZIONE"})
	if ins.Outcome != esito.OK {
		t.Fatalf("the insert of a person registered elsewhere is legitimate: %+v", ins)
	}
	for _, step := range []struct{ op, want string }{
		{"NUOVA_SC", "SMART_CARD_ALTRO_COMUNE"},
		{"BLOCCA_SC", "SMART_CARD_UTENZA_RECENTE"},
		{"SBLOCCA_SC", "SMART_CARD_ALTRO_COMUNE"}, // the home is checked before the state
	} {
		line := applyRow(t, c, comA, []string{"Operazione", "Operatore", "Codice Fiscale", "Motivo"}, []string{step.op, opALS, sindacoB, "smarrimento"})
		if line.Outcome != esito.Scartato || line.Code != step.want {
			t.Errorf("%s of B's sindaco's card from A: %+v, want refused %s", step.op, line, step.want)
		}
	}
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(sindacoB)
		sc, err := tx.Card(serial)
		if err != nil || p.Card != serial || sc.State != domain.CardAttiva || sc.ISTAT != comB {
			t.Errorf("after the attempts: person card %s, card %+v (%v); want %s ATTIVA with home %s", p.Card, sc, err, serial, comB)
		}
		var refused int
		tx.EachHistory(0, func(e *store.Entry) (bool, error) {
			if e.Action == richieste.RefusedAuthz && e.Actor == opALS {
				refused++
			}
			return true, nil
		})
		if refused != 3 {
			t.Errorf("%d richiesta.rifiutata entries by %s, want 3", refused, opALS)
		}
		return nil
	})
}

// TestCardLostInASecondComuneIsBlockedThereAndReplacedThroughItsHome: a
// person working in B (home of his card) and, for a month, in A loses his
// card while in A: A blocks it, A may not replace it, B replaces it and the
// new card's home is B.
func TestCardLostInASecondComuneIsBlockedThereAndReplacedThroughItsHome(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		for i := 0; i < 50; i++ { // past matrixStore's serials
			if _, err := tx.Sequence("smartcard"); err != nil {
				return err
			}
		}
		return tx.PutUtenza(&domain.Utenza{ISTAT: comA, CF: tgtOther, Email: "altro@example.it", Profiles: []domain.Profile{domain.Operatore},
			Environments: []domain.Environment{domain.Produzione}, State: domain.UtenzaAttiva, Created: time.Now().AddDate(0, -1, 0)})
	}); err != nil {
		t.Fatal(err)
	}
	cols := []string{"Operazione", "Operatore", "Codice Fiscale", "Motivo"}
	if line := applyRow(t, c, comA, cols, []string{"BLOCCA_SC", opALS, tgtOther, "smarrita in ufficio"}); line.Outcome != esito.OK || line.Code != "BLOCCATA" {
		t.Fatalf("protective block from A: %+v", line)
	}
	// The home comune's ALS and the holder are told of the block.
	var told []string
	c.env.Store.View(func(tx *store.Tx) error {
		ids, _ := tx.MailsInState(store.MailQueued)
		for _, id := range ids {
			if m, err := tx.Mail(id); err == nil && m.Kind == store.MailAvviso && strings.HasPrefix(id, "avviso/blocco/") {
				told = append(told, m.CF)
			}
		}
		return nil
	})
	sort.Strings(told)
	if want := []string{opALSOther, tgtOther}; !slices.Equal(told, sortedCopy(want)) {
		t.Errorf("block notices to %v, want the home's ALS and the holder %v", told, want)
	}
	if line := applyRow(t, c, comA, cols, []string{"NUOVA_SC", opALS, tgtOther, "smarrimento"}); line.Code != "SMART_CARD_ALTRO_COMUNE" {
		t.Errorf("replace from A: %+v, want SMART_CARD_ALTRO_COMUNE", line)
	}
	if line := applyRow(t, c, comB, cols, []string{"NUOVA_SC", opALSOther, tgtOther, "smarrimento"}); line.Outcome != esito.OK {
		t.Fatalf("replace from the home B: %+v", line)
	}
	c.env.Store.View(func(tx *store.Tx) error {
		p, _ := tx.Person(tgtOther)
		sc, err := tx.Card(p.Card)
		if err != nil || sc.ISTAT != comB || sc.State != domain.CardRichiesta {
			t.Errorf("new card %+v (%v): want RICHIESTA with home %s", sc, err, comB)
		}
		return nil
	})
}

// dropSignedRequest writes data as comuni/<istat>/richieste/<name>.p7m,
// signed (CAdES, enveloping) with a development card certificate of cf
// issued by the env's card CA.
func (c *certEnv) dropSignedRequest(istat, name string, data []byte, cf string) {
	c.t.Helper()
	card := c.card(cf)
	env, err := cades.Sign(data, card.Cert, card.Key, false)
	if err != nil {
		c.t.Fatal(err)
	}
	dir := filepath.Join(c.root, "comuni", istat, "richieste")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".p7m"), env, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// card issues a development card certificate of cf under the env's card CA.
func (c *certEnv) card(cf string) *cades.Card {
	c.t.Helper()
	ca, err := cades.LoadDevCA(filepath.Dir(c.env.Config.Path(c.env.Config.Trust.CardCA)))
	if err != nil {
		c.t.Fatal(err)
	}
	card, err := cades.IssueCard(ca, cf, "Prova Persona", time.Now().AddDate(1, 0, 0))
	if err != nil {
		c.t.Fatal(err)
	}
	return card
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// TestAddressChangeOfACardOnItsWayIsToldToThePreviousAddress: the home
// comune changes the e-mail of a holder whose card is delivered but not
// active; the previous address gets a notice, the second halves will go to
// the new one.
func TestAddressChangeOfACardOnItsWayIsToldToThePreviousAddress(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	var old string
	c.env.Store.View(func(tx *store.Tx) error {
		u, _ := tx.Utenza(comA, tgtDeliv)
		old = u.Email
		return nil
	})
	line := applyRow(t, c, comA, []string{"Operazione", "Operatore", "Codice Fiscale", "Email"}, []string{"MODIFICA_UTENTE", opALS, tgtDeliv, "nuovo.indirizzo@example.it"})
	if line.Outcome != esito.OK {
		t.Fatalf("MODIFICA_UTENTE: %+v", line)
	}
	var to []string
	c.env.Store.View(func(tx *store.Tx) error {
		ids, _ := tx.MailsInState(store.MailQueued)
		for _, id := range ids {
			if m, err := tx.Mail(id); err == nil && strings.HasPrefix(id, "avviso/indirizzo/") {
				to = append(to, m.To)
				if !strings.Contains(m.Text, "nuovo.indirizzo@example.it") {
					t.Errorf("the notice does not name the new address: %s", m.Text)
				}
			}
		}
		return nil
	})
	if len(to) != 1 || to[0] != old {
		t.Errorf("address-change notices to %v, want the previous address %s", to, old)
	}
}

// TestInserisciOfACodeWithAnExceptionSaysSo: a console request inserting a
// person whose real codice fiscale breaks the rules (letters of another
// name, a birthplace code in no table) is refused until the back-office
// records an exception for that code; then it is applied and its receipt
// says the code was let through by the exception (docs/rules.md#census).
func TestInserisciOfACodeWithAnExceptionSaysSo(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	odd := cfOf("XYZWKJ70A01Z854")
	cols := []string{richieste.ColOperazione, richieste.ColOperatore, richieste.ColCF, richieste.ColCognome, richieste.ColNome,
		richieste.ColEmail, richieste.ColProfili, richieste.ColCard, richieste.ColAmbiente}
	vals := []string{"INSERISCI_UTENTE", opALS, odd, "Esposito", "Maria", "maria@example.it", "OPERATORE", "NO", "PRODUZIONE"}
	if line, _ := tryRow(t, c, comA, cols, vals); line.Outcome != esito.Scartato || line.Code != "CF_LUOGO" {
		t.Fatalf("without an exception: %s %s %q, want SCARTATO CF_LUOGO", line.Outcome, line.Code, line.Message)
	}
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		return tx.PutCFException(&store.CFException{CF: odd, Motivo: "codice attribuito per errore", Created: tx.Now})
	}); err != nil {
		t.Fatal(err)
	}
	line := applyRow(t, c, comA, cols, vals)
	if line.Outcome != esito.OK || !strings.Contains(line.Message, "ammesso per eccezione") || !strings.Contains(line.Message, "codice attribuito per errore") {
		t.Errorf("with an exception: %s %s %q, want OK noting the exception", line.Outcome, line.Code, line.Message)
	}
}
