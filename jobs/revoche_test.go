package jobs

import (
	"context"
	"crypto/x509"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/export/audit"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

// TestMonthlyRevocationListHasEveryFinalRevocationFieldByField: the
// revocation list of the month (revoche-<YYYY-MM>.csv and the Revoche
// sheet) holds one line per certificate or card whose revocation became
// final: a certificate revoked for good (at the batch), a certificate
// superseded by its renewal (at the end of its overlap) and a revoked
// card, each with comune, code or serial, holder, activation, expiry, the
// date it became final, reason and who asked; a held certificate and a
// certificate still in its overlap are not there.
func TestMonthlyRevocationListHasEveryFinalRevocationFieldByField(t *testing.T) {
	c, clk := renewEnv(t)
	st := c.env.Store
	c.env.Config.PKI.RevokeGrace = 0
	c.env.Config.PKI.RenewOverlap = time.Hour
	loc := c.env.Loc
	ps := c.postazioni()
	alp := store.Source{Actor: "RSSMRA80A01H501U"}
	bo := store.Source{Actor: lifecycle.BackOfficeOperator("mario")}

	// PC-0001 renewed; its old certificate is superseded after the hour.
	if _, err := lifecycle.RequestRenewal(st, alp, renewCode, "chiave vecchia"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	// PC-0003 renewed too, but still inside its overlap at the export.
	clk.add(90 * time.Minute)
	if _, err := lifecycle.RequestRenewal(st, alp, "058091-PC-0003", "prova"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	// PC-0002 revoked for good; CO-9999 only blocked.
	clk.add(time.Minute)
	if _, err := lifecycle.ChangePostazioneWithin(st, bo, lifecycle.OpRevokePostazione, "058091-PC-0002", "furto del PC", 0, nil); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute)
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	if _, err := lifecycle.ChangePostazione(st, bo, lifecycle.OpBlockPostazione, "058091-CO-9999", "verifica"); err != nil {
		t.Fatal(err)
	}
	// A card revoked.
	clk.add(time.Minute)
	activated, expires := clk.now().Add(-40*24*time.Hour), clk.now().Add(3*365*24*time.Hour)
	var card *domain.SmartCard
	var holder *domain.Person
	if err := st.Update(func(tx *store.Tx) error {
		sc, err := tx.Card("SC0000000001")
		if err != nil {
			return err
		}
		sc.State, sc.Activated, sc.Expires = domain.CardAttiva, activated, expires
		if err := lifecycle.RevokeCard(tx, alp, sc, "smarrimento"); err != nil {
			return err
		}
		card = sc
		holder, err = tx.Person(sc.CF)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	target, err := drop.NewLocal(out)
	if err != nil {
		t.Fatal(err)
	}
	now := clk.now().Add(time.Minute)
	e := &audit.Exporter{Store: st, Target: target, Flat: true, TempDir: t.TempDir(), Location: loc, Now: func() time.Time { return now }}
	res, err := e.National(context.Background(), audit.DefaultPeriod(now, loc))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Revocations) != 2 {
		t.Fatalf("revocation lists = %v, want the previous and the current month", res.Revocations)
	}
	var lines [][]string
	for _, name := range res.Revocations {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), audit.BOM) || !strings.Contains(string(data), "\r\n") {
			t.Errorf("%s: no BOM or CRLF", name)
		}
		r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(data), audit.BOM)))
		r.Comma = ';'
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(recs[0], ";"); got != "Mese;Tipo;Codice ISTAT;Comune;Codice postazione o seriale;Seriale del certificato;Titolare (codice fiscale);Titolare;Data di attivazione;Data di scadenza;Data di revoca;Motivo;Richiesta da" {
			t.Errorf("%s header: %s", name, got)
		}
		month := strings.TrimSuffix(strings.TrimPrefix(name, "revoche-"), ".csv")
		for _, rec := range recs[1:] {
			if rec[0] != month {
				t.Errorf("%s holds a line of %s", name, rec[0])
			}
			lines = append(lines, rec)
		}
	}
	day := func(tm time.Time) string { return tm.In(loc).Format("02/01/2006") }
	at := func(tm time.Time) string { return tm.In(loc).Format("02/01/2006 15:04:05") }
	month := func(tm time.Time) string { return tm.In(loc).Format("2006-01") }

	cur := c.postazioni()
	pc := cur[renewCode].Predecessors[0]
	gone := cur["058091-PC-0002"]
	old := ps[renewCode]
	want := [][]string{
		{month(pc.OverlapUntil), "certificato", "058091", "Roma", renewCode, old.Serial, "", "", day(pc.NotBefore), day(old.NotAfter),
			at(pc.OverlapUntil), "superseded (rinnovo: chiave vecchia)", alp.Actor},
		{month(gone.Updated), "certificato", "058091", "Roma", gone.Code, gone.Serial, "", "", day(notBefore(t, gone.CertDER)), day(gone.NotAfter),
			at(gone.Updated), "keyCompromise (furto del PC)", bo.Actor},
		{month(card.Updated), "smart card", "058091", "Roma", "SC0000000001", "", card.CF, holder.Surname + " " + holder.Name,
			day(activated), day(expires), at(card.Updated), "smarrimento", alp.Actor},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%v", len(lines), len(want), lines)
	}
	for i := range want {
		if !slices.Equal(lines[i], want[i]) {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, lines[i], want[i])
		}
	}
	wb, err := excelize.OpenFile(filepath.Join(out, res.XLSX))
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	rows, err := wb.GetRows(audit.RevocationsSheet)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[1][4] != renewCode || rows[2][4] != gone.Code || rows[3][4] != "SC0000000001" || rows[3][7] != want[2][7] {
		t.Errorf("sheet %s = %q", audit.RevocationsSheet, rows)
	}
	if pc.NotBefore.IsZero() || gone.RevocationReason != pki.ReasonKeyCompromise {
		t.Errorf("fixture: predecessor issued %v, reason %d", pc.NotBefore, gone.RevocationReason)
	}
}

func notBefore(t *testing.T, der []byte) time.Time {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.NotBefore
}
