package lifecycle

import (
	"errors"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/store"
)

// TestUndoWindowIsTheOneInForceAtTheRevocation: a revocation keeps the undo
// window of pki.revoke_grace when it was asked; a later change of the config
// neither shortens nor lengthens it. An undo asked once the revocation is
// final names when it was asked and when its window closed.
func TestUndoWindowIsTheOneInForceAtTheRevocation(t *testing.T) {
	st := openStore(t)
	const code = "058091-PC-0001"
	if err := st.Update(func(tx *store.Tx) error {
		return tx.PutPostazione(&domain.Postazione{Code: code, ISTAT: "058091", State: domain.CertAttivo})
	}); err != nil {
		t.Fatal(err)
	}
	src := store.Source{Actor: "t"}
	p, err := ChangePostazioneWithin(st, src, OpRevokePostazione, code, "furto", 24*time.Hour, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.UndoUntil.Sub(p.RevokedAt); got != 24*time.Hour {
		t.Fatalf("undo window recorded %s, want 24h", got)
	}
	// The config now says 0s: the revocation keeps its 24 hours.
	if RevokeFinal(p, 0, p.RevokedAt.Add(time.Hour)) {
		t.Error("a later pki.revoke_grace of 0s made the revocation final")
	}
	if !RevokeFinal(p, 0, p.RevokedAt.Add(25*time.Hour)) {
		t.Error("the revocation is not final after its window")
	}
	// Final: the undo names the dates.
	if err := st.Update(func(tx *store.Tx) error {
		p.State = domain.CertRevocato
		return tx.PutPostazione(p)
	}); err != nil {
		t.Fatal(err)
	}
	_, err = UndoRevocation(st, src, code, "per errore", time.Hour, time.UTC)
	var uw *UndoWindowError
	if !errors.As(err, &uw) || !uw.Until.Equal(p.UndoUntil) || !strings.Contains(err.Error(), p.UndoUntil.Format("02/01/2006 15:04")) {
		t.Errorf("undo of a final revocation: %v, want the dates of the window that closed at %s", err, p.UndoUntil)
	}
}
