package census_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/istat"
	"anprsec/secret"
	"anprsec/store"
)

// A Postazioni row may declare every code of a comune (9,998): more
// workstations than one transaction holds. They are all requested, the
// row's receipt line counts them all, and a later file declaring as many
// requests none again.
func TestPostazioniRowDeclaringEveryCodeIsCommitted(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), Key: bytes.Repeat([]byte{6}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root := filepath.Join(dir, "drop")
	d, err := drop.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(root, "censimento")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	inbox := &ingest.Inbox{Drop: d, Store: st, Kind: "ingest-censimento", Dir: "censimento", Exts: []string{".xlsx"},
		MaxSize: 4 << 20, SpoolDir: filepath.Join(dir, "spool"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	g := &census.Ingester{Store: st, Comuni: istat.Default(), ChunkRows: 250, MaxRows: 300, CardPrefix: "SC"}
	wsHeader := []any{"Codice ISTAT", "Numero postazioni", "Certificato server"}
	users := append([][]any{header()}, romaRows...)

	ingestFile := func(name string, ws ...[]any) []string {
		t.Helper()
		data := workbook(t, sheet{"Utenti", users}, sheet{"Postazioni", append([][]any{wsHeader}, ws...)})
		if err := os.WriteFile(filepath.Join(in, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := inbox.Run(ctx, g.Process); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		raw, err := os.ReadFile(filepath.Join(in, "esiti", name+".esito.csv"))
		if err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(bytes.NewReader(raw))
		r.Comma = ';'
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec[0] == "Postazioni" {
				return rec
			}
		}
		t.Fatalf("%s: no Postazioni line in the receipt:\n%s", name, raw)
		return nil
	}

	line := ingestFile("tutte.xlsx", []any{58091, 9998, "SI"})
	if line[2] != "OK" || line[3] != "AGGIORNATA" || !strings.Contains(line[4], "9998 postazioni richieste (058091-PC-0001 … 058091-PC-9998)") {
		t.Errorf("receipt line %q", line)
	}
	count := func() (int, *domain.Comune) {
		var n int
		var c *domain.Comune
		if err := st.View(func(tx *store.Tx) (err error) {
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
	if n, c := count(); n != 9999 || c.NextPC != 9998 || c.Workstations != 9998 || !c.Server {
		t.Errorf("%d workstations requested (want 9,998 and the server), comune %+v", n, c)
	}
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("history: %v", err)
	}

	line = ingestFile("ancora.xlsx", []any{58091, 9998, "NO"})
	if line[2] != "OK" || line[3] != "INVARIATA" || !strings.Contains(line[4], "9998 postazioni già registrate") {
		t.Errorf("second file's receipt line %q", line)
	}
	if n, _ := count(); n != 9999 {
		t.Errorf("%d workstations after the second file, want 9,999", n)
	}
}
