package lifecycle

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode"

	"anprsec/domain"
	"anprsec/secret"
	"anprsec/store"
)

// TestConfirmationNoteIsOneBoundedLine: the Nota of a CONFERMA_VERIFICA,
// written by the comune, is kept and recorded as one line of at most
// maxNote bytes: its line ends, tabs and other control characters (an
// escape sequence for the back-office's terminal, a fake second entry in
// the history listing) become spaces.
func TestConfirmationNoteIsOneBoundedLine(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{1}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const id = "AVV-20261201"
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i, note := range []string{
		"verificato\n01/12/2026 10:00 back-office campagna chiusa\r\x1b[2J\u009b31m\tfine",
		strings.Repeat("=HYPERLINK(\"x\")", 1000),
	} {
		istat := []string{"058091", "058092"}[i]
		var code string
		if err := st.Update(func(tx *store.Tx) error {
			if err := tx.PutCampaign(&store.Campaign{ID: id, State: store.CampaignOpen, Start: t0, Deadline: t0.AddDate(0, 0, 30), Comuni: []string{"058091", "058092"}}); err != nil {
				return err
			}
			if err := tx.PutCampaignComune(&store.CampaignComune{Campaign: id, ISTAT: istat, Notified: t0, LastSent: t0, Recipients: 1}); err != nil {
				return err
			}
			var ref *Refusal
			code, _, ref, err = ConfirmCheck(tx, store.Source{Actor: "test"}, istat, id, "RSSMRA68A01H501Y", note, nil)
			if ref != nil {
				t.Fatalf("refused: %v", ref)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if code != "VERIFICA_CONFERMATA" {
			t.Fatalf("code %s", code)
		}
		var cc *store.CampaignComune
		st.View(func(tx *store.Tx) (err error) { cc, err = tx.CampaignComune(id, istat); return err })
		if len(cc.Note) > maxNote || strings.IndexFunc(cc.Note, unicode.IsControl) >= 0 {
			t.Errorf("note kept: %q", cc.Note)
		}
	}
	es, err := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "avviso.verifica-confermata" })
	if err != nil || len(es) != 2 {
		t.Fatalf("entries %d, %v", len(es), err)
	}
	for _, e := range es {
		if strings.IndexFunc(e.Detail, unicode.IsControl) >= 0 {
			t.Errorf("history detail with control characters: %q", e.Detail)
		}
	}
}

// TestRenewalMotivoIsOneLine: the motivo of a renewal, which an ALP writes
// in a request and `postazioni show` prints, is kept as one line without
// control characters.
func TestRenewalMotivoIsOneLine(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{1}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const code = "058091-PC-0001"
	var p *domain.Postazione
	if err := st.Update(func(tx *store.Tx) error {
		if err := tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: "058091", State: domain.CertAttivo, Serial: "0A1B", Created: tx.Now, Updated: tx.Now}); err != nil {
			return err
		}
		p, err = RequestRenewalTx(tx, store.Source{Actor: "VRDGPP75C12H501Z"}, code, "chiave\r\nrinnovo approvato dal Ministero\u009b2K", false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if m := p.Renewal.Motivo; strings.IndexFunc(m, unicode.IsControl) >= 0 || !strings.HasPrefix(m, "chiave") {
		t.Errorf("motivo kept: %q", m)
	}
}
