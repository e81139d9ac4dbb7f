package census_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/istat"
	"anprsec/secret"
	"anprsec/store"
)

type harness struct {
	t     *testing.T
	root  string // drop root
	st    *store.Store
	inbox *ingest.Inbox
	ing   *census.Ingester
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Key: bytes.Repeat([]byte{1}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root := filepath.Join(dir, "drop")
	d, err := drop.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, root: root, st: st,
		inbox: &ingest.Inbox{Drop: d, Store: st, Kind: "ingest-censimento", Dir: "censimento", Exts: []string{".xlsx"},
			MaxSize: 64 << 20, Settle: 0, SpoolDir: filepath.Join(dir, "spool")},
		ing: &census.Ingester{Store: st, Comuni: istat.Default(), ChunkRows: 4, MaxRows: 1000, CardPrefix: "SC"},
	}
}

// drop copies a file into censimento/ under name.
func (h *harness) drop(src, name string) {
	h.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		h.t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(h.root, "censimento"), 0o755)
	if err := os.WriteFile(filepath.Join(h.root, "censimento", name), data, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) run() ingest.Stats {
	h.t.Helper()
	st, err := h.inbox.Run(context.Background(), h.ing.Process)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// esito reads a receipt: key "sheet:row" -> [outcome, code, message].
func (h *harness) esito(name string) map[string][]string {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.root, "censimento", "esiti", name+".esito.csv"))
	if err != nil {
		h.t.Fatal(err)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil {
		h.t.Fatal(err)
	}
	if strings.Join(recs[0], ";") != "foglio;riga;esito;codice;messaggio" {
		h.t.Fatalf("receipt header = %q", recs[0])
	}
	out := map[string][]string{}
	for _, rec := range recs[1:] {
		out[rec[0]+":"+rec[1]] = rec[2:]
	}
	return out
}

// casi: the verdict expected for every row of testdata/casi.fods.
var casi = []struct {
	key, outcome, code, inMessage string
}{
	{"Utenti:2", "OK", "CREATA", "ASC"},                    // numeric ISTAT, date cell, lowercase CF with spaces
	{"Utenti:3", "OK", "CREATA", "ALS,OPERATORE"},          // omocodia, PEC in the PEC column, both environments
	{"Utenti:4", "OK", "CREATA", "ALP"},                    // lowercase SI and environment
	{"Utenti:5", "SCARTATO", "EMAIL_PEC", "legalmail.it"},  // PEC as personal e-mail
	{"Utenti:6", "SCARTATO", "CF", "controllo"},            // bad check letter
	{"Utenti:7", "SCARTATO", "CF_SESSO", "sesso M"},        // sex does not match the CF
	{"Utenti:8", "SCARTATO", "CF_NASCITA", "16/03/1990"},   // birth date does not match the CF
	{"Utenti:9", "SCARTATO", "PROFILO", "SUPERUSER"},       // unknown profile
	{"Utenti:10", "SCARTATO", "AMBIENTE", "TEST"},          // unknown environment
	{"Utenti:11", "SCARTATO", "SMART_CARD", "ALS"},         // ALS without a card
	{"Utenti:12", "SCARTATO", "CF_DUPLICATO", "riga 2"},    // same CF twice in one comune
	{"Utenti:13", "SCARTATO", "COMUNE_PROFILI", "ALP"},     // Milano has no ALP
	{"Utenti:14", "SCARTATO", "COMUNE_PROFILI", "ALP"},     // ... so every row of Milano goes
	{"Utenti:15", "SCARTATO", "ISTAT", "999999"},           // not a comune
	{"Utenti:16", "SCARTATO", "COMUNE", "Milano"},          // name does not match the code
	{"Utenti:17", "OK", "CREATA", "CONSULTAZIONE"},         // text date, refused rows above do not count as duplicates
	{"Postazioni:2", "OK", "AGGIORNATA", "058091-PC-0003"}, // 3 workstations and the server
	{"Postazioni:3", "SCARTATO", "COMUNE_NON_CENSITO", ""}, // Milano was refused
}

func checkCasi(t *testing.T, h *harness, name string) {
	t.Helper()
	got := h.esito(name)
	if len(got) != len(casi) {
		t.Errorf("receipt has %d lines, want %d: %v", len(got), len(casi), got)
	}
	for _, c := range casi {
		g, ok := got[c.key]
		if !ok {
			t.Errorf("%s: no receipt line", c.key)
			continue
		}
		if g[0] != c.outcome || g[1] != c.code || !strings.Contains(g[2], c.inMessage) {
			t.Errorf("%s = %q, want %s %s containing %q", c.key, g, c.outcome, c.code, c.inMessage)
		}
	}
}

func TestCasiLibreOffice(t *testing.T) {
	h := newHarness(t)
	h.drop("testdata/casi.xlsx", "casi.xlsx")
	st := h.run()
	if st.Files != 1 || st.RowsOK != 5 || st.RowsRefused != 13 {
		t.Errorf("stats = %+v, want 1 file, 5 rows OK, 13 refused", st)
	}
	checkCasi(t, h, "casi.xlsx")
	if _, err := os.Stat(filepath.Join(h.root, "censimento", "elaborati", "casi.xlsx")); err != nil {
		t.Errorf("file not moved to elaborati/: %v", err)
	}

	// The store holds what was accepted, and nothing of what was refused.
	h.st.View(func(tx *store.Tx) error {
		if n, _ := tx.Count("u/"); n != 4 {
			t.Errorf("utenze = %d, want 4", n)
		}
		if _, err := tx.Comune("015146"); err == nil {
			t.Error("Milano was created although all its rows were refused")
		}
		cards, _ := tx.CardsInState(domain.CardRichiesta)
		if len(cards) != 3 {
			t.Errorf("card requests = %v, want 3 (ASC, ALS, ALP)", cards)
		}
		ws, _ := tx.PostazioniInState(domain.CertRichiesta)
		if strings.Join(ws, ",") != "058091-CO-9999,058091-PC-0001,058091-PC-0002,058091-PC-0003" {
			t.Errorf("workstation requests = %v", ws)
		}
		p, err := tx.Person("RSSMRA68A01H501Y")
		if err != nil || p.BirthDate != "1968-01-01" || p.Card == "" {
			t.Errorf("person = %+v, %v", p, err)
		}
		return nil
	})
	if res, err := h.st.VerifyHistory(); err != nil || res.Entries == 0 {
		t.Errorf("history = %+v, %v", res, err)
	}

	// The same content again is not processed again.
	h.drop("testdata/casi.xlsx", "casi-bis.xlsx")
	st = h.run()
	if st.Duplicates != 1 {
		t.Errorf("second drop stats = %+v, want a duplicate", st)
	}
	dup := h.esito("casi-bis.xlsx")[":0"]
	if dup == nil || dup[1] != "DUPLICATO" {
		t.Errorf("duplicate receipt = %v", h.esito("casi-bis.xlsx"))
	}
	if _, err := os.Stat(filepath.Join(h.root, "censimento", "scartati", "casi-bis.xlsx")); err != nil {
		t.Errorf("duplicate not moved to scartati/: %v", err)
	}
}

// TestCasiFreshLibreOffice converts testdata/casi.fods with the LibreOffice
// installed here (CI installs it), so the fixture is not only the committed one.
func TestCasiFreshLibreOffice(t *testing.T) {
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		t.Skip("LibreOffice (soffice) not installed")
	}
	out := t.TempDir()
	cmd := exec.Command(soffice, "--headless", "-env:UserInstallation=file://"+out+"/profile", "--convert-to", "xlsx", "--outdir", out, "testdata/casi.fods")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, b)
	}
	h := newHarness(t)
	h.drop(filepath.Join(out, "casi.xlsx"), "fresh.xlsx")
	h.run()
	checkCasi(t, h, "fresh.xlsx")
}

// writeWorkbook writes a small census workbook with the given Utenti rows
// (without header) and Postazioni rows.
func writeWorkbook(t *testing.T, path string, users, ws [][]any) {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "Utenti")
	f.SetSheetRow("Utenti", "A1", &[]any{"Codice ISTAT", "Comune", "Codice Fiscale", "Cognome", "Nome", "Sesso",
		"Data di nascita", "Email", "PEC", "Profili", "Smart Card", "Ambiente"})
	for i, r := range users {
		f.SetSheetRow("Utenti", fmt.Sprintf("A%d", i+2), &r)
	}
	f.NewSheet("Postazioni")
	f.SetSheetRow("Postazioni", "A1", &[]any{"Codice ISTAT", "Numero postazioni", "Certificato server"})
	for i, r := range ws {
		f.SetSheetRow("Postazioni", fmt.Sprintf("A%d", i+2), &r)
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

func TestReingestUpdates(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	asc := []any{"058091", "Roma", "RSSMRA68A01H501Y", "Rossi", "Mario", "M", "01/01/1968", "mario@example.it", "", "ASC", "SI", "PRODUZIONE"}
	als := []any{"058091", "Roma", "VRDGPP80A01H501U", "Verdi", "Giuseppe", "M", "01/01/1980", "giuseppe@example.it", "", "ALS", "SI", "PRODUZIONE;PRE-SUBENTRO"}
	alp := []any{"058091", "Roma", "GLLSRA82E50H501I", "Galli", "Sara", "F", "10/05/1982", "sara@example.it", "", "ALP", "SI", "PRODUZIONE"}
	writeWorkbook(t, filepath.Join(dir, "1.xlsx"), [][]any{asc, als, alp}, [][]any{{"058091", 3, "NO"}})
	h.drop(filepath.Join(dir, "1.xlsx"), "1.xlsx")
	h.run()

	// Second census: the ALS changes e-mail and lists the environments the
	// other way round, the ALP also becomes OPERATORE, the ASC is unchanged;
	// fewer workstations are declared, and the server is asked.
	als2 := append([]any{}, als...)
	als2[7], als2[11] = "g.verdi@example.it", "PRE-SUBENTRO; PRODUZIONE"
	alp2 := append([]any{}, alp...)
	alp2[9] = "ALP,OPERATORE"
	writeWorkbook(t, filepath.Join(dir, "2.xlsx"), [][]any{asc, als2, alp2}, [][]any{{"058091", 2, "SI"}})
	h.drop(filepath.Join(dir, "2.xlsx"), "2.xlsx")
	h.run()
	got := h.esito("2.xlsx")
	for _, c := range []struct{ key, code, inMessage string }{
		{"Utenti:2", "INVARIATA", "nessuna modifica"},
		{"Utenti:3", "AGGIORNATA", "email giuseppe@example.it → g.verdi@example.it"},
		{"Utenti:4", "AGGIORNATA", "profili ALP → ALP,OPERATORE"},
		{"Postazioni:2", "AGGIORNATA", "dichiarate 2 postazioni, ne sono già registrate 3: nessuna rimossa"},
	} {
		g := got[c.key]
		if g == nil || g[0] != "OK" || g[1] != c.code || !strings.Contains(g[2], c.inMessage) {
			t.Errorf("%s = %q, want OK %s containing %q", c.key, g, c.code, c.inMessage)
		}
	}
	if strings.Contains(got["Utenti:3"][2], "ambiente") {
		t.Errorf("reordered environments reported as a change: %q", got["Utenti:3"][2])
	}
	h.st.View(func(tx *store.Tx) error {
		ws, _ := tx.PostazioniInState(domain.CertRichiesta)
		if len(ws) != 4 { // three workstations kept, plus the server
			t.Errorf("workstations = %v", ws)
		}
		cards, _ := tx.CardsInState(domain.CardRichiesta)
		if len(cards) != 3 {
			t.Errorf("cards = %v, want the 3 of the first census only", cards)
		}
		return nil
	})
}

// A later census naming a second ASC: the refusal says that one of the
// two is already in the store.
func TestSecondASCRefusalSaysOneIsAlreadyInTheStore(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	asc := []any{"058091", "Roma", "RSSMRA68A01H501Y", "Rossi", "Mario", "M", "01/01/1968", "mario@example.it", "", "ASC", "SI", "PRODUZIONE"}
	als := []any{"058091", "Roma", "VRDGPP80A01H501U", "Verdi", "Giuseppe", "M", "01/01/1980", "giuseppe@example.it", "", "ALS", "SI", "PRODUZIONE"}
	alp := []any{"058091", "Roma", "GLLSRA82E50H501I", "Galli", "Sara", "F", "10/05/1982", "sara@example.it", "", "ALP", "SI", "PRODUZIONE"}
	writeWorkbook(t, filepath.Join(dir, "1.xlsx"), [][]any{asc, als, alp}, nil)
	h.drop(filepath.Join(dir, "1.xlsx"), "1.xlsx")
	h.run()
	other := []any{"058091", "Roma", "MRTMRA83T56A269B", "Martini", "Maria", "F", "16/12/1983", "maria@example.it", "", "ASC", "SI", "PRODUZIONE"}
	writeWorkbook(t, filepath.Join(dir, "2.xlsx"), [][]any{other}, nil)
	h.drop(filepath.Join(dir, "2.xlsx"), "2.xlsx")
	h.run()
	g := h.esito("2.xlsx")["Utenti:2"]
	want := "2 utenti con profilo ASC (1 già in archivio da un censimento precedente, 1 in questo file), ne è ammesso uno solo"
	if g == nil || g[0] != "SCARTATO" || g[1] != "COMUNE_PROFILI" || !strings.Contains(g[2], want) {
		t.Errorf("Utenti:2 = %q, want SCARTATO COMUNE_PROFILI containing %q", g, want)
	}
}

func TestLongCellRefused(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	long := strings.Repeat("A", census.MaxCell+1)
	writeWorkbook(t, filepath.Join(dir, "l.xlsx"), [][]any{
		{"058091", "Roma", "RSSMRA68A01H501Y", long, "Mario", "M", "01/01/1968", "mario@example.it", "", "ASC", "SI", "PRODUZIONE"},
	}, nil)
	h.drop(filepath.Join(dir, "l.xlsx"), "l.xlsx")
	h.run()
	g := h.esito("l.xlsx")["Utenti:2"]
	if g == nil || g[1] != "VALORE_TROPPO_LUNGO" || !strings.Contains(g[2], `"Cognome" (D)`) {
		t.Errorf("receipt = %q", g)
	}
}

// TestRowBlankRightOfHeaderIsSkipped: a row whose only content is blank (a
// space) in a cell right of the header is a blank row: it is skipped, with
// no receipt line, like any other blank row (docs/rules.md#census).
func TestRowBlankRightOfHeaderIsSkipped(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	asc := []any{"058091", "Roma", "RSSMRA68A01H501Y", "Rossi", "Mario", "M", "01/01/1968", "mario@example.it", "", "ASC", "SI", "PRODUZIONE"}
	als := []any{"058091", "Roma", "VRDGPP80A01H501U", "Verdi", "Giuseppe", "M", "01/01/1980", "giuseppe@example.it", "", "ALS", "SI", "PRODUZIONE"}
	alp := []any{"058091", "Roma", "GLLSRA82E50H501I", "Galli", "Sara", "F", "10/05/1982", "sara@example.it", "", "ALP", "SI", "PRODUZIONE"}
	// Row 5: twelve empty cells, then a space in column N (right of the
	// twelve header columns), as a stray keystroke leaves it.
	stray := []any{"", "", "", "", "", "", "", "", "", "", "", "", "", " "}
	writeWorkbook(t, filepath.Join(dir, "s.xlsx"), [][]any{asc, als, alp, stray}, [][]any{{"058091", 1, "NO"}})
	h.drop(filepath.Join(dir, "s.xlsx"), "s.xlsx")
	h.run()
	got := h.esito("s.xlsx")
	if g, ok := got["Utenti:5"]; ok {
		t.Errorf("blank row 5 (a space in column N only) has a receipt line %q; want it skipped as blank", g)
	}
	for _, k := range []string{"Utenti:2", "Utenti:3", "Utenti:4"} {
		if g := got[k]; g == nil || g[0] != "OK" {
			t.Errorf("%s = %q, want OK", k, g)
		}
	}
}

// TestCFExceptionLetsARealCodePass: a real codice fiscale whose letters do
// not follow its holder's name, and whose birthplace code is not in the
// table, is refused until the back-office records an exception for it;
// then the row passes and its receipt says so (docs/rules.md#census).
func TestCFExceptionLetsARealCodePass(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	odd := "XYZWKJ70A01Z854" + string(codfisc.CheckLetter("XYZWKJ70A01Z854")) // letters of nobody's name, no state Z854
	rows := [][]any{
		{"058091", "Roma", "RSSMRA68A01H501Y", "Rossi", "Mario", "M", "01/01/1968", "mario@example.it", "", "ASC", "SI", "PRODUZIONE"},
		{"058091", "Roma", "VRDGPP80A01H501U", "Verdi", "Giuseppe", "M", "01/01/1980", "giuseppe@example.it", "", "ALS", "SI", "PRODUZIONE"},
		{"058091", "Roma", "GLLSRA82E50H501I", "Galli", "Sara", "F", "10/05/1982", "sara@example.it", "", "ALP", "SI", "PRODUZIONE"},
		{"058091", "Roma", odd, "Esposito", "Maria", "M", "01/01/1970", "maria@example.it", "", "OPERATORE", "NO", "PRODUZIONE"},
	}
	writeWorkbook(t, filepath.Join(dir, "1.xlsx"), rows, nil)
	h.drop(filepath.Join(dir, "1.xlsx"), "1.xlsx")
	h.run()
	if g := h.esito("1.xlsx")["Utenti:5"]; g == nil || g[0] != "SCARTATO" || g[1] != "CF_LUOGO" {
		t.Fatalf("without an exception: %q, want SCARTATO CF_LUOGO", g)
	}

	if err := h.st.Update(func(tx *store.Tx) error {
		return tx.PutCFException(&store.CFException{CF: odd, Motivo: "codice attribuito per errore, certificato dell'Agenzia n. 123", Created: tx.Now})
	}); err != nil {
		t.Fatal(err)
	}
	rows[3][7] = "maria.e@example.it" // another file: the same content would be a duplicate
	writeWorkbook(t, filepath.Join(dir, "2.xlsx"), rows, nil)
	h.drop(filepath.Join(dir, "2.xlsx"), "2.xlsx")
	h.run()
	g := h.esito("2.xlsx")["Utenti:5"]
	if g == nil || g[0] != "OK" || g[1] != "CREATA" || !strings.Contains(g[2], "ammesso per eccezione") || !strings.Contains(g[2], "Agenzia n. 123") {
		t.Errorf("with an exception: %q, want OK CREATA noting the exception", g)
	}
	if g := h.esito("2.xlsx")["Utenti:2"]; g == nil || strings.Contains(g[2], "eccezione") {
		t.Errorf("a row without exception mentions one: %q", g)
	}
}
