package ingest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/consegne"
	"anprsec/istat"
	"anprsec/secret"
	"anprsec/store"
)

// TestManifestCSVVariants: prefettura manifests in the CSV dialects a
// spreadsheet program writes, through the inbox and the manifest reader:
// none is refused whole, every data row gets its line at the row number
// where it starts in the file, judged on its parsed values (Roma is not
// censused here, so a well-read row is COMUNE_NON_CENSITO; a comune of
// another province FUORI_PROVINCIA; a short row CAMPO_MANCANTE; a row with
// a cell beyond the header CELLA_FUORI_INTESTAZIONE).
func TestManifestCSVVariants(t *testing.T) {
	const hdr = "Codice ISTAT;Seriale;Codice Fiscale;Data consegna;Ritirata da;Note"
	body := hdr + "\n" +
		"58091;SC1;RSSMRA68A01H501Y;14/03/2025;RSSMRA68A01H501Y;\"consegnata a mano\nin municipio\"\n" + // line 2 (two lines)
		"015146;SC2;MRTMRA83T56A269B;14/03/2025;RSSMRA68A01H501Y;Città\n" + // line 4
		"058091;SC3\n" + // line 5: ragged, short
		"058091;SC4;RSSMRA68A01H501Y;14/03/2025;RSSMRA68A01H501Y;nota;di troppo\n" // line 6: ragged, long
	want := map[string]string{"2": "COMUNE_NON_CENSITO", "4": "FUORI_PROVINCIA", "5": "CAMPO_MANCANTE", "6": "CELLA_FUORI_INTESTAZIONE"}
	latin1 := func(s string) []byte { return bytes.ReplaceAll([]byte(s), []byte("à"), []byte{0xe0}) }
	comma := strings.ReplaceAll(body, ";", ",")
	variants := map[string][]byte{
		"utf8-lf-semicolon.csv":   []byte(body),
		"utf8-bom-crlf.csv":       []byte("\ufeff" + strings.ReplaceAll(body, "\n", "\r\n")),
		"latin1-crlf.csv":         latin1(strings.ReplaceAll(body, "\n", "\r\n")),
		"utf8-comma.csv":          []byte(comma),
		"utf8-bom-comma-crlf.csv": []byte("\ufeff" + strings.ReplaceAll(comma, "\n", "\r\n")),
	}
	for name, data := range variants {
		t.Run(name, func(t *testing.T) {
			st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{4}, secret.KeySize)})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			root := t.TempDir()
			d, _ := drop.NewLocal(root)
			dir := filepath.Join(root, "prefetture", "058", "consegne")
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, name), data, 0o644)
			in := &ingest.Inbox{Drop: d, Store: st, Kind: "ingest-consegne", Dir: "prefetture/058/consegne", Exts: []string{".csv", ".xlsx"},
				MaxSize: 1 << 20, SpoolDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			g := &consegne.Ingester{Store: st, Comuni: istat.Default(), Drop: d, PPP: "058", MaxRows: 100}
			stats, err := in.Run(context.Background(), g.Process)
			if err != nil || stats.Accepted != 1 || stats.RowsRefused != 4 {
				t.Fatalf("stats %+v, %v", stats, err)
			}
			recs := (&env{t: t, dir: dir}).receipt(name)
			if len(recs) != len(want) {
				t.Errorf("receipt %q", recs)
			}
			for _, r := range recs {
				if want[r[1]] != r[3] {
					t.Errorf("riga %s: %q, want %s", r[1], r, want[r[1]])
				}
			}
		})
	}
}
