package lifecycle

import (
	"testing"

	"anprsec/domain"
	"anprsec/store"
)

// issueBatch makes codes ATTIVO (with a serial) in one transaction and
// asks QueueFirstCertificate, as the certificati job does; it returns the
// first certificate queued ("" for none).
func issueBatch(t *testing.T, st *store.Store, istat string, codes ...string) string {
	t.Helper()
	var first string
	err := st.Update(func(tx *store.Tx) error {
		var issued []*domain.Postazione
		for _, c := range codes {
			p := &domain.Postazione{Code: c, ISTAT: istat, State: domain.CertAttivo, Serial: "0A" + c, Server: c == istat+"-CO-9999"}
			if err := tx.PutPostazione(p); err != nil {
				return err
			}
			issued = append(issued, p)
		}
		var err error
		first, err = QueueFirstCertificate(tx, store.Source{Actor: "certificati"}, istat, issued)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return first
}

// TestFirstCertificateIsTheLowestWorkstationOfTheFirstBatch: the first
// certificate is the lowest -PC- code of the first batch that issues
// workstation certificates of the comune, never the server's (which sorts
// first); a batch of only the server's queues nothing, a later batch
// nothing more; a comune that had an issued workstation certificate before
// gets none.
func TestFirstCertificateIsTheLowestWorkstationOfTheFirstBatch(t *testing.T) {
	st := openStore(t)
	st.Update(func(tx *store.Tx) error {
		for _, istat := range []string{"058091", "015146"} {
			if err := tx.PutComune(&domain.Comune{ISTAT: istat, Name: "C" + istat}); err != nil {
				return err
			}
		}
		// 015146 had a certificate issued before the rule existed.
		return tx.PutPostazione(&domain.Postazione{Code: "015146-PC-0001", ISTAT: "015146", State: domain.CertAttivo, Serial: "01"})
	})
	if got := issueBatch(t, st, "058091", "058091-CO-9999"); got != "" {
		t.Errorf("server certificate alone: first = %q", got)
	}
	if got := issueBatch(t, st, "058091", "058091-PC-0003", "058091-PC-0002"); got != "058091-PC-0002" {
		t.Errorf("first batch of workstations: first = %q, want 058091-PC-0002", got)
	}
	if got := issueBatch(t, st, "058091", "058091-PC-0001"); got != "" {
		t.Errorf("later batch: first = %q", got)
	}
	if got := issueBatch(t, st, "015146", "015146-PC-0002"); got != "" {
		t.Errorf("comune with an earlier certificate: first = %q", got)
	}
	st.View(func(tx *store.Tx) error {
		c, _ := tx.Comune("058091")
		if c.FirstCert != "058091-PC-0002" {
			t.Errorf("Comune.FirstCert = %q", c.FirstCert)
		}
		ids, _ := tx.MailsInState(store.MailQueued)
		if len(ids) != 1 || ids[0] != store.FirstCertMailID("058091-PC-0002") {
			t.Errorf("queued mails %v", ids)
		}
		return nil
	})
}

// TestStatusViewFollowsTheProfiles: the ALS sees utenze and cards, the ALP
// postazioni, the ASC both, several profiles the union, the others nothing.
func TestStatusViewFollowsTheProfiles(t *testing.T) {
	for _, tc := range []struct {
		ps   []domain.Profile
		want StatusView
	}{
		{[]domain.Profile{domain.ALS}, StatusView{Utenze: true}},
		{[]domain.Profile{domain.ALP}, StatusView{Postazioni: true}},
		{[]domain.Profile{domain.ASC}, StatusView{Utenze: true, Postazioni: true}},
		{[]domain.Profile{domain.ALS, domain.ALP}, StatusView{Utenze: true, Postazioni: true}},
		{[]domain.Profile{domain.APL, domain.Operatore, domain.Consultazione}, StatusView{}},
	} {
		if got := StatusViewOf(tc.ps); got != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.ps, got, tc.want)
		}
	}
}
