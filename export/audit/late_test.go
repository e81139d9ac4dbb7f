package audit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/export/audit"
	"anprsec/lifecycle"
	"anprsec/store"
	"anprsec/workdays"
)

// TestCardLateInProductionIsAnAnomaly: a card IN PRODUZIONE for more
// working days than the rule allows is listed among the national
// anomalies; one ordered three days ago is not.
func TestCardLateInProductionIsAnAnomaly(t *testing.T) {
	fx := newFixture(t)
	err := fx.st.Update(func(tx *store.Tx) error {
		for serial, days := range map[string]int{"SC9000000001": 30, "SC9000000002": 3} {
			if err := tx.PutCard(&domain.SmartCard{Serial: serial, CF: "CNCPLA70A01H501Q", ISTAT: "058091",
				State: domain.CardProduzione, Ordered: now.AddDate(0, 0, -days)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ex := fx.exporter(t)
	ex.Late = lifecycle.LateRule{Days: 10, Calendar: &workdays.Calendar{}, Loc: rome}
	res, err := ex.National(context.Background(), audit.DefaultPeriod(now, rome))
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(fx.read(t, res.XLSX)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(audit.AnomaliesSheet)
	if err != nil {
		t.Fatal(err)
	}
	var late []string
	for _, r := range rows[1:] {
		if len(r) > 5 && r[0] == audit.AnomalyCardLate {
			late = append(late, r[5])
		}
	}
	if len(late) != 1 || !strings.Contains(late[0], "SC9000000001") {
		t.Errorf("late cards among the anomalies: %q, want SC9000000001 only", late)
	}
}
