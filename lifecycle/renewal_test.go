package lifecycle

import (
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/pki"
)

// TestPredecessorStatusFollowsTheOverlap: a certificate replaced by a
// renewal is good until the end of its overlap or the registered
// installation of its successor, whichever is first, then revoked with
// reason superseded from that instant; meanwhile it shares the hold of its
// postazione; a final revocation of the postazione before the end revokes
// it with the postazione's reason. The answer says when it changes by
// itself.
func TestPredecessorStatusFollowsTheOverlap(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	end := t0.Add(30 * 24 * time.Hour)
	installed := t0.Add(48 * time.Hour)
	for _, tc := range []struct {
		name      string
		state     domain.CertState
		installed time.Time
		revokedAt time.Time
		now       time.Time
		want      Revocation
		changes   time.Time
	}{
		{"inside the overlap", domain.CertAttivo, time.Time{}, time.Time{}, t0.Add(time.Hour), Revocation{}, end},
		{"at its end", domain.CertAttivo, time.Time{}, time.Time{}, end, Revocation{true, end, pki.ReasonSuperseded}, time.Time{}},
		{"successor installed", domain.CertAttivo, installed, time.Time{}, installed.Add(time.Second), Revocation{true, installed, pki.ReasonSuperseded}, time.Time{}},
		{"before the installation", domain.CertAttivo, installed, time.Time{}, installed.Add(-time.Second), Revocation{}, installed},
		{"postazione blocked", domain.CertBloccato, time.Time{}, time.Time{}, t0.Add(time.Hour), Revocation{true, t0, pki.ReasonCertificateHold}, end},
		{"blocked, overlap over", domain.CertBloccato, time.Time{}, time.Time{}, end.Add(time.Hour), Revocation{true, end, pki.ReasonSuperseded}, time.Time{}},
		{"postazione revoked first", domain.CertRevocato, time.Time{}, t0.Add(time.Hour), end.Add(time.Hour), Revocation{true, t0.Add(time.Hour), pki.ReasonKeyCompromise}, time.Time{}},
		{"postazione revoked after", domain.CertRevocato, time.Time{}, end.Add(time.Hour), end.Add(2 * time.Hour), Revocation{true, end, pki.ReasonSuperseded}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &domain.Postazione{Code: "058091-PC-0001", State: tc.state, Serial: "BB", HoldSince: t0, RevokedAt: tc.revokedAt,
				RevocationReason: pki.ReasonKeyCompromise, Updated: t0,
				Predecessors: []domain.PrevCert{{Serial: "AA", SupersededBy: "BB", Replaced: t0, OverlapUntil: end, InstalledAt: tc.installed}}}
			if tc.state == domain.CertRevocato {
				p.HoldSince = time.Time{}
			}
			got, changes, ok := RevocationOfSerial(p, "aa", tc.now)
			if !ok || got != tc.want || !changes.Equal(tc.changes) {
				t.Errorf("got %+v changing at %v (%v), want %+v changing at %v", got, changes, ok, tc.want, tc.changes)
			}
		})
	}
}

// TestSupersedeEndsAnEarlierOverlap: a second renewal issued while the
// first predecessor is still in its overlap ends that overlap at once, so
// that only the newest predecessor is valid beside the current certificate.
func TestSupersedeEndsAnEarlierOverlap(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	p := &domain.Postazione{Code: "058091-PC-0001", State: domain.CertAttivo, Serial: "AA",
		Renewal: &domain.RenewalRequest{Requested: t0, By: "RSSMRA80A01H501U", Motivo: "prima"}}
	Supersede(p, "BB", nil, t0.AddDate(5, 0, 0), t0, 24*time.Hour)
	p.Renewal = &domain.RenewalRequest{Requested: t0, By: "RSSMRA80A01H501U", Motivo: "seconda"}
	t1 := t0.Add(time.Hour)
	Supersede(p, "CC", nil, t1.AddDate(5, 0, 0), t1, 24*time.Hour)
	if p.Serial != "CC" || p.PrevSerial != "BB" || p.Renewal != nil || len(p.Predecessors) != 2 {
		t.Fatalf("after two renewals: %+v", p)
	}
	if r, _, _ := RevocationOfSerial(p, "AA", t1); !r.Revoked || r.Reason != pki.ReasonSuperseded || !r.At.Equal(t1) {
		t.Errorf("first predecessor: %+v, want superseded at the second issue", r)
	}
	if r, _, _ := RevocationOfSerial(p, "BB", t1); r.Revoked {
		t.Errorf("second predecessor: %+v, want good during its overlap", r)
	}
	if p.Predecessors[0].Motivo != "prima" || p.Predecessors[1].Motivo != "seconda" || p.Predecessors[1].SupersededBy != "CC" {
		t.Errorf("predecessors: %+v", p.Predecessors)
	}
}
