package lifecycle

import (
	"testing"

	"anprsec/domain"
	"anprsec/store"
)

func TestComuneInvariantNeedsOneASCAndAnALSAndAnALP(t *testing.T) {
	for _, tc := range []struct {
		name   string
		utenze map[string][]domain.Profile
		want   string
	}{
		{"complete", map[string][]domain.Profile{"A": {domain.ASC}, "B": {domain.ALS, domain.ALP}}, ""},
		{"one person holds all three", map[string][]domain.Profile{"A": {domain.ASC, domain.ALS, domain.ALP}}, ""},
		{"empty", nil, "manca l'ASC (sindaco o commissario), manca un ALS, manca un ALP"},
		{"two ASC", map[string][]domain.Profile{"A": {domain.ASC}, "B": {domain.ASC, domain.ALS, domain.ALP}}, "2 utenti con profilo ASC, ne è ammesso uno solo"},
		{"no ALP", map[string][]domain.Profile{"A": {domain.ASC, domain.ALS}, "B": {domain.Operatore}}, "manca un ALP"},
	} {
		if got := CensusBreaches(tc.utenze, nil); got != tc.want {
			t.Errorf("%s: CensusBreaches = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSecondASCSaysWhichIsAlreadyInTheStore(t *testing.T) {
	utenze := map[string][]domain.Profile{"A": {domain.ASC}, "B": {domain.ASC, domain.ALS, domain.ALP}}
	got := CensusBreaches(utenze, map[string]bool{"A": true})
	want := "2 utenti con profilo ASC (1 già in archivio da un censimento precedente, 1 in questo file), ne è ammesso uno solo"
	if got != want {
		t.Errorf("CensusBreaches = %q, want %q", got, want)
	}
}

func TestAuditReportsMissingAndDoubledProfiles(t *testing.T) {
	if got := AuditBreaches(Staff{domain.ASC: 1, domain.ALS: 2, domain.ALP: 1}); got != "" {
		t.Errorf("complete comune: %q", got)
	}
	if got, want := AuditBreaches(Staff{domain.ASC: 1}), "nessun ALS, ALP con utenza attiva e smart card attiva"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := AuditBreaches(Staff{domain.ASC: 2, domain.ALS: 1, domain.ALP: 1}), "2 ASC con utenza attiva e smart card attiva: l'ASC è uno solo"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestChangeMayNotLeaveAComuneWithoutAProfileItHad: only a change for the
// worse is refused; a comune already short of a profile may change other
// things.
func TestChangeMayNotLeaveAComuneWithoutAProfileItHad(t *testing.T) {
	st := openStore(t)
	put := func(istat, cf string, state domain.UtenzaState, ps ...domain.Profile) {
		if err := st.Update(func(tx *store.Tx) error {
			return tx.PutUtenza(&domain.Utenza{ISTAT: istat, CF: cf, Profiles: ps, State: state})
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("000001", "SINDACO", domain.UtenzaAttiva, domain.ASC)
	put("000001", "ALS1", domain.UtenzaAttiva, domain.ALS)
	put("000001", "ALP1", domain.UtenzaAttiva, domain.ALP)
	put("000001", "ALS2", domain.UtenzaBloccata, domain.ALS)
	// Comune 000002 never had an ALP.
	put("000002", "SINDACO2", domain.UtenzaAttiva, domain.ASC, domain.ALS)
	put("000002", "OP", domain.UtenzaAttiva, domain.Operatore)

	for _, tc := range []struct {
		istat, cf string
		after     []domain.Profile
		want      string // refusal code, "" = allowed
	}{
		{"000001", "ALS1", nil, "COMUNE_SENZA_ALS"}, // the blocked ALS does not count
		{"000001", "ALP1", []domain.Profile{domain.Operatore}, "COMUNE_SENZA_ALP"},
		{"000001", "SINDACO", nil, "COMUNE_SENZA_ASC"},
		{"000001", "ALS1", []domain.Profile{domain.ALS, domain.ASC}, "ASC_DOPPIO"},
		{"000001", "NEW", []domain.Profile{domain.ASC}, "ASC_DOPPIO"},
		{"000001", "NEW", []domain.Profile{domain.ALS}, ""},
		{"000001", "SINDACO", []domain.Profile{domain.ASC, domain.APL}, ""},
		{"000002", "OP", nil, ""}, // already without an ALP: other changes go on
		{"000002", "SINDACO2", []domain.Profile{domain.ASC}, "COMUNE_SENZA_ALS"},
	} {
		var ref *Refusal
		if err := st.View(func(tx *store.Tx) error {
			var err error
			ref, err = ChangeBreach(tx, tc.istat, tc.cf, tc.after)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		got := ""
		if ref != nil {
			got = ref.Code
		}
		if got != tc.want {
			t.Errorf("%s %s -> %v: refusal %q, want %q", tc.istat, tc.cf, tc.after, got, tc.want)
		}
	}
}
