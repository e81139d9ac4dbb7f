package census_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/domain"
	"anprsec/store"
)

// A Postazioni row may declare every code of a comune (9,998): more
// workstations than one transaction holds. They are all requested, the
// row's receipt line counts them all, and a later file declaring as many
// requests none again.
func TestPostazioniRowDeclaringEveryCodeIsCommitted(t *testing.T) {
	h := newHarness(t)
	h.ing.ChunkRows = 250
	wsHeader := []any{"Codice ISTAT", "Numero postazioni", "Certificato server"}
	users := append([][]any{header()}, romaRows...)
	ingestFile := func(name string, ws []any) []string {
		t.Helper()
		data := workbook(t, sheet{"Utenti", users}, sheet{"Postazioni", [][]any{wsHeader, ws}})
		if err := os.MkdirAll(filepath.Join(h.root, "censimento"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(h.root, "censimento", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		h.run()
		return h.esito(name)["Postazioni:2"]
	}
	count := func() (int, *domain.Comune) {
		var n int
		var c *domain.Comune
		if err := h.st.View(func(tx *store.Tx) (err error) {
			ws, err := tx.PostazioniInState(domain.CertRichiesta)
			n = len(ws)
			if err == nil {
				c, err = tx.Comune("058091")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n, c
	}

	line := ingestFile("tutte.xlsx", []any{58091, 9998, "SI"})
	if len(line) != 3 || line[0] != "OK" || line[1] != "AGGIORNATA" || !strings.Contains(line[2], "9998 postazioni richieste (058091-PC-0001 … 058091-PC-9998)") {
		t.Errorf("receipt line %q", line)
	}
	if n, c := count(); n != 9999 || c.NextPC != 9998 || c.Workstations != 9998 || !c.Server {
		t.Errorf("%d workstations requested (want 9,998 and the server), comune %+v", n, c)
	}
	if _, err := h.st.VerifyHistory(); err != nil {
		t.Errorf("history: %v", err)
	}

	line = ingestFile("ancora.xlsx", []any{58091, 9998, "NO"})
	if len(line) != 3 || line[0] != "OK" || line[1] != "INVARIATA" || !strings.Contains(line[2], "9998 postazioni già registrate") {
		t.Errorf("second file's receipt line %q", line)
	}
	if n, _ := count(); n != 9999 {
		t.Errorf("%d workstations after the second file, want 9,999", n)
	}
}
