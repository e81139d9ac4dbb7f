package richieste

import (
	"bytes"
	"testing"

	"anprsec/domain"
	"anprsec/secret"
	"anprsec/store"
)

// TestWorkstationCodedUnderAnEarlierCodeBelongsToTheRenumberedComune: a
// comune that changed ISTAT code still acts on the workstations coded under
// its earlier code; no other comune does.
func TestWorkstationCodedUnderAnEarlierCodeBelongsToTheRenumberedComune(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir(), Key: bytes.Repeat([]byte{1}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(func(tx *store.Tx) error {
		if err := tx.PutComune(&domain.Comune{ISTAT: "081100", PrevISTAT: []string{"081025"}}); err != nil {
			return err
		}
		return tx.PutComune(&domain.Comune{ISTAT: "058091"})
	}); err != nil {
		t.Fatal(err)
	}
	st.View(func(tx *store.Tx) error {
		for _, tc := range []struct {
			istat, code string
			want        bool
		}{
			{"081100", "081025-PC-0001", true},
			{"081100", "081100-PC-0003", true},
			{"058091", "081025-PC-0001", false},
			{"058091", "058091-CO-9999", true},
			{"081100", "0810-PC-0001", false},
		} {
			got, err := codedUnder(tx, tc.istat, tc.code)
			if err != nil || got != tc.want {
				t.Errorf("codedUnder(%s, %s) = %v, %v; want %v", tc.istat, tc.code, got, err, tc.want)
			}
		}
		return nil
	})
}
