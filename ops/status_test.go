package ops

import (
	"strings"
	"testing"
	"time"

	"anprsec/store"
)

// TestStatusHidesRecipientCFOfFailedWarning: /status lists a failed mail
// with its outbox ID but without its recipient's codice fiscale, even when
// the ID ends with it, as the ID of an expiry warning does
// ("avviso/<ISTAT>/<what>/<tag>/<CF>", jobs/scadenze.go). Status holds no
// secret and no codice fiscale (Status, FailedMail): codici fiscali appear
// only where an operator needs them.
func TestStatusHidesRecipientCFOfFailedWarning(t *testing.T) {
	st := openStore(t)
	const cf = "MRTMRA70A41H501K"
	err := st.Update(func(tx *store.Tx) error {
		// The ID exactly as queueWarnings builds it.
		return tx.PutMail(&store.Mail{ID: "avviso/058091/certificati/20261125-0a1b2c3d4e5f/" + cf, Kind: store.MailAvviso,
			CF: cf, ISTAT: "058091", To: "maria.martini@example.it", State: store.MailFailed,
			Queued: t0.Add(-time.Hour), Attempts: 1, LastError: "550 5.1.1 mailbox unavailable"})
	})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	s := newServer(t, st, &now, t0.Add(-time.Hour))
	code, body := get(t, s.Handler(), "/status")
	if code != 200 {
		t.Fatalf("/status = %d %s", code, body)
	}
	if strings.Contains(body, cf) {
		t.Errorf("/status shows the recipient's codice fiscale in a failed mail:\n%s", body)
	}
}
