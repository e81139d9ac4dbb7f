package census_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/config"
	"anprsec/store"
)

// The hostile-input campaign for census workbooks: each file is dropped
// with a good workbook after it, in the same folder and run; the hostile
// one is refused whole with a code and a reason (or its rows are judged
// one by one), the good one is processed as if nothing happened.

// goodBook is a valid census workbook: Roma's ASC, ALS and ALP.
func goodBook(t testing.TB) []byte {
	return workbook(t, sheet{"Utenti", append([][]any{header()}, romaRows...)})
}

// put writes data as censimento/name.
func (h *harness) put(name string, data []byte) {
	h.t.Helper()
	os.MkdirAll(filepath.Join(h.root, "censimento"), 0o755)
	if err := os.WriteFile(filepath.Join(h.root, "censimento", name), data, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// goodAfter checks the good workbook dropped as zz-buono.xlsx: processed,
// its three rows accepted.
func (h *harness) goodAfter() {
	h.t.Helper()
	got := h.esito("zz-buono.xlsx")
	for _, k := range []string{"Utenti:2", "Utenti:3", "Utenti:4"} {
		if g := got[k]; g == nil || g[0] != "OK" {
			h.t.Errorf("good workbook after the hostile ones: %s = %q", k, g)
		}
	}
	if _, err := os.Stat(filepath.Join(h.root, "censimento", "elaborati", "zz-buono.xlsx")); err != nil {
		h.t.Errorf("good workbook not in elaborati/: %v", err)
	}
	if _, err := h.st.VerifyHistory(); err != nil {
		h.t.Error(err)
	}
}

// zipBomb is a zip whose parts, all real deflate streams of zeros (64 MiB
// each, about 64 kB compressed), expand to more than 1 GiB.
func zipBomb(t testing.TB, parts int) []byte {
	t.Helper()
	const partSize = 64 << 20
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	crc := crc32.NewIEEE()
	for i := 0; i < partSize/len(zeros); i++ {
		fw.Write(zeros)
		crc.Write(zeros)
	}
	fw.Close()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	base := workbook(t, sheet{"Utenti", [][]any{header()}})
	zr, _ := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	for _, f := range zr.File { // a real workbook around the bomb
		w, _ := zw.Create(f.Name)
		rc, _ := f.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	for i := 0; i < parts; i++ {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("xl/media/image%d.png", i+1), Method: zip.Deflate,
			CRC32: crc.Sum32(), CompressedSize64: uint64(comp.Len()), UncompressedSize64: partSize})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	zw.Close()
	return out.Bytes()
}

// inlineSheet writes a worksheet of inline-string cells; a cell that
// starts with "<c" is written as is (raw cell XML, e.g. a formula).
func inlineSheet(w io.Writer, rows [][]string, extra string) {
	fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
	for i, row := range rows {
		fmt.Fprintf(w, `<row r="%d">`, i+1)
		for j, v := range row {
			ref, _ := excelize.CoordinatesToCellName(j+1, i+1)
			if strings.HasPrefix(v, "<c") {
				fmt.Fprintf(w, v, ref)
				continue
			}
			var b bytes.Buffer
			xmlEscape(&b, v)
			fmt.Fprintf(w, `<c r="%s" t="inlineStr"><is><t>%s</t></is></c>`, ref, b.String())
		}
		fmt.Fprint(w, `</row>`)
	}
	fmt.Fprint(w, `</sheetData>`+extra+`</worksheet>`)
}

func xmlEscape(b *bytes.Buffer, s string) {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	b.WriteString(r.Replace(s))
}

// withSheetXML is a workbook with one sheet, Utenti, whose XML is written by fn.
func withSheetXML(t testing.TB, fn func(w io.Writer)) []byte {
	t.Helper()
	base := workbook(t, sheet{"Utenti", [][]any{header()}})
	zr, err := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	for _, zf := range zr.File {
		w, err := zw.Create(zf.Name)
		if err != nil {
			t.Fatal(err)
		}
		if zf.Name == "xl/worksheets/sheet1.xml" {
			bw := bufio.NewWriterSize(w, 1<<20)
			fn(bw)
			bw.Flush()
			continue
		}
		rc, _ := zf.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

var headerStrings = func() []string {
	h := header()
	s := make([]string, len(h))
	for i, c := range h {
		s[i] = c.(string)
	}
	return s
}()

// romaStrings: Roma's ASC, ALS and ALP as text cells.
var romaStrings = [][]string{
	{"058091", "Roma", "RSSMRA68A01H501Y", "Rossi", "Mario", "M", "01/01/1968", "mario.rossi@example.it", "", "ASC", "SI", "PRODUZIONE"},
	{"058091", "Roma", "CCCFBA85D03L21VE", "Cucco", "Fabio", "M", "03/04/1985", "fabio.cucco@example.it", "", "ALS", "SI", "PRODUZIONE"},
	{"058091", "Roma", "MRTMRA83T56A269B", "Martini", "Maria", "F", "16/12/1983", "maria.martini@example.it", "", "ALP", "SI", "PRODUZIONE"},
}

// TestHostileWorkbooksRefusedWhole: files that are not census workbooks
// at all, or that must not be opened, each refused whole with its code;
// the good workbook after them in the same run is processed.
func TestHostileWorkbooksRefusedWhole(t *testing.T) {
	h := newHarness(t)
	var encrypted bytes.Buffer
	{
		f := excelize.NewFile()
		f.SetSheetName("Sheet1", "Utenti")
		f.SetSheetRow("Utenti", "A1", &[]any{"Codice ISTAT"})
		if _, err := f.WriteTo(&encrypted, excelize.Options{Password: "segreta"}); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	bomb := zipBomb(t, 17) // 1088 MiB > 1 GiB
	t.Logf("zip bomb: %d bytes, expands to %d MiB", len(bomb), 17*64)
	cases := []struct {
		name string
		data []byte
		code string
		msg  string
	}{
		{"bomba.xlsx", bomb, "TROPPO_GRANDE", "supera 256 MB"},
		{"cifrato.xlsx", encrypted.Bytes(), "FILE_PROTETTO", "password"},
		{"vecchio.xlsx", append([]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), make([]byte, 600)...), "FILE_ILLEGGIBILE", ".xls"},
		{"documento.xlsx", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"), "FILE_ILLEGGIBILE", "non è una cartella di lavoro"},
		{"testo.xlsx", []byte("Codice ISTAT;Comune\n058091;Roma\n"), "FILE_ILLEGGIBILE", "non è una cartella di lavoro"},
		{"binario.xlsx", []byte{0, 1, 2, 3, 0xff, 0xfe, 0x80, 0x81}, "FILE_ILLEGGIBILE", "non è una cartella di lavoro"},
		{"troncato.xlsx", goodBook(t)[:3000], "FILE_ILLEGGIBILE", "non è una cartella di lavoro"},
		{"senza-utenti.xlsx", workbook(t, sheet{"Foglio1", append([][]any{header()}, romaRows...)}), "FOGLIO_MANCANTE", "fogli presenti: Foglio1"},
		{"utenti-2.xlsx", workbook(t, sheet{"Utenti (2)", append([][]any{header()}, romaRows...)}), "FOGLIO_MANCANTE", "fogli presenti: Utenti (2)"},
		{"colonna-mancante.xlsx", workbook(t, sheet{"Utenti", [][]any{header()[:11], romaRows[0][:11]}}), "FOGLIO_NON_VALIDO", `"Ambiente"`},
		{"colonna-rinominata.xlsx", workbook(t, sheet{"Utenti", func() [][]any {
			hd := header()
			hd[2] = "Cod. Fisc."
			return [][]any{hd, romaRows[0]}
		}()}), "FOGLIO_NON_VALIDO", `"Codice Fiscale"`},
		{"colonna-doppia.xlsx", workbook(t, sheet{"Utenti", [][]any{append(header(), "CODICE FISCALE"), romaRows[0]}}), "FOGLIO_NON_VALIDO", "due volte"},
		{"vuoto-foglio.xlsx", workbook(t, sheet{"Utenti", nil}), "FOGLIO_NON_VALIDO", "intestazione"},
		{"postazioni-rotte.xlsx", workbook(t, sheet{"Utenti", append([][]any{header()}, romaRows...)}, sheet{"Postazioni", [][]any{{"Codice", "Numero"}}}), "FOGLIO_NON_VALIDO", "Postazioni"},
	}
	for _, c := range cases {
		h.put(c.name, c.data)
	}
	h.put("zz-buono.xlsx", goodBook(t))
	start := time.Now()
	st := h.run()
	t.Logf("%d hostile workbooks and a good one in %v", len(cases), time.Since(start).Round(time.Millisecond))
	if st.Refused != len(cases) || st.Accepted != 1 {
		t.Errorf("stats %+v, want %d refused and 1 accepted", st, len(cases))
	}
	for _, c := range cases {
		got := h.esito(c.name)
		g := got[":0"]
		if len(got) != 1 || g == nil || g[0] != "SCARTATO" || g[1] != c.code || !strings.Contains(g[2], c.msg) {
			t.Errorf("%s: receipt %q, want riga 0 SCARTATO %s containing %q", c.name, got, c.code, c.msg)
		}
		if _, err := os.Stat(filepath.Join(h.root, "censimento", "scartati", c.name)); err != nil {
			t.Errorf("%s not in scartati/: %v", c.name, err)
		}
	}
	h.goodAfter()
}

// TestHostileWorkbookRows: workbooks that open but carry traps, judged row
// by row: formula cells (their cached value is used, never evaluated: a
// formula that would compute something else), a formula without a cached
// value, merged cells (only the top-left cell holds the value), a hidden
// Utenti sheet (read: it is asked for by name), a sheet named in another
// case, and a header with odd spelling.
func TestHostileWorkbookRows(t *testing.T) {
	formula := func(f, cached string) string {
		return `<c r="%s" t="str"><f>` + f + `</f><v>` + cached + `</v></c>`
	}
	cases := []struct {
		name string
		data []byte
		want map[string]string // "sheet:row" -> "ESITO CODE"
	}{
		{"formule.xlsx", withSheetXML(t, func(w io.Writer) {
			r := [][]string{headerStrings, append([]string{}, romaStrings[0]...), append([]string{}, romaStrings[1]...), append([]string{}, romaStrings[2]...),
				{"058091", "Roma", "VRDGPP80A01H501U", "Verdi", "Giuseppe", "M", "01/01/1980", "giuseppe@example.it", "", "OPERATORE", "NO", "PRODUZIONE"}}
			r[1][0] = formula(`1+1`, `058091`)                                         // evaluated it would be 2
			r[2][2] = formula(`WEBSERVICE("http://127.0.0.1:1/")`, `CCCFBA85D03L21VE`) // never fetched
			r[3][7] = formula(`CONCATENATE("x","@y")`, `maria.martini@example.it`)
			r[4][0] = `<c r="%s"><f>58091</f></c>` // no cached value: empty
			inlineSheet(w, r, "")
		}), map[string]string{"Utenti:2": "OK CREATA", "Utenti:3": "OK CREATA", "Utenti:4": "OK CREATA", "Utenti:5": "SCARTATO ISTAT"}},
		{"unite.xlsx", withSheetXML(t, func(w io.Writer) {
			r := [][]string{headerStrings, romaStrings[0], append([]string{""}, romaStrings[1][1:]...), append([]string{""}, romaStrings[2][1:]...)}
			inlineSheet(w, r, `<mergeCells count="1"><mergeCell ref="A2:A4"/></mergeCells>`)
		}), map[string]string{"Utenti:2": "SCARTATO COMUNE_PROFILI", "Utenti:3": "SCARTATO ISTAT", "Utenti:4": "SCARTATO ISTAT"}},
		{"nascosto.xlsx", func() []byte {
			f := excelize.NewFile()
			defer f.Close()
			f.SetSheetName("Sheet1", "Istruzioni")
			f.SetSheetRow("Istruzioni", "A1", &[]any{"Compilare il foglio Utenti"})
			f.NewSheet("Utenti")
			for i, r := range append([][]any{header()}, romaRows...) {
				f.SetSheetRow("Utenti", fmt.Sprintf("A%d", i+1), &r)
			}
			f.SetSheetVisible("Utenti", false, true) // very hidden
			var b bytes.Buffer
			f.WriteTo(&b)
			return b.Bytes()
		}(), map[string]string{"Utenti:2": "OK CREATA", "Utenti:3": "OK CREATA", "Utenti:4": "OK CREATA"}},
		{"maiuscolo.xlsx", workbook(t, sheet{" UTENTI ", [][]any{
			{"codice istat", "COMUNE", "Codice  Fiscale", "cognome", "Nome", "Sesso", "Data di Nascita", "EMAIL", "Pec", "profili", "Smart-Card", "Ambiente"},
			romaRows[0], romaRows[1], romaRows[2]}}),
			map[string]string{" UTENTI :2": "OK CREATA", " UTENTI :3": "OK CREATA", " UTENTI :4": "OK CREATA"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.put(c.name, c.data)
			h.put("zz-buono.xlsx", goodBook(t))
			st := h.run()
			if st.Files != 2 || st.Refused != 0 {
				t.Errorf("stats %+v", st)
			}
			got := h.esito(c.name)
			if len(got) != len(c.want) {
				t.Errorf("receipt %q, want %d lines", got, len(c.want))
			}
			for k, want := range c.want {
				if g := got[k]; g == nil || g[0]+" "+g[1] != want || g[2] == "" {
					t.Errorf("%s = %q, want %s with a message", k, g, want)
				}
			}
			got = h.esito("zz-buono.xlsx")
			for _, k := range []string{"Utenti:2", "Utenti:3", "Utenti:4"} {
				if g := got[k]; g == nil || g[0] != "OK" {
					t.Errorf("good workbook after it: %s = %q", k, g)
				}
			}
			if _, err := h.st.VerifyHistory(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestHostileMillionsOfRows: a sheet of 2 million rows (hand-written XML
// streamed into the zip: about 10 MB on disk, 100 MB of XML) is refused
// by the row cap (census.max_rows of the default config, 500,000) after
// reading no more than the cap, with the default drop.max_file_size; the good
// workbook after it is processed.
func TestHostileMillionsOfRows(t *testing.T) {
	if testing.Short() {
		t.Skip("2 million rows: not in -short")
	}
	const rows = 2_000_000
	start := time.Now()
	data := withSheetXML(t, func(w io.Writer) {
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">`)
		for j, c := range headerStrings {
			ref, _ := excelize.CoordinatesToCellName(j+1, 1)
			fmt.Fprintf(w, `<c r="%s" t="inlineStr"><is><t>%s</t></is></c>`, ref, c)
		}
		fmt.Fprint(w, `</row>`)
		for r := 2; r <= rows+1; r++ {
			fmt.Fprintf(w, `<row r="%d"><c r="A%d"><v>58091</v></c><c r="C%d"><v>%d</v></c></row>`, r, r, r, r)
		}
		fmt.Fprint(w, `</sheetData></worksheet>`)
	})
	t.Logf("workbook of %d rows: %d bytes, made in %v", rows, len(data), time.Since(start).Round(time.Millisecond))
	h := newHarness(t)
	cfg := config.Default(t.TempDir())
	h.ing.MaxRows = cfg.Census.MaxRows // 500,000
	h.inbox.MaxSize = int64(cfg.Drop.MaxFileSize)
	h.put("due-milioni.xlsx", data)
	h.put("zz-buono.xlsx", goodBook(t))
	start = time.Now()
	st := h.run()
	t.Logf("ingested in %v: %+v", time.Since(start).Round(time.Millisecond), st)
	g := h.esito("due-milioni.xlsx")[":0"]
	if g == nil || g[1] != "FOGLIO_NON_VALIDO" || !strings.Contains(g[2], fmt.Sprintf("più di %d righe", cfg.Census.MaxRows)) {
		t.Errorf("receipt %q", g)
	}
	h.goodAfter()
	if n := countUtenze(h); n != 3 { // nothing of the big sheet applied
		t.Errorf("%d utenze, want the good workbook's 3", n)
	}
}

func countUtenze(h *harness) int {
	n := 0
	h.st.View(func(tx *store.Tx) error {
		n, _ = tx.Count("u/")
		return nil
	})
	return n
}
