package jobs

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"anprsec/domain"
	"anprsec/pki"
	"anprsec/store"
)

var allCertStates = []domain.CertState{
	domain.CertRichiesta, domain.CertAttivo, domain.CertBloccato,
	domain.CertRevocaInCorso, domain.CertRevocato, domain.CertScaduto,
}

// TestPostazioniTransitions applies every operation to a postazione in
// every state: the allowed ones change the state with a history entry, the
// others are refused with a message naming the code and the state, and
// change nothing.
func TestPostazioniTransitions(t *testing.T) {
	c := newCertEnv(t)
	st := c.env.Store
	allowed := map[Op]map[domain.CertState]domain.CertState{
		OpBlocca:  {domain.CertAttivo: domain.CertBloccato},
		OpSblocca: {domain.CertBloccato: domain.CertAttivo},
		OpRevoca:  {domain.CertAttivo: domain.CertRevocaInCorso, domain.CertBloccato: domain.CertRevocaInCorso},
	}
	src := store.Source{Actor: "RSSMRA68A01H501Y"}
	n := 0
	for _, op := range []Op{OpBlocca, OpSblocca, OpRevoca} {
		for _, from := range allCertStates {
			n++
			code := domain.WorkstationCode("058091", n)
			t.Run(fmt.Sprintf("%s/%s", op, from), func(t *testing.T) {
				if err := st.Update(func(tx *store.Tx) error {
					return tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: "058091", State: from, Serial: fmt.Sprintf("%X", 1000+n)})
				}); err != nil {
					t.Fatal(err)
				}
				motivo := "motivo di " + code
				p, err := ChangePostazione(st, src, op, strings.ToLower(code), motivo)
				es, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Key == code })
				var cur *domain.Postazione
				st.View(func(tx *store.Tx) error { cur, _ = tx.Postazione(code); return nil })
				to, ok := allowed[op][from]
				if !ok {
					var es2 *ErrStato
					if !errors.As(err, &es2) {
						t.Fatalf("error = %v, want *ErrStato", err)
					}
					msg := err.Error()
					if !strings.Contains(msg, code) || !strings.Contains(msg, string(from)) || !strings.Contains(msg, "non può essere") {
						t.Errorf("message %q does not name the code and the state", msg)
					}
					if cur.State != from || len(es) != 0 {
						t.Errorf("refused operation changed something: state %s, %d history entries", cur.State, len(es))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if p.State != to || cur.State != to || cur.Reason != motivo {
					t.Errorf("state %s (stored %s, reason %q), want %s", p.State, cur.State, cur.Reason, to)
				}
				if len(es) != 1 || es[0].Actor != src.Actor || es[0].Detail != motivo || es[0].Action != "postazione."+string(op) {
					t.Errorf("history = %+v", es)
				}
				switch op {
				case OpBlocca:
					if cur.HoldSince.IsZero() {
						t.Error("HoldSince not set")
					}
				case OpSblocca:
					if !cur.HoldSince.IsZero() {
						t.Error("HoldSince still set")
					}
				case OpRevoca:
					if cur.RevokedAt.IsZero() {
						t.Error("RevokedAt not set")
					}
				}
				var codes []string
				st.View(func(tx *store.Tx) error { codes, _ = tx.PostazioniInState(to); return nil })
				if !strings.Contains(strings.Join(codes, ","), code) {
					t.Errorf("state index of %s lacks %s", to, code)
				}
			})
		}
	}
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("history verify: %v", err)
	}
}

func TestPostazioniRefusals(t *testing.T) {
	c := newCertEnv(t)
	st := c.env.Store
	st.Update(func(tx *store.Tx) error {
		return tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0001", ISTAT: "058091", State: domain.CertAttivo, Serial: "AB"})
	})
	src := store.Source{Actor: BackOfficeActor}
	if _, err := Blocca(st, src, "058091-PC-0001", "  "); !errors.Is(err, ErrMotivo) {
		t.Errorf("empty motivo: %v", err)
	}
	if _, err := Blocca(st, src, "058091-PC-0099", "prova"); !errors.Is(err, ErrPostazioneSconosciuta) || !strings.Contains(err.Error(), "058091-PC-0099") {
		t.Errorf("unknown code: %v", err)
	}
	if _, err := Blocca(st, store.Source{}, "058091-PC-0001", "prova"); err == nil {
		t.Error("no actor accepted")
	}
	if _, err := ChangePostazione(st, src, "cancella", "058091-PC-0001", "prova"); err == nil {
		t.Error("unknown operation accepted")
	}
	es, _ := st.History(0, 0, nil)
	if len(es) != 0 {
		t.Errorf("refusals wrote %d history entries", len(es))
	}
}

// TestRevocaCompleted: the certificati batch turns REVOCATA IN LAVORAZIONE
// into REVOCATO with the reason derived from the motivo, and never back.
func TestRevocaCompleted(t *testing.T) {
	c := newCertEnv(t)
	st := c.env.Store
	st.Update(func(tx *store.Tx) error {
		tx.PutComune(&domain.Comune{ISTAT: "058091", Name: "Roma", Province: "058"})
		tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0001", ISTAT: "058091", State: domain.CertAttivo, Serial: "AB"})
		return tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0002", ISTAT: "058091", State: domain.CertBloccato, Serial: "CD"})
	})
	src := store.Source{Actor: BackOfficeActor}
	if _, err := Revoca(st, src, "058091-PC-0001", "furto"); err != nil {
		t.Fatal(err)
	}
	if _, err := Revoca(st, src, "058091-PC-0002", "prova"); err != nil {
		t.Fatal(err)
	}
	counts, err := c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["revoked"] != 2 {
		t.Errorf("counts = %v, want revoked=2", counts)
	}
	ps := c.postazioni()
	if p := ps["058091-PC-0001"]; p.State != domain.CertRevocato || p.RevocationReason != pki.ReasonKeyCompromise {
		t.Errorf("PC-0001 = %s reason %d", p.State, p.RevocationReason)
	}
	if p := ps["058091-PC-0002"]; p.State != domain.CertRevocato || p.RevocationReason != pki.ReasonUnspecified {
		t.Errorf("PC-0002 = %s reason %d", p.State, p.RevocationReason)
	}
	for _, op := range []Op{OpBlocca, OpSblocca, OpRevoca} {
		if _, err := ChangePostazione(st, src, op, "058091-PC-0001", "ripensamento"); err == nil {
			t.Errorf("%s of a REVOCATO certificate accepted", op)
		}
	}
	counts, _ = c.run(certificatiJob)
	if counts["revoked"] != 0 {
		t.Errorf("second run counts = %v", counts)
	}
	es, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.revocata" })
	if len(es) != 2 || es[0].Actor != CertActor || !strings.Contains(es[0].Detail, "keyCompromise") {
		t.Errorf("postazione.revocata entries = %+v", es)
	}
	if _, err := st.VerifyHistory(); err != nil {
		t.Errorf("history verify: %v", err)
	}
}
