package jobs

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/export/bundle"
	"anprsec/lifecycle"
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
	wantAction := map[lifecycle.Op]string{lifecycle.OpBlockPostazione: "postazione.blocca",
		lifecycle.OpUnblockPostazione: "postazione.sblocca", lifecycle.OpRevokePostazione: "postazione.revoca"}
	c := newCertEnv(t)
	st := c.env.Store
	allowed := map[lifecycle.Op]map[domain.CertState]domain.CertState{
		lifecycle.OpBlockPostazione:   {domain.CertAttivo: domain.CertBloccato},
		lifecycle.OpUnblockPostazione: {domain.CertBloccato: domain.CertAttivo},
		lifecycle.OpRevokePostazione:  {domain.CertAttivo: domain.CertRevocaInCorso, domain.CertBloccato: domain.CertRevocaInCorso},
	}
	src := store.Source{Actor: "RSSMRA68A01H501Y"}
	n := 0
	for _, op := range []lifecycle.Op{lifecycle.OpBlockPostazione, lifecycle.OpUnblockPostazione, lifecycle.OpRevokePostazione} {
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
				p, err := lifecycle.ChangePostazione(st, src, op, strings.ToLower(code), motivo)
				es, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Key == code })
				var cur *domain.Postazione
				st.View(func(tx *store.Tx) error { cur, _ = tx.Postazione(code); return nil })
				to, ok := allowed[op][from]
				if !ok {
					var es2 *lifecycle.StateError
					if !errors.As(err, &es2) {
						t.Fatalf("error = %v, want *lifecycle.StateError", err)
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
				if len(es) != 1 || es[0].Actor != src.Actor || es[0].Detail != motivo || es[0].Action != wantAction[op] {
					t.Errorf("history = %+v", es)
				}
				switch op {
				case lifecycle.OpBlockPostazione:
					if cur.HoldSince.IsZero() {
						t.Error("HoldSince not set")
					}
				case lifecycle.OpUnblockPostazione:
					if !cur.HoldSince.IsZero() {
						t.Error("HoldSince still set")
					}
				case lifecycle.OpRevokePostazione:
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
	src := store.Source{Actor: lifecycle.BackOfficeActor}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpBlockPostazione, "058091-PC-0001", "  "); !errors.Is(err, lifecycle.ErrMotivo) {
		t.Errorf("empty motivo: %v", err)
	}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpBlockPostazione, "058091-PC-0099", "prova"); !errors.Is(err, lifecycle.ErrUnknownPostazione) || !strings.Contains(err.Error(), "058091-PC-0099") {
		t.Errorf("unknown code: %v", err)
	}
	if _, err := lifecycle.ChangePostazione(st, store.Source{}, lifecycle.OpBlockPostazione, "058091-PC-0001", "prova"); err == nil {
		t.Error("no actor accepted")
	}
	if _, err := lifecycle.ChangePostazione(st, src, "cancella", "058091-PC-0001", "prova"); err == nil {
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
	c.env.Config.PKI.RevokeGrace = 0 // no undo window
	st := c.env.Store
	st.Update(func(tx *store.Tx) error {
		tx.PutComune(&domain.Comune{ISTAT: "058091", Name: "Roma", Province: "058"})
		tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0001", ISTAT: "058091", State: domain.CertAttivo, Serial: "AB"})
		return tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0002", ISTAT: "058091", State: domain.CertBloccato, Serial: "CD"})
	})
	src := store.Source{Actor: lifecycle.BackOfficeActor}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpRevokePostazione, "058091-PC-0001", "furto"); err != nil {
		t.Fatal(err)
	}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpRevokePostazione, "058091-PC-0002", "prova"); err != nil {
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
	for _, op := range []lifecycle.Op{lifecycle.OpBlockPostazione, lifecycle.OpUnblockPostazione, lifecycle.OpRevokePostazione} {
		if _, err := lifecycle.ChangePostazione(st, src, op, "058091-PC-0001", "ripensamento"); err == nil {
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

// TestRevokeGrace: the certificati batch makes REVOCATA IN LAVORAZIONE
// final only once pki.revoke_grace has passed since the request, and
// lifecycle.UndoRevocation brings it back to the state before the revoke only inside
// that window.
func TestRevokeGrace(t *testing.T) {
	const grace = time.Hour
	now := time.Now().UTC()
	for _, tc := range []struct {
		name      string
		prev      domain.CertState
		revokedAt time.Time
		final     bool // the batch makes it REVOCATO
	}{
		{"just revoked", domain.CertAttivo, now, false},
		{"inside window", domain.CertBloccato, now.Add(-grace + 5*time.Minute), false},
		{"window over", domain.CertAttivo, now.Add(-grace - time.Minute), true},
		{"long ago", domain.CertBloccato, now.Add(-48 * time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, action := range []string{"batch", "annulla"} {
				t.Run(action, func(t *testing.T) {
					c := newCertEnv(t)
					c.env.Config.PKI.RevokeGrace = grace
					st := c.env.Store
					code := "058091-PC-0001"
					p0 := &domain.Postazione{Code: code, ISTAT: "058091", State: domain.CertRevocaInCorso, PrevState: tc.prev,
						Serial: "AB", RevokedAt: tc.revokedAt, RevocationReason: pki.ReasonKeyCompromise, Reason: "furto"}
					if tc.prev == domain.CertBloccato {
						p0.HoldSince = tc.revokedAt.Add(-time.Hour)
					}
					if err := st.Update(func(tx *store.Tx) error { return tx.PutPostazione(p0) }); err != nil {
						t.Fatal(err)
					}
					switch action {
					case "batch":
						if err := completeRevocations(c.env, &Run{Counts: map[string]int{}}); err != nil {
							t.Fatal(err)
						}
						p := c.postazioni()[code]
						want := domain.CertRevocaInCorso
						if tc.final {
							want = domain.CertRevocato
						}
						if p.State != want {
							t.Errorf("after the batch: %s, want %s", p.State, want)
						}
					case "annulla":
						p, err := lifecycle.UndoRevocation(st, store.Source{Actor: lifecycle.BackOfficeActor}, code, "per errore", grace, time.UTC)
						if tc.final {
							var ef *lifecycle.UndoWindowError
							if !errors.As(err, &ef) || !strings.Contains(err.Error(), code) || !strings.Contains(err.Error(), "non può più essere annullata") {
								t.Fatalf("error = %v, want *lifecycle.UndoWindowError naming %s", err, code)
							}
							if cur := c.postazioni()[code]; cur.State != domain.CertRevocaInCorso {
								t.Errorf("refused annulla-revoca changed the state to %s", cur.State)
							}
							es, _ := st.History(0, 0, nil)
							if len(es) != 0 {
								t.Errorf("refused annulla-revoca wrote %d history entries", len(es))
							}
							return
						}
						if err != nil {
							t.Fatal(err)
						}
						cur := c.postazioni()[code]
						if p.State != tc.prev || cur.State != tc.prev || !cur.RevokedAt.IsZero() || cur.RevocationReason != 0 || cur.PrevState != "" {
							t.Errorf("after annulla-revoca: %+v, want state %s and no revocation", cur, tc.prev)
						}
						if (tc.prev == domain.CertBloccato) == cur.HoldSince.IsZero() {
							t.Errorf("HoldSince = %v for %s", cur.HoldSince, tc.prev)
						}
						es, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Key == code })
						if len(es) != 1 || es[0].Action != "postazione.annulla-revoca" || es[0].Detail != "per errore" {
							t.Errorf("history = %+v", es)
						}
						// The batch leaves it alone now.
						if err := completeRevocations(c.env, &Run{Counts: map[string]int{}}); err != nil {
							t.Fatal(err)
						}
						if cur := c.postazioni()[code]; cur.State != tc.prev {
							t.Errorf("after the batch: %s", cur.State)
						}
					}
				})
			}
		})
	}
}

// TestAnnullaRevocaFlow: revoke records the previous state; annulla-revoca
// restores it; it is refused in any state but REVOCATA IN LAVORAZIONE; the
// CRL follows.
func TestAnnullaRevocaFlow(t *testing.T) {
	c := newCertEnv(t)
	st := c.env.Store
	st.Update(func(tx *store.Tx) error {
		tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0001", ISTAT: "058091", State: domain.CertAttivo, Serial: "AB"})
		return tx.PutPostazione(&domain.Postazione{Code: "058091-PC-0002", ISTAT: "058091", State: domain.CertAttivo, Serial: "CD"})
	})
	src := store.Source{Actor: lifecycle.BackOfficeActor}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpBlockPostazione, "058091-PC-0002", "sospetto"); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"058091-PC-0001", "058091-PC-0002"} {
		p, err := lifecycle.ChangePostazione(st, src, lifecycle.OpRevokePostazione, code, "furto")
		if err != nil {
			t.Fatal(err)
		}
		if p.PrevState == "" {
			t.Errorf("%s: PrevState not recorded", code)
		}
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	if r := reasons(c.crlOf()); len(r) != 2 || r["AB"] != pki.ReasonCertificateHold || r["CD"] != pki.ReasonCertificateHold {
		t.Errorf("CRL with two revocations pending = %v", r)
	}
	for code, want := range map[string]domain.CertState{"058091-PC-0001": domain.CertAttivo, "058091-PC-0002": domain.CertBloccato} {
		p, err := lifecycle.UndoRevocation(st, src, code, "per errore", time.Hour, nil)
		if err != nil || p.State != want {
			t.Fatalf("annulla-revoca %s: %v, %v; want %s", code, p, err, want)
		}
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	if r := reasons(c.crlOf()); len(r) != 1 || r["CD"] != pki.ReasonCertificateHold {
		t.Errorf("CRL after annulla-revoca = %v, want only CD on hold", r)
	}
	var es *lifecycle.StateError
	if _, err := lifecycle.UndoRevocation(st, src, "058091-PC-0001", "ancora", time.Hour, nil); !errors.As(err, &es) ||
		!strings.Contains(err.Error(), "058091-PC-0001 è nello stato ATTIVO") || !strings.Contains(err.Error(), "REVOCATA IN LAVORAZIONE") {
		t.Errorf("annulla-revoca of an ATTIVO: %v", err)
	}
	if _, err := lifecycle.UndoRevocation(st, src, "058091-PC-0001", " ", time.Hour, nil); !errors.Is(err, lifecycle.ErrMotivo) {
		t.Errorf("empty motivo: %v", err)
	}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpUndoRevocation, "058091-PC-0001", "x"); err == nil {
		t.Error("ChangePostazione accepted annulla-revoca without a window")
	}
}

func TestParseCertState(t *testing.T) {
	for _, s := range allCertStates {
		got, err := lifecycle.ParseCertState(" " + strings.ToLower(string(s)) + " ")
		if err != nil || got != s {
			t.Errorf("ParseCertState(%q) = %q, %v", s, got, err)
		}
	}
	_, err := lifecycle.ParseCertState("ATTIVA")
	if err == nil || !strings.Contains(err.Error(), `"ATTIVA"`) || !strings.Contains(err.Error(), "REVOCATA IN LAVORAZIONE, REVOCATO, SCADUTO") {
		t.Errorf("ParseCertState(ATTIVA) = %v", err)
	}
}

func TestPostazioniOf(t *testing.T) {
	c := newCertEnv(t)
	st := c.env.Store
	st.Update(func(tx *store.Tx) error {
		tx.PutComune(&domain.Comune{ISTAT: "058091", Name: "Roma", Province: "058"})
		tx.PutComune(&domain.Comune{ISTAT: "001272", Name: "Torino", Province: "001"})
		for i, s := range []domain.CertState{domain.CertBloccato, domain.CertAttivo, domain.CertAttivo} {
			tx.PutPostazione(&domain.Postazione{Code: domain.WorkstationCode("058091", 3-i), ISTAT: "058091", State: s})
		}
		return tx.PutPostazione(&domain.Postazione{Code: "001272-PC-0001", ISTAT: "001272", State: domain.CertAttivo})
	})
	for _, tc := range []struct {
		istat string
		state domain.CertState
		want  string
		err   string
	}{
		{"058091", "", "058091-PC-0001,058091-PC-0002,058091-PC-0003", ""},
		{"058091", domain.CertAttivo, "058091-PC-0001,058091-PC-0002", ""},
		{"058091", domain.CertRevocato, "", ""},
		{"001272", "", "001272-PC-0001", ""},
		{"099999", "", "", "comune sconosciuto: 099999"},
	} {
		var ps []*domain.Postazione
		err := st.View(func(tx *store.Tx) (err error) { ps, err = lifecycle.PostazioniOf(tx, tc.istat, tc.state); return err })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, lifecycle.ErrUnknownComune) {
				t.Errorf("%s: error %v, want %q", tc.istat, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, p := range ps {
			codes = append(codes, p.Code)
		}
		if got := strings.Join(codes, ","); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.istat, tc.state, got, tc.want)
		}
	}
}

// TestBundleComune: "Scarica tutti" writes a ZIP in the format of the job's
// bundles (checked by checkZip: members, CRCs, password.txt), mode 0600,
// whose passwords are the sealed ones and open the P12s; a state filter
// leaves out the other certificates; no certificate is an error and no file.
func TestBundleComune(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	st := c.env.Store
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	path, n, err := bundle.WriteComune(context.Background(), st, c.env.Sealer, "058091", "", dir, now, c.env.Loc)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || filepath.Base(path) != "058091-certificati-20260301-103000.zip" {
		t.Errorf("path %s, %d certificates", path, n)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v %v", fi.Mode(), err)
	}
	pws, p12s := c.checkZip(path)
	for code, p := range c.postazioni() {
		pw, err := c.env.Sealer.Open(p.PasswordSealed, domain.PasswordSealContext(code))
		if err != nil || string(pw) != pws[code] {
			t.Errorf("%s: password.txt %q, sealed %q (%v)", code, pws[code], pw, err)
		}
		p12, err := c.env.Sealer.Open(p.P12Sealed, domain.P12SealContext(code))
		if err != nil || !bytes.Equal(p12, p12s[code]) {
			t.Errorf("%s: the P12 in the ZIP is not the sealed one (%v)", code, err)
		}
	}
	openSSLCheck(t, pws, p12s)

	// A second download in the same second keeps the first one.
	second, _, err := bundle.WriteComune(context.Background(), st, c.env.Sealer, "058091", "", dir, now, c.env.Loc)
	if err != nil || filepath.Base(second) != "058091-certificati-20260301-103000-2.zip" {
		t.Errorf("second bundle of the same second: %s, %v", second, err)
	}
	if all, _ := filepath.Glob(filepath.Join(dir, "*")); len(all) != 2 {
		t.Errorf("folder holds %v, want the two bundles", all)
	}
	c.checkZip(path)

	// Only the ATTIVO ones once one is blocked; the BLOCCATO one alone.
	if _, err := lifecycle.ChangePostazione(st, store.Source{Actor: lifecycle.BackOfficeActor}, lifecycle.OpBlockPostazione, "058091-PC-0002", "prova"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		state domain.CertState
		want  string
	}{
		{domain.CertAttivo, "058091-CO-9999.p12,058091-PC-0001.p12,058091-PC-0003.p12,password.txt"},
		{domain.CertBloccato, "058091-PC-0002.p12,password.txt"},
	} {
		d := t.TempDir()
		path, _, err := bundle.WriteComune(context.Background(), st, c.env.Sealer, "058091", tc.state, d, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("%s: members %s, want %s", tc.state, got, tc.want)
		}
		if ents, _ := os.ReadDir(d); len(ents) != 1 {
			t.Errorf("%s: %d files in the folder, want the ZIP alone", tc.state, len(ents))
		}
	}

	// Nothing to download: an error, no file.
	d := t.TempDir()
	if _, _, err := bundle.WriteComune(context.Background(), st, c.env.Sealer, "058091", domain.CertScaduto, d, now, nil); !errors.Is(err, bundle.ErrNoCertificate) ||
		!strings.Contains(err.Error(), "058091") || !strings.Contains(err.Error(), "SCADUTO") {
		t.Errorf("no certificate: %v", err)
	}
	if _, _, err := bundle.WriteComune(context.Background(), st, c.env.Sealer, "099999", "", d, now, nil); !errors.Is(err, lifecycle.ErrUnknownComune) {
		t.Errorf("unknown comune: %v", err)
	}
	if _, _, err := bundle.WriteComune(context.Background(), st, nil, "058091", "", d, now, nil); err == nil {
		t.Error("no sealer accepted")
	}
	if ents, _ := os.ReadDir(d); len(ents) != 0 {
		t.Errorf("refused bundles left %d files", len(ents))
	}
}
