package jobs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki/pgp"
	"anprsec/secret"
	"anprsec/store"
)

const (
	cfCosta   = "CSTMRC66H10H501P" // CONSULTAZIONE only, no card: cancellable
	mailCosta = "marco.costa@example.it"
)

// newPuliziaEnv is newCertEnv with the OpenPGP keys and an on-disk store
// whose clock the test moves (*now).
func newPuliziaEnv(t *testing.T, now *time.Time) *certEnv {
	t.Helper()
	c := newCertEnv(t)
	c.withPGP()
	c.env.Store.Close()
	st, err := store.Open(store.Options{Dir: filepath.Join(t.TempDir(), "data"), Key: bytes.Repeat([]byte{1}, secret.KeySize), Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.env.Store = st
	return c
}

// versions counts the stored versions of key, deleted and old ones too.
func versions(t *testing.T, st *store.Store, key string) int {
	t.Helper()
	n := 0
	if err := st.EachVersion(func(k []byte, _, _ bool) error {
		if string(k) == key {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// holding lists the stored versions whose key or value holds one of what.
func holding(t *testing.T, st *store.Store, what ...string) []string {
	t.Helper()
	var out []string
	err := st.RawScanAllVersions(func(k, v []byte, _ bool) error {
		for _, w := range what {
			lw := []byte(strings.ToLower(w))
			if bytes.Contains(bytes.ToLower(k), lw) || bytes.Contains(bytes.ToLower(v), lw) {
				out = append(out, fmt.Sprintf("%q holds %s", k, w))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCancelledUtenzaIsGoneAtOnceAndItsPersonAfterTheRetention: the
// cancelled utenza is not stored any more (after the next pulizia-persone,
// no version of it either); the person, left without utenza and card, stays
// for retention.persona_days and is then erased: no version of his record,
// no codice fiscale or e-mail address of his in any key or value. The
// history and a checkpoint published before still verify.
func TestCancelledUtenzaIsGoneAtOnceAndItsPersonAfterTheRetention(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c := newPuliziaEnv(t, &now)
	c.census()
	err := c.env.Store.Update(func(tx *store.Tx) error {
		code, _, ref, err := lifecycle.ChangeUtenza(tx, store.Source{Actor: lifecycle.BackOfficeOperator("test")}, lifecycle.OpCancelUtente, "058091", cfCosta, "trasferito")
		if ref != nil || code != "CANCELLATA" {
			return fmt.Errorf("cancellation: %v %v", code, ref)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.env.Store.View(func(tx *store.Tx) error {
		if _, err := tx.Utenza("058091", cfCosta); err == nil {
			return fmt.Errorf("the cancelled utenza is still stored")
		}
		return tx.UtenzeOfComune("058091", func(u *domain.Utenza) error {
			if u.CF == cfCosta {
				return fmt.Errorf("the comune still lists the cancelled utenza")
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(registroJob); err != nil {
		t.Fatal(err)
	}
	cpData, err := os.ReadFile(c.publishedCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	c.env.Config.Retention.PersonaDays = 180

	now = now.AddDate(0, 0, 179)
	counts, err := c.run(puliziaPersoneJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["persone_cancellate"] != 0 || counts["versioni_residue"] != 0 {
		t.Fatalf("before the retention: %v, want no person erased and no version left", counts)
	}
	if n := versions(t, c.env.Store, "u/058091/"+cfCosta); n != 0 {
		t.Fatalf("%d versions of the cancelled utenza left", n)
	}
	if n := versions(t, c.env.Store, "p/"+cfCosta); n != 1 {
		t.Fatalf("the person before his retention: %d versions, want 1", n)
	}

	now = now.AddDate(0, 0, 2)
	if counts, err = c.run(puliziaPersoneJob); err != nil {
		t.Fatal(err)
	}
	if counts["persone_cancellate"] != 1 || counts["versioni_residue"] != 0 {
		t.Fatalf("after the retention: %v, want one person erased and no version left", counts)
	}
	if n := versions(t, c.env.Store, "p/"+cfCosta); n != 0 {
		t.Fatalf("%d versions of the erased person's record left", n)
	}
	if hits := holding(t, c.env.Store, cfCosta, mailCosta); len(hits) > 0 {
		t.Fatalf("personal data of the erased person left:\n%s", strings.Join(hits, "\n"))
	}
	if hits := holding(t, c.env.Store, cfASC); len(hits) == 0 {
		t.Fatal("the other persons' data went too")
	}
	if _, err := c.env.Store.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
	service, err := pgp.ReadVerifierFile(filepath.Join(c.env.Config.Dir, "keys", "service.pub.asc"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := VerifyCheckpoint(cpData, service)
	if err != nil {
		t.Fatal(err)
	}
	_, hashes, err := c.env.Store.HistoryHashes(cp.Seq)
	if err != nil || hashes[cp.Seq] != cp.Hash {
		t.Fatalf("the checkpoint published before the erasure: %s, the chain holds %s (%v)", cp.Hash, hashes[cp.Seq], err)
	}
	es, err := c.env.Store.History(0, 0, func(e *store.Entry) bool { return e.Action == "persona.cancellata" })
	if err != nil || len(es) != 1 || !strings.HasPrefix(es[0].Key, store.PseudonymPrefix) || es[0].Actor != PuliziaPersoneActor {
		t.Fatalf("persona.cancellata entries = %+v, %v", es, err)
	}
}

// TestPersonWithACardLeftIsKept: past the retention, a person without
// utenze is kept while a card of his is not REVOCATA, and erased once it
// is.
func TestPersonWithACardLeftIsKept(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c := newPuliziaEnv(t, &now)
	err := c.env.Store.Update(func(tx *store.Tx) error {
		if err := tx.PutPerson(&domain.Person{CF: cfCosta, Card: "SC9", Updated: now}); err != nil {
			return err
		}
		return tx.InsertCard(&domain.SmartCard{Serial: "SC9", CF: cfCosta, ISTAT: "058091", State: domain.CardBloccata, Updated: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	now = now.AddDate(1, 0, 0)
	if counts, err := c.run(puliziaPersoneJob); err != nil || counts["persone_cancellate"] != 0 {
		t.Fatalf("with a BLOCCATA card: %v, %v; want nobody erased", counts, err)
	}
	err = c.env.Store.Update(func(tx *store.Tx) error {
		card, err := tx.Card("SC9")
		if err != nil {
			return err
		}
		return lifecycle.RevokeCard(tx, store.Source{Actor: "test"}, card, "prova")
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts, err := c.run(puliziaPersoneJob); err != nil || counts["persone_cancellate"] != 0 {
		t.Fatalf("the day of the revocation: %v, %v; want nobody erased (the retention starts again)", counts, err)
	}
	now = now.AddDate(0, 0, 181)
	if counts, err := c.run(puliziaPersoneJob); err != nil || counts["persone_cancellate"] != 1 {
		t.Fatalf("past the retention after the revocation: %v, %v; want one erased", counts, err)
	}
	err = c.env.Store.View(func(tx *store.Tx) error {
		card, err := tx.Card("SC9")
		if err != nil || !strings.HasPrefix(card.CF, store.PseudonymPrefix) || card.State != domain.CardRevocata {
			return fmt.Errorf("the revoked card = %+v, %v; want it kept under the pseudonym", card, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUtenzaLeftCancelledByAnOlderVersionIsRemovedAndStartsTheRetention:
// an utenza an older anprsec kept as CANCELLATA is removed by the next run
// (utenza.rimossa), and its person's retention counts from its
// cancellation, not from his record's older last change.
func TestUtenzaLeftCancelledByAnOlderVersionIsRemovedAndStartsTheRetention(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c := newPuliziaEnv(t, &now)
	err := c.env.Store.Update(func(tx *store.Tx) error {
		if err := tx.PutPerson(&domain.Person{CF: cfCosta, Updated: now.AddDate(-2, 0, 0)}); err != nil {
			return err
		}
		return tx.PutUtenza(&domain.Utenza{ISTAT: "058091", CF: cfCosta, Email: mailCosta, State: domain.UtenzaCancellata, Updated: now.AddDate(0, 0, -10)})
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := c.run(puliziaPersoneJob)
	if err != nil || counts["utenze_rimosse"] != 1 || counts["persone_cancellate"] != 0 {
		t.Fatalf("first run: %v, %v; want the utenza removed and the person kept", counts, err)
	}
	if n := versions(t, c.env.Store, "u/058091/"+cfCosta); n != 0 {
		t.Fatalf("%d versions of the CANCELLATA utenza left", n)
	}
	now = now.AddDate(0, 0, 171)
	if counts, err = c.run(puliziaPersoneJob); err != nil || counts["persone_cancellate"] != 1 {
		t.Fatalf("180 days after the cancellation: %v, %v; want the person erased", counts, err)
	}
	if hits := holding(t, c.env.Store, cfCosta, mailCosta); len(hits) > 0 {
		t.Fatalf("personal data left:\n%s", strings.Join(hits, "\n"))
	}
}
