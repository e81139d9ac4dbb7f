package jobs

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/export/audit"
	"anprsec/export/bundle"
	"anprsec/ingest/esito"
	"anprsec/ingest/richieste"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

// clock is a settable clock for the store (tx.Now).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const renewCode = "058091-PC-0001"

// renewEnv is a certEnv on a settable clock with the fixture's
// certificates issued.
func renewEnv(t *testing.T) (*certEnv, *clock) {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	c := newCertEnvAt(t, clk.now)
	c.census()
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	return c, clk
}

// readZip returns the passwords and PKCS#12 files of a bundle by code.
func (c *certEnv) readZip(path string) (map[string]string, map[string][]byte) {
	c.t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer zr.Close()
	pws, p12s := map[string]string{}, map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			c.t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		if f.Name != bundle.PasswordFile {
			p12s[strings.TrimSuffix(f.Name, ".p12")] = b
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			code, pw, _ := strings.Cut(line, ";")
			pws[code] = pw
		}
	}
	return pws, p12s
}

// p12Serial opens the sealed PKCS#12 of p and returns its certificate's
// serial.
func (c *certEnv) p12Serial(p12 []byte, pw string) string {
	c.t.Helper()
	_, cert, _, err := pkcs12.DecodeChain(p12, pw)
	if err != nil {
		c.t.Fatal(err)
	}
	return fmt.Sprintf("%X", cert.SerialNumber)
}

// TestRenewalReplacesTheCertificateAndSupersedesThePredecessorAfterTheOverlap:
// a renewal asked by the back-office is issued by the next certificati
// batch with the same code; the new certificate is the current one (the
// published ZIP and "Scarica tutti" hold it), the old one is its
// predecessor, valid and out of the CRL during the overlap; once the
// overlap is over the batch records it superseded and the CRL lists it
// with reason superseded. Further batches issue nothing more.
func TestRenewalReplacesTheCertificateAndSupersedesThePredecessorAfterTheOverlap(t *testing.T) {
	c, clk := renewEnv(t)
	st := c.env.Store
	overlap := c.env.Config.PKI.RenewOverlap
	if overlap != 30*24*time.Hour {
		t.Fatalf("default pki.renew_overlap = %s, want 720h", overlap)
	}
	old := c.postazioni()[renewCode]
	src := store.Source{Actor: lifecycle.BackOfficeOperator("op")}
	if _, err := lifecycle.RequestRenewal(st, src, renewCode, ""); !errors.Is(err, lifecycle.ErrMotivo) {
		t.Errorf("renewal without motivo: %v", err)
	}
	p, err := lifecycle.RequestRenewal(st, src, renewCode, "scadenza vicina")
	if err != nil {
		t.Fatal(err)
	}
	if p.Renewal == nil || p.State != domain.CertAttivo || p.Serial != old.Serial {
		t.Fatalf("after the request: %+v", p)
	}
	if _, err := lifecycle.RequestRenewal(st, src, renewCode, "ancora"); !errors.Is(err, lifecycle.ErrRenewalPending) {
		t.Errorf("second request: %v, want ErrRenewalPending", err)
	}
	zipsBefore := len(c.zips())
	clk.add(time.Minute)
	counts, err := c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["issued"] != 1 || counts["bundles"] != 1 {
		t.Errorf("counts = %v, want 1 issued, 1 bundle", counts)
	}
	cur := c.postazioni()[renewCode]
	if cur.Serial == old.Serial || cur.State != domain.CertAttivo || cur.Renewal != nil || cur.PrevSerial != old.Serial {
		t.Fatalf("after the batch: serial %s (was %s), state %s, renewal %v, prev %s", cur.Serial, old.Serial, cur.State, cur.Renewal, cur.PrevSerial)
	}
	if len(cur.Predecessors) != 1 {
		t.Fatalf("predecessors = %+v", cur.Predecessors)
	}
	pc := cur.Predecessors[0]
	if pc.Serial != old.Serial || pc.SupersededBy != cur.Serial || !pc.OverlapUntil.Equal(clk.now().Add(overlap)) ||
		pc.Motivo != "scadenza vicina" || !pc.Final.IsZero() || pc.NotBefore.IsZero() {
		t.Errorf("predecessor = %+v", pc)
	}
	// The new ZIP holds the new certificate of the code, and only it.
	z := c.zips()
	if len(z) != zipsBefore+1 {
		t.Fatalf("zips = %v", z)
	}
	pws, p12s := c.readZip(z[len(z)-1])
	if len(p12s) != 1 || c.p12Serial(p12s[renewCode], pws[renewCode]) != cur.Serial {
		t.Errorf("the renewal's ZIP holds %d certificates, not the new %s", len(p12s), cur.Serial)
	}
	path, _, err := bundle.WriteComune(context.Background(), st, c.env.Sealer, "058091", domain.CertAttivo, t.TempDir(), clk.now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pws, p12s = c.checkZip(path)
	if len(p12s) != 4 || c.p12Serial(p12s[renewCode], pws[renewCode]) != cur.Serial {
		t.Errorf("Scarica tutti: %d certificates, %s not the new one", len(p12s), renewCode)
	}
	// During the overlap both are valid: the CRL lists neither.
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	if r := reasons(c.crlOf()); len(r) != 0 {
		t.Errorf("CRL during the overlap: %v", r)
	}
	clk.add(overlap - 2*time.Minute)
	if counts, _ := c.run(certificatiJob); counts["superseded"] != 0 {
		t.Errorf("superseded before the end of the overlap: %v", counts)
	}
	// The overlap is over: superseded, in the CRL, recorded once.
	clk.add(2 * time.Minute)
	counts, err = c.run(certificatiJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["superseded"] != 1 || counts["issued"] != 0 {
		t.Errorf("counts after the overlap = %v", counts)
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	r := reasons(c.crlOf())
	if len(r) != 1 || r[old.Serial] != pki.ReasonSuperseded {
		t.Errorf("CRL after the overlap: %v, want %s superseded", r, old.Serial)
	}
	for _, e := range c.crlOf().RevokedCertificateEntries {
		if !e.RevocationTime.Equal(pc.OverlapUntil.Truncate(time.Second)) {
			t.Errorf("revocation time %v, want the end of the overlap %v", e.RevocationTime, pc.OverlapUntil)
		}
	}
	if text := c.openSSLCRL(t); text != "" && !strings.Contains(text, "Superseded") {
		t.Errorf("openssl does not read the reason superseded:\n%s", text)
	}
	// Nothing more is issued, nothing recorded twice.
	clk.add(time.Hour)
	for range 2 {
		if counts, err := c.run(certificatiJob); err != nil || counts["issued"] != 0 || counts["superseded"] != 0 {
			t.Errorf("later batch: %v, %v", counts, err)
		}
	}
	final := c.postazioni()[renewCode]
	if final.Serial != cur.Serial || len(final.Predecessors) != 1 || final.Predecessors[0].Final.IsZero() {
		t.Errorf("final: %+v", final)
	}
	es, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Key == renewCode })
	var actions []string
	for _, e := range es {
		if e.Action != "postazione.primo-certificato" { // the comune's first certificate, to its sindaco
			actions = append(actions, e.Action)
		}
	}
	if got := strings.Join(actions, ","); got != "postazione.richiesta,postazione.attiva,postazione.rinnovo-richiesto,postazione.rinnovata,postazione.sostituita" {
		t.Errorf("history of %s: %s", renewCode, got)
	}
	if _, err := st.VerifyHistory(); err != nil {
		t.Error(err)
	}
}

// TestRenewalIsRefusedOutsideATTIVOAndDroppedByARevoke: a blocked,
// pending or revoked certificate is not renewed; a revoke drops a pending
// renewal, so the batch issues nothing for it.
func TestRenewalIsRefusedOutsideATTIVOAndDroppedByARevoke(t *testing.T) {
	c, _ := renewEnv(t)
	st := c.env.Store
	src := store.Source{Actor: "op"}
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpBlockPostazione, "058091-PC-0002", "verifica"); err != nil {
		t.Fatal(err)
	}
	var se *lifecycle.StateError
	if _, err := lifecycle.RequestRenewal(st, src, "058091-PC-0002", "rinnovo"); !errors.As(err, &se) {
		t.Errorf("renewal of a BLOCCATO certificate: %v", err)
	}
	if _, err := lifecycle.RequestRenewal(st, src, "058091-PC-9998", "rinnovo"); !errors.Is(err, lifecycle.ErrUnknownPostazione) {
		t.Errorf("renewal of an unknown code: %v", err)
	}
	if _, err := lifecycle.RequestRenewal(st, src, renewCode, "rinnovo"); err != nil {
		t.Fatal(err)
	}
	p, err := lifecycle.ChangePostazione(st, src, lifecycle.OpRevokePostazione, renewCode, "furto")
	if err != nil {
		t.Fatal(err)
	}
	if p.Renewal != nil {
		t.Error("the revoke kept the pending renewal")
	}
	serial := p.Serial
	if counts, err := c.run(certificatiJob); err != nil || counts["issued"] != 0 {
		t.Errorf("batch after the revoke: %v, %v", counts, err)
	}
	if cur := c.postazioni()[renewCode]; cur.Serial != serial || len(cur.Predecessors) != 0 {
		t.Errorf("a revoked postazione was renewed: %+v", cur)
	}
}

// TestRenewalCrashesIssueNoThirdCertificate: a batch that stops before its
// commit (cancelled while issuing) leaves the renewal pending and the next
// one issues it once; a batch that stops after its commit (the ZIP not
// written) leaves a pending bundle, and the next one publishes the same
// certificate without issuing another. Either way the code has its old
// certificate and exactly one successor.
func TestRenewalCrashesIssueNoThirdCertificate(t *testing.T) {
	c, _ := renewEnv(t)
	st := c.env.Store
	old := c.postazioni()[renewCode]
	if _, err := lifecycle.RequestRenewal(st, store.Source{Actor: "op"}, renewCode, "rinnovo"); err != nil {
		t.Fatal(err)
	}
	// Stopped before the commit.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &Run{ID: "t", Log: discardLog(), Counts: map[string]int{}}
	if err := certificatiJob.Run(ctx, c.env, r); err == nil {
		t.Fatal("a cancelled batch reported success")
	}
	if p := c.postazioni()[renewCode]; p.Serial != old.Serial || p.Renewal == nil || len(p.Predecessors) != 0 {
		t.Fatalf("a batch stopped before its commit changed the postazione: %+v", p)
	}
	// Stopped after the commit, before the publication.
	c.fd.fails.Store(1)
	counts, err := c.run(certificatiJob)
	if err == nil || counts["issued"] != 1 {
		t.Fatalf("run = %v, %v; want 1 issued and the simulated crash", counts, err)
	}
	mid := c.postazioni()[renewCode]
	counts, err = c.run(certificatiJob)
	if err != nil || counts["issued"] != 0 || counts["bundles"] != 1 {
		t.Fatalf("recovery = %v, %v; want 0 issued, 1 bundle", counts, err)
	}
	end := c.postazioni()[renewCode]
	if end.Serial != mid.Serial || end.Serial == old.Serial || len(end.Predecessors) != 1 || end.Predecessors[0].Serial != old.Serial {
		t.Errorf("after the recovery: serial %s (committed %s, old %s), predecessors %+v", end.Serial, mid.Serial, old.Serial, end.Predecessors)
	}
	z := c.zips()
	pws, p12s := c.readZip(z[len(z)-1])
	if c.p12Serial(p12s[renewCode], pws[renewCode]) != end.Serial {
		t.Error("the republished ZIP does not hold the committed certificate")
	}
	es, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Action == "postazione.rinnovata" })
	if len(es) != 1 {
		t.Errorf("%d renewals recorded, want 1", len(es))
	}
}

// TestSuccessorInstallationEndsTheOverlap: registering the installation of
// the new certificate revokes its predecessor at once (superseded), before
// the overlap is over; the register keeps the record, each change in the
// history; an edit of the record alone is found by VerifyInstallations.
func TestSuccessorInstallationEndsTheOverlap(t *testing.T) {
	c, clk := renewEnv(t)
	st := c.env.Store
	old := c.postazioni()[renewCode]
	alp := store.Source{Actor: "RSSMRA80A01H501U"}
	if _, err := lifecycle.RequestRenewal(st, alp, renewCode, "rinnovo"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	cur := c.postazioni()[renewCode]
	register := func(req lifecycle.InstallationRequest) (*store.Installation, bool, *lifecycle.Refusal) {
		t.Helper()
		var in *store.Installation
		var crl bool
		var ref *lifecycle.Refusal
		if err := st.Update(func(tx *store.Tx) error {
			var err error
			in, crl, ref, err = lifecycle.RegisterInstallationTx(tx, alp, req)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return in, crl, ref
	}
	// The old certificate's installation first: no effect on the overlap.
	clk.add(time.Hour)
	if _, crl, ref := register(lifecycle.InstallationRequest{ISTAT: "058091", Code: renewCode, Serial: old.Serial, Host: "PC-ANAGRAFE-01", Address: "10.0.0.11", Office: "Anagrafe"}); ref != nil || crl {
		t.Fatalf("old certificate's installation: %v, crl %v", ref, crl)
	}
	if _, _, ref := register(lifecycle.InstallationRequest{ISTAT: "058092", Code: renewCode, Host: "x"}); ref == nil || ref.Code != "ALTRO_COMUNE" {
		t.Errorf("another comune's postazione: %v", ref)
	}
	if _, _, ref := register(lifecycle.InstallationRequest{ISTAT: "058091", Code: renewCode, Serial: "ABCDEF", Host: "x"}); ref == nil || ref.Code != "SERIALE_SCONOSCIUTO" {
		t.Errorf("a serial of no certificate of the code: %v", ref)
	}
	if _, _, ref := register(lifecycle.InstallationRequest{ISTAT: "058091", Code: renewCode}); ref == nil || ref.Code != "CAMPO_MANCANTE" {
		t.Errorf("no host: %v", ref)
	}
	// The successor's installation (serial empty: the current one).
	clk.add(time.Hour)
	at := clk.now()
	in, crl, ref := register(lifecycle.InstallationRequest{ISTAT: "058091", Code: renewCode, Host: "PC-ANAGRAFE-01", Address: "10.0.0.11", Office: "Anagrafe", Note: "sostituito il certificato"})
	if ref != nil || !crl || in.Serial != cur.Serial {
		t.Fatalf("successor's installation: %+v, crl %v, %v", in, crl, ref)
	}
	p := c.postazioni()[renewCode]
	pc := p.Predecessors[0]
	if !pc.InstalledAt.Equal(at) || !pc.Final.Equal(at) || !pc.SupersededAt().Equal(at) {
		t.Errorf("predecessor after the installation: %+v", pc)
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	if r := reasons(c.crlOf()); len(r) != 1 || r[old.Serial] != pki.ReasonSuperseded {
		t.Errorf("CRL after the installation: %v", r)
	}
	// Registering the old one now is refused: it is revoked.
	if _, _, ref := register(lifecycle.InstallationRequest{ISTAT: "058091", Code: renewCode, Serial: old.Serial, Host: "x"}); ref == nil || ref.Code != "CERTIFICATO_REVOCATO" {
		t.Errorf("a superseded certificate: %v", ref)
	}
	// A change: the PC moves office.
	clk.add(time.Hour)
	if _, crl, ref := register(lifecycle.InstallationRequest{ISTAT: "058091", Code: renewCode, Serial: cur.Serial, Host: "PC-ANAGRAFE-01", Address: "10.0.0.12", Office: "Stato civile"}); ref != nil || crl {
		t.Fatalf("change: %v, crl %v", ref, crl)
	}
	var ins []*store.Installation
	st.View(func(tx *store.Tx) error { ins, _ = lifecycle.InstallationsOf(tx, "058091"); return nil })
	if len(ins) != 2 {
		t.Fatalf("register = %+v", ins)
	}
	if ins[0].Serial != cur.Serial {
		ins[0], ins[1] = ins[1], ins[0]
	}
	if ins[0].Serial != cur.Serial || ins[0].Office != "Stato civile" || ins[0].Note != "" || !ins[0].Created.Equal(at) || ins[1].Serial != old.Serial {
		t.Errorf("register = %+v, %+v", ins[0], ins[1])
	}
	es, _ := st.History(0, 0, func(e *store.Entry) bool { return e.Kind == store.InstallationKind })
	if len(es) != 3 || es[2].Detail != ins[0].Detail() || es[2].Actor != alp.Actor {
		t.Errorf("register history = %+v", es)
	}
	// The comune's audit export carries the register.
	out := t.TempDir()
	target, err := drop.NewLocal(out)
	if err != nil {
		t.Fatal(err)
	}
	e := &audit.Exporter{Store: st, Target: target, Flat: true, TempDir: t.TempDir(), Location: c.env.Loc, Now: clk.now}
	files, err := e.Comune(context.Background(), "058091")
	if err != nil || files.Installazioni != 2 {
		t.Fatalf("comune export: %+v, %v", files, err)
	}
	data, err := os.ReadFile(filepath.Join(out, files.InstallationsCSV))
	if err != nil {
		t.Fatal(err)
	}
	loc := c.env.Loc
	wantLine := strings.Join([]string{renewCode, cur.Serial, "PC-ANAGRAFE-01", "10.0.0.12", "Stato civile", "", alp.Actor,
		at.In(loc).Format("02/01/2006 15:04:05"), ins[0].Updated.In(loc).Format("02/01/2006 15:04:05")}, ";") + "\r\n"
	if !strings.Contains(string(data), "Codice postazione;Seriale certificato;Nome host;Indirizzo;Ufficio;Note;Registrata da;Prima registrazione;Ultima modifica\r\n") ||
		!strings.Contains(string(data), wantLine) {
		t.Errorf("installazioni CSV:\n%s\nwant the line %q", data, wantLine)
	}
	if n, err := st.VerifyInstallations(); err != nil || n != 2 {
		t.Fatalf("VerifyInstallations = %d, %v", n, err)
	}
	// Someone with the store key edits a record without the history.
	if err := st.Update(func(tx *store.Tx) error {
		x := *ins[0]
		x.Host = "PC-ALTRO"
		return tx.PutInstallation(&x)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.VerifyInstallations(); !errors.Is(err, store.ErrRegisterAltered) || !strings.Contains(err.Error(), renewCode+"/"+cur.Serial) {
		t.Errorf("edited record: %v", err)
	}
}

// TestPredecessorSharesTheHoldOfItsPostazioneDuringTheOverlap: a block
// puts both certificates of the code on hold; a final revocation inside
// the overlap revokes the predecessor with the postazione's reason.
func TestPredecessorSharesTheHoldOfItsPostazioneDuringTheOverlap(t *testing.T) {
	c, _ := renewEnv(t)
	st := c.env.Store
	c.env.Config.PKI.RevokeGrace = 0
	old := c.postazioni()[renewCode]
	src := store.Source{Actor: "op"}
	if _, err := lifecycle.RequestRenewal(st, src, renewCode, "rinnovo"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	cur := c.postazioni()[renewCode]
	if _, err := lifecycle.ChangePostazione(st, src, lifecycle.OpBlockPostazione, renewCode, "verifica"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	if r := reasons(c.crlOf()); len(r) != 2 || r[old.Serial] != pki.ReasonCertificateHold || r[cur.Serial] != pki.ReasonCertificateHold {
		t.Errorf("CRL with the postazione blocked: %v", r)
	}
	if _, err := lifecycle.ChangePostazioneWithin(st, src, lifecycle.OpRevokePostazione, renewCode, "furto", 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(certificatiJob); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(crlJob); err != nil {
		t.Fatal(err)
	}
	if r := reasons(c.crlOf()); len(r) != 2 || r[old.Serial] != pki.ReasonKeyCompromise || r[cur.Serial] != pki.ReasonKeyCompromise {
		t.Errorf("CRL with the postazione revoked: %v", r)
	}
}

// TestRenewalAndRegisterRequestsStayInTheirComune: RINNOVA_POSTAZIONE and
// REGISTRA_INSTALLAZIONE from the console: the ALP of the comune renews
// and registers its own postazione; the ALP of another comune can do
// neither, from his folder (the postazione is not his comune's) nor from
// this comune's (he has no utenza here); an ALS of the comune may not
// (profile). Refusals change nothing.
func TestRenewalAndRegisterRequestsStayInTheirComune(t *testing.T) {
	c := newCertEnv(t)
	matrixStore(t, c, matrixPeople)
	pcA := domain.WorkstationCode(comA, 1)
	renew := func(op string) ([]string, []string) {
		return []string{richieste.ColOperazione, richieste.ColOperatore, richieste.ColCodice, richieste.ColMotivo},
			[]string{"RINNOVA_POSTAZIONE", op, pcA, "scadenza"}
	}
	reg := func(op string) ([]string, []string) {
		return []string{richieste.ColOperazione, richieste.ColOperatore, richieste.ColCodice, richieste.ColHost, richieste.ColUfficio},
			[]string{"REGISTRA_INSTALLAZIONE", op, pcA, "PC-1", "Anagrafe"}
	}
	for _, tc := range []struct {
		name, folder, op string
		want             string
	}{
		{"ALP of B from B's folder", comB, opALPOther, "ALTRO_COMUNE"},
		{"ALP of B from A's folder", comA, opALPOther, "OPERATORE_SCONOSCIUTO"},
		{"ALS of A", comA, opALS, "NON_AUTORIZZATO"},
		{"ASC of A", comA, opASC, "NON_AUTORIZZATO"},
	} {
		for name, row := range map[string]func(string) ([]string, []string){"rinnova": renew, "registra": reg} {
			cols, vals := row(tc.op)
			if line := applyRow(t, c, tc.folder, cols, vals); line.Outcome != esito.Scartato || line.Code != tc.want {
				t.Errorf("%s, %s: %s %s %q, want %s", tc.name, name, line.Outcome, line.Code, line.Message, tc.want)
			}
		}
	}
	if p := c.onePostazione(pcA); p.Renewal != nil {
		t.Error("a refused request left a renewal")
	}
	var n int
	c.env.Store.View(func(tx *store.Tx) error {
		return tx.InstallationsOf(comA, func(*store.Installation) error { n++; return nil })
	})
	if n != 0 {
		t.Errorf("refused requests wrote %d register records", n)
	}
	// The ALP of A may.
	for name, row := range map[string]func(string) ([]string, []string){"rinnova": renew, "registra": reg} {
		cols, vals := row(opALP)
		if line := applyRow(t, c, comA, cols, vals); line.Outcome != esito.OK {
			t.Errorf("ALP of A, %s: %s %s %q", name, line.Outcome, line.Code, line.Message)
		}
	}
	cols, vals := renew(opALP)
	if line := applyRow(t, c, comA, cols, vals); line.Code != "RINNOVO_IN_CORSO" {
		t.Errorf("second renewal: %s %q", line.Code, line.Message)
	}
}

func (c *certEnv) onePostazione(code string) *domain.Postazione {
	c.t.Helper()
	var p *domain.Postazione
	c.env.Store.View(func(tx *store.Tx) error { p, _ = tx.Postazione(code); return nil })
	return p
}

// TestAutoRenewalAsksAtTheThresholdAndTellsTheALP: with pki.auto_renew the
// scadenze job asks the renewal of a certificate once it is within
// pki.renew_before of its expiry (not before), once, and queues a notice
// to the comune's ALP; the next certificati batch issues it. Without
// auto_renew nothing is asked.
func TestAutoRenewalAsksAtTheThresholdAndTellsTheALP(t *testing.T) {
	c, clk := renewEnv(t)
	st := c.env.Store
	before := c.env.Config.PKI.RenewBefore
	if before != 30*24*time.Hour || c.env.Config.PKI.AutoRenew {
		t.Fatalf("defaults: renew_before %s, auto_renew %v; want 720h, false", before, c.env.Config.PKI.AutoRenew)
	}
	p := c.onePostazione(renewCode)
	// Every certificate of the fixture expires at about the same time:
	// move the clock to just before the threshold.
	clk.add(p.NotAfter.Sub(clk.now()) - before - time.Hour)
	c.env.Config.PKI.AutoRenew = false
	if counts, err := c.run(scadenzeJob); err != nil || counts["rinnovi_automatici"] != 0 {
		t.Fatalf("auto_renew off: %v, %v", counts, err)
	}
	c.env.Config.PKI.AutoRenew = true
	if counts, err := c.run(scadenzeJob); err != nil || counts["rinnovi_automatici"] != 0 {
		t.Fatalf("before the threshold: %v, %v", counts, err)
	}
	clk.add(2 * time.Hour)
	counts, err := c.run(scadenzeJob)
	if err != nil {
		t.Fatal(err)
	}
	if counts["rinnovi_automatici"] != 4 || counts["avvisi_rinnovo"] < 1 {
		t.Fatalf("at the threshold: %v, want 4 renewals asked and a notice", counts)
	}
	r := c.onePostazione(renewCode).Renewal
	if r == nil || !r.Auto || r.By != ScadenzeActor || !strings.Contains(r.Motivo, "rinnovo automatico") {
		t.Errorf("renewal = %+v", r)
	}
	var notices []*store.Mail
	st.View(func(tx *store.Tx) error {
		ids, _ := tx.MailsInState(store.MailQueued)
		for _, id := range ids {
			if m, _ := tx.Mail(id); strings.HasPrefix(id, "rinnovo/058091/") {
				notices = append(notices, m)
			}
		}
		return nil
	})
	if len(notices) == 0 || !strings.Contains(notices[0].Text, renewCode) || notices[0].Subject != "ANPR - rinnovo automatico dei certificati" {
		t.Errorf("notices = %+v", notices)
	}
	for _, m := range notices {
		var u *domain.Utenza
		st.View(func(tx *store.Tx) error { u, _ = tx.Utenza("058091", m.CF); return nil })
		if u == nil || !u.Has(domain.ALP) {
			t.Errorf("notice to %s, who is not an ALP of the comune", m.CF)
		}
	}
	// Once: a second run asks nothing.
	if counts, err := c.run(scadenzeJob); err != nil || counts["rinnovi_automatici"] != 0 {
		t.Errorf("second run: %v, %v", counts, err)
	}
	counts, err = c.run(certificatiJob)
	if err != nil || counts["issued"] != 4 {
		t.Fatalf("batch: %v, %v", counts, err)
	}
	// (The CA dates certificates by the wall clock, not the store's: the
	// new one's validity is not compared here.)
	if cur := c.onePostazione(renewCode); cur.Renewal != nil || cur.Serial == p.Serial || len(cur.Predecessors) != 1 {
		t.Errorf("after the batch: renewal %v, serial %s (was %s), %d predecessors", cur.Renewal, cur.Serial, p.Serial, len(cur.Predecessors))
	}
}
