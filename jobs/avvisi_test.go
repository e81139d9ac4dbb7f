package jobs

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/export/audit"
	"anprsec/ingest/esito"
	"anprsec/ingest/richieste"
	"anprsec/lifecycle"
	"anprsec/mail/smtptest"
	"anprsec/pki/pgp"
	"anprsec/secret"
	"anprsec/store"
)

// fakeClock is the store's clock in the campaign tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// campaignEnv is a certEnv over a store with a fake clock, the matrix's
// comuni A (ASC, ALS, an ALS whose card is blocked: three recipients; an
// ALS whose utenza is blocked: none) and B (ALS and ASC), development
// OpenPGP keys and an SMTP server on the loopback.
func campaignEnv(t *testing.T) (*certEnv, *fakeClock, *smtptest.Server) {
	t.Helper()
	c := newCertEnv(t)
	clock := &fakeClock{now: time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC)}
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{1}, secret.KeySize), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.env.Store = st
	c.withPGP()
	matrixStore(t, c, matrixPeople)
	srv := smtptest.Start(t)
	c.env.Config.Mail.SMTP.Address = srv.Addr
	c.env.Config.Mail.SMTP.TLS = "none"
	c.env.Config.Notify.Backoffice = "backoffice@example.it"
	return c, clock, srv
}

// recipientsOf are the addresses a notice of comune istat goes to.
var recipientsOf = map[string][]string{
	comA: {"scrbcc@example.it", "scrlda@example.it", "sndlda@example.it"},
	comB: {"scrbci@example.it", "sndbci@example.it"},
}

// notice is a received campaign notice, decrypted.
type notice struct {
	hdr    netmail.Header
	to     string
	text   string
	files  map[string][]byte
	signed bool
}

// openNotice decrypts a received notice with the gateway's key and reads
// its text and attachments; signed tells whether the service signed it.
func (c *certEnv) openNotice(raw []byte) notice {
	c.t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	start := bytes.Index(raw, []byte("-----BEGIN PGP MESSAGE-----"))
	end := bytes.Index(raw, []byte("-----END PGP MESSAGE-----"))
	if start < 0 || end < 0 {
		c.t.Fatal("no armored message")
	}
	dir := filepath.Join(c.env.Config.Dir, "keys")
	gw, err := pgp.ReadSecretFile(filepath.Join(dir, "gateway.sec.asc"))
	if err != nil {
		c.t.Fatal(err)
	}
	service, err := pgp.ReadPublicFile(filepath.Join(dir, "service.pub.asc"))
	if err != nil {
		c.t.Fatal(err)
	}
	inner, signer, err := pgp.Decrypt(raw[start:end+len("-----END PGP MESSAGE-----")], append(service, gw))
	if err != nil {
		c.t.Fatalf("decrypt: %v", err)
	}
	n := notice{hdr: msg.Header, files: map[string][]byte{}, signed: signer != nil && pgp.Fingerprint(signer) == pgp.Fingerprint(service[0])}
	if to, err := netmail.ParseAddress(msg.Header.Get("To")); err == nil {
		n.to = to.Address
	}
	im, err := netmail.ReadMessage(bytes.NewReader(inner))
	if err != nil {
		c.t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(im.Header.Get("Content-Type"))
	if err == nil && mt == "text/plain" { // a message without attachments
		b, _ := io.ReadAll(quotedprintable.NewReader(im.Body))
		n.text = string(b)
		return n
	}
	if err != nil || mt != "multipart/mixed" {
		c.t.Fatalf("inner Content-Type %q", im.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(im.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.t.Fatal(err)
		}
		if p.FileName() == "" {
			b, _ := io.ReadAll(quotedprintable.NewReader(p))
			n.text = string(b)
			continue
		}
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			c.t.Fatal(err)
		}
		n.files[p.FileName()] = b
	}
	return n
}

// campaignComune reads the record of comune istat in campaign id.
func (c *certEnv) campaignComune(id, istat string) *store.CampaignComune {
	c.t.Helper()
	var cc *store.CampaignComune
	if err := c.env.Store.View(func(tx *store.Tx) (err error) {
		cc, err = tx.CampaignComune(id, istat)
		return err
	}); err != nil {
		c.t.Fatal(err)
	}
	return cc
}

// figures reads the figures of campaign id.
func (c *certEnv) figures(id string) *store.CampaignFigures {
	c.t.Helper()
	var f *store.CampaignFigures
	if err := c.env.Store.View(func(tx *store.Tx) error {
		camp, err := tx.Campaign(id)
		if err != nil {
			return err
		}
		f, err = tx.CampaignFiguresOf(camp)
		return err
	}); err != nil {
		c.t.Fatal(err)
	}
	return f
}

// confirmRow is a CONFERMA_VERIFICA row of operator for campaign id.
func confirmRow(operator, id string) ([]string, []string) {
	return []string{richieste.ColOperazione, richieste.ColOperatore, richieste.ColCampagna, richieste.ColNota},
		[]string{string(lifecycle.OpConfirmCheck), operator, id, "elenco verificato, nessuna modifica"}
}

// TestSecurityNoticeCampaign: a campaign over comuni A and B sends one
// notice to each ALS and ASC (never to a blocked utenza), each with its
// own Message-ID, encrypted to the gateway and signed by the service,
// with the phishing warning, the campaign's code and the comune's user
// list as the audit export makes it. A's ALS confirms: A gets no
// reminder, B gets one after avvisi.reminder_every, then is overdue after
// the deadline, once, and the back-office is told; the figures say so.
func TestSecurityNoticeCampaign(t *testing.T) {
	c, clock, srv := campaignEnv(t)
	id := CampaignID(clock.Now(), c.env.Loc)
	counts, err := c.run(avvisoJob)
	if err != nil || counts["campagne"] != 1 || counts["comuni_avvisati"] != 2 || counts["avvisi_accodati"] != 5 {
		t.Fatalf("avviso-sicurezza: %v %v", counts, err)
	}
	// A second run the same day starts no second campaign and queues nothing.
	if counts, err := c.run(avvisoJob); err != nil || counts["campagne"] != 0 || counts["avvisi_accodati"] != 0 {
		t.Fatalf("second run: %v %v", counts, err)
	}
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 5 {
		t.Fatalf("invio-pin: %v %v", counts, err)
	}
	msgs := srv.Messages()
	if len(msgs) != 5 {
		t.Fatalf("%d messages", len(msgs))
	}
	ids := map[string]bool{}
	got := map[string][]string{}
	var lists = map[string]*store.CampaignList{}
	c.env.Store.View(func(tx *store.Tx) error {
		for _, istat := range []string{comA, comB} {
			l, err := tx.CampaignList(id, istat)
			if err != nil {
				t.Fatal(err)
			}
			lists[istat] = l
		}
		return nil
	})
	for _, m := range msgs {
		n := c.openNotice(m.Data)
		if !n.signed {
			t.Errorf("%s: not signed by the service key", n.to)
		}
		mid := n.hdr.Get("Message-Id")
		if ids[mid] {
			t.Errorf("Message-ID %s used twice", mid)
		}
		ids[mid] = true
		if len(m.To) != 1 || m.To[0] != n.to {
			t.Errorf("envelope %v, header To %s", m.To, n.to)
		}
		if n.hdr.Get("Subject") != "ANPR - avviso di sicurezza" {
			t.Errorf("subject %q", n.hdr.Get("Subject"))
		}
		istat := comA
		if strings.Contains(n.text, "("+comB+")") || strings.Contains(n.text, "ISTAT "+comB) {
			istat = comB
		}
		got[istat] = append(got[istat], n.to)
		for _, want := range []string{"phishing", "Nessun messaggio del", "PIN, il PUK o le password", id, "CONFERMA_VERIFICA",
			"firmato con la chiave OpenPGP del servizio", "non è nostro", "14/02/2026"} {
			if !strings.Contains(strings.Join(strings.Fields(n.text), " "), strings.Join(strings.Fields(want), " ")) {
				t.Errorf("%s: the text lacks %q:\n%s", n.to, want, n.text)
			}
		}
		l := lists[istat]
		if !bytes.Equal(n.files[filepath.Base(l.CSVName)], l.CSV) || !bytes.Equal(n.files[filepath.Base(l.XLSXName)], l.XLSX) || len(n.files) != 2 {
			t.Errorf("%s: attachments %d files, not the comune's list", n.to, len(n.files))
		}
	}
	for istat, want := range recipientsOf {
		sort.Strings(got[istat])
		if strings.Join(got[istat], ",") != strings.Join(want, ",") {
			t.Errorf("comune %s: notices to %v, want %v", istat, got[istat], want)
		}
	}
	// The attached list is the audit export of the comune at the start.
	for _, istat := range []string{comA, comB} {
		tgt := memTarget{}
		e := NewExporter(c.env, tgt, true)
		e.Now = func() time.Time { return time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC) }
		files, err := e.Comune(context.Background(), istat)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tgt[files.UsersCSV], lists[istat].CSV) || files.UsersCSV != lists[istat].CSVName || files.XLSX != lists[istat].XLSXName {
			t.Errorf("comune %s: the attached CSV %s is not the export's %s", istat, lists[istat].CSVName, files.UsersCSV)
		}
		if !strings.Contains(string(lists[istat].CSV), "Codice Fiscale") || !strings.Contains(files.UsersCSV, audit.UsersName(istat, "20260115", ".csv")) {
			t.Errorf("comune %s: list %q", istat, lists[istat].CSVName)
		}
	}
	gpgCheckNotice(t, c, msgs[0].Data)

	// A's ALS confirms, through a console request.
	cols, vals := confirmRow(opALS, id)
	if line := applyRow(t, c, comA, cols, vals); line.Outcome != esito.OK || line.Code != "VERIFICA_CONFERMATA" {
		t.Fatalf("confirmation: %+v", line)
	}
	if line := applyRow(t, c, comA, cols, vals); line.Code != "GIA_CONFERMATA" {
		t.Errorf("second confirmation: %+v", line)
	}
	// Six days on: nobody is reminded yet; seven: B is, A is not.
	clock.Add(6 * 24 * time.Hour)
	if counts, err := c.run(promemoriaJob); err != nil || counts["promemoria"] != 0 {
		t.Fatalf("day 6: %v %v", counts, err)
	}
	clock.Add(24*time.Hour + time.Minute)
	if counts, err := c.run(promemoriaJob); err != nil || counts["promemoria"] != 2 {
		t.Fatalf("day 7: %v %v", counts, err)
	}
	srv.Reset()
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 2 {
		t.Fatalf("invio-pin of the reminders: %v %v", counts, err)
	}
	var reminded []string
	for _, m := range srv.Messages() {
		n := c.openNotice(m.Data)
		reminded = append(reminded, n.to)
		if ids[n.hdr.Get("Message-Id")] || !strings.Contains(n.text, "PROMEMORIA n. 1") || !strings.Contains(n.hdr.Get("Subject"), "promemoria") || len(n.files) != 2 || !n.signed {
			t.Errorf("reminder to %s: id %s, subject %q, %d files:\n%s", n.to, n.hdr.Get("Message-Id"), n.hdr.Get("Subject"), len(n.files), n.text)
		}
		ids[n.hdr.Get("Message-Id")] = true
	}
	sort.Strings(reminded)
	if strings.Join(reminded, ",") != strings.Join(recipientsOf[comB], ",") {
		t.Errorf("reminders to %v, want B's %v", reminded, recipientsOf[comB])
	}
	// Past the deadline (14/02/2026, the day counts whole): B is overdue,
	// once; the back-office gets one message naming it.
	clock.Add(25 * 24 * time.Hour)
	srv.Reset()
	counts, err = c.run(promemoriaJob)
	if err != nil || counts["comuni_scaduti"] != 1 {
		t.Fatalf("after the deadline: %v %v", counts, err)
	}
	if counts, err := c.run(promemoriaJob); err != nil || counts["comuni_scaduti"] != 0 || counts["promemoria"] != 0 {
		t.Fatalf("overdue twice: %v %v", counts, err)
	}
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 1 {
		t.Fatalf("invio-pin of the back-office message: %v %v", counts, err)
	}
	bo := srv.Messages()
	if len(bo) != 1 || bo[0].To[0] != "backoffice@example.it" {
		t.Fatalf("back-office messages: %d", len(bo))
	}
	if n := c.openNotice(bo[0].Data); !strings.Contains(n.text, comB) || strings.Contains(n.text, comA) || !n.signed {
		t.Errorf("back-office text:\n%s", n.text)
	}
	a, b := c.campaignComune(id, comA), c.campaignComune(id, comB)
	if a.ConfirmedBy != opALS || a.Confirmed.IsZero() || a.Reminders != 0 || !a.Overdue.IsZero() {
		t.Errorf("A: %+v", a)
	}
	if !b.Confirmed.IsZero() || b.Reminders < 1 || b.Overdue.IsZero() {
		t.Errorf("B: %+v", b)
	}
	f := c.figures(id)
	if f.Notified != 2 || f.Confirmed != 1 || f.Reminded != 1 || f.Overdue != 1 || f.MailsFailed != 0 || f.MailsSent != 7 {
		t.Errorf("figures %+v", f)
	}
	// The national workbook: the campaign's row, B among the anomalies.
	tgt := memTarget{}
	nat, err := NewExporter(c.env, tgt, true).National(context.Background(), audit.DefaultPeriod(clock.Now(), c.env.Loc))
	if err != nil {
		t.Fatal(err)
	}
	wb, err := excelize.OpenReader(bytes.NewReader(tgt[nat.XLSX]))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := wb.GetRows(audit.CampaignsSheet)
	if len(rows) != 2 || rows[1][0] != id || strings.Join(rows[1][4:10], ",") != "2,2,1,1,1,0" {
		t.Errorf("Avvisi sheet: %q", rows)
	}
	detail, _ := wb.GetRows(audit.NoticesSheet)
	// In ISTAT order: B (015146), then A (058091).
	if len(detail) != 3 || detail[2][1] != comA || detail[2][7] != opALS || detail[2][6] == "" || detail[1][1] != comB || detail[1][6] != "" || detail[1][9] == "" {
		t.Errorf("Avvisi per comune sheet: %q", detail)
	}
	anom, _ := wb.GetRows(audit.AnomaliesSheet)
	found := false
	for _, r := range anom {
		if len(r) > 2 && r[0] == audit.AnomalyNotice {
			found = r[1] == comB
		}
	}
	if !found {
		t.Errorf("no overdue anomaly for B: %q", anom)
	}
}

// gpgCheckNotice has GnuPG decrypt a notice with the gateway's key and
// report the service's good signature; the decrypted entity carries the
// list as an attachment.
func gpgCheckNotice(t *testing.T, c *certEnv, raw []byte) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Log("gpg not installed: GnuPG check skipped")
		return
	}
	run := gnupgHome(t)
	keys := filepath.Join(c.env.Config.Dir, "keys")
	for _, f := range []string{"gateway.sec.asc", "service.pub.asc"} {
		run(nil, "--import", filepath.Join(keys, f))
	}
	start := bytes.Index(raw, []byte("-----BEGIN PGP MESSAGE-----"))
	end := bytes.Index(raw, []byte("-----END PGP MESSAGE-----"))
	out, errOut := run(raw[start:end+len("-----END PGP MESSAGE-----")], "--trust-model", "always", "--decrypt")
	if !strings.Contains(errOut, `Good signature from "service`) || !strings.Contains(out, "multipart/mixed") ||
		!strings.Contains(out, `filename="utenti-`) {
		t.Errorf("gpg: %s\n%.600s", errOut, out)
	}
}

// gnupgHome runs gpg in a throw-away home (in /tmp: the agent's socket
// path is short).
func gnupgHome(t *testing.T) func(stdin []byte, args ...string) (string, string) {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	return func(stdin []byte, args ...string) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "gpg", append([]string{"--batch", "--no-tty", "--homedir", home}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String(), errb.String()
	}
}

// TestConfirmationOnlyFromTheComunesOwnALSOrASC: CONFERMA_VERIFICA in
// comune A's folder from B's ALS, from A's ALP, from an APL, or for a
// campaign that did not notify A, is refused and confirms nothing; A's ASC
// may confirm; a closed campaign takes no confirmation.
func TestConfirmationOnlyFromTheComunesOwnALSOrASC(t *testing.T) {
	c, clock, _ := campaignEnv(t)
	id := CampaignID(clock.Now(), c.env.Loc)
	if _, err := c.run(avvisoJob); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ who, cf, istat, campaign, want string }{
		{"ALS of B in A's folder", opALSOther, comA, id, "OPERATORE_SCONOSCIUTO"},
		{"ASC of B in A's folder", ascOther, comA, id, "OPERATORE_SCONOSCIUTO"},
		{"ALP of A", opALP, comA, id, "NON_AUTORIZZATO"},
		{"APL of A", opAPL, comA, id, "NON_AUTORIZZATO"},
		{"ALS of A, unknown campaign", opALS, comA, "AVV-19990101", "CAMPAGNA_SCONOSCIUTA"},
		{"ALS of A, campaign code with a formula", opALS, comA, "=HYPERLINK(1)", "CAMPAGNA_SCONOSCIUTA"},
	} {
		cols, vals := confirmRow(tc.cf, tc.campaign)
		if line := applyRow(t, c, tc.istat, cols, vals); line.Outcome != esito.Scartato || line.Code != tc.want {
			t.Errorf("%s: %s %s %q, want %s", tc.who, line.Outcome, line.Code, line.Message, tc.want)
		}
	}
	if a := c.campaignComune(id, comA); !a.Confirmed.IsZero() {
		t.Fatalf("A confirmed by a refused request: %+v", a)
	}
	// A campaign of B only: A's ALS cannot confirm it.
	if _, err := StartCampaign(c.env, CampaignOptions{Comune: comB, By: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(promemoriaJob); err != nil {
		t.Fatal(err)
	}
	cols, vals := confirmRow(opALS, id+"-S1")
	if line := applyRow(t, c, comA, cols, vals); line.Code != "CAMPAGNA_ALTRO_COMUNE" {
		t.Errorf("A confirming B's campaign: %+v", line)
	}
	cols, vals = confirmRow(opASC, id)
	if line := applyRow(t, c, comA, cols, vals); line.Code != "VERIFICA_CONFERMATA" {
		t.Errorf("A's ASC: %+v", line)
	}
	if a := c.campaignComune(id, comA); a.ConfirmedBy != opASC {
		t.Errorf("A: %+v", a)
	}
	// Closed: B can no longer confirm, and is never reminded nor overdue.
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		_, ref, err := lifecycle.CloseCampaign(tx, store.Source{Actor: "test"}, id, "prova")
		if ref != nil {
			t.Errorf("close: %v", ref)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cols, vals = confirmRow(opALSOther, id)
	if line := applyRow(t, c, comB, cols, vals); line.Code != "CAMPAGNA_CHIUSA" {
		t.Errorf("B after the close: %+v", line)
	}
	clock.Add(60 * 24 * time.Hour)
	if _, err := c.run(promemoriaJob); err != nil {
		t.Fatal(err)
	}
	if b := c.campaignComune(id, comB); b.Reminders != 0 || !b.Overdue.IsZero() {
		t.Errorf("B of a closed campaign: %+v", b)
	}
}

// TestRefusedNoticeIsReportedAsFailed: a 5xx for one recipient sets his
// notice aside; the campaign's figures count it and name the comune.
func TestRefusedNoticeIsReportedAsFailed(t *testing.T) {
	c, clock, srv := campaignEnv(t)
	id := CampaignID(clock.Now(), c.env.Loc)
	srv.Reject("sndbci@example.it", 550, "mailbox unavailable")
	if _, err := c.run(avvisoJob); err != nil {
		t.Fatal(err)
	}
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 4 || counts["failed"] != 1 {
		t.Fatalf("invio-pin: %v %v", counts, err)
	}
	f := c.figures(id)
	if f.MailsFailed != 1 || f.MailsSent != 4 || len(f.FailedComuni) != 1 || f.FailedComuni[0] != comB {
		t.Errorf("figures %+v", f)
	}
}

// TestCampaignCrashBetweenComuniQueuesEachNoticeOnce: a run that dies
// after notifying A (its transaction committed) and before B is resumed
// by the next run: A's notices are not queued again, B's are; a crash
// between the SMTP server's acceptance and the record sends the same
// Message-ID again, never a second notice: one Message-ID per campaign,
// comune and recipient.
func TestCampaignCrashBetweenComuniQueuesEachNoticeOnce(t *testing.T) {
	c, clock, srv := campaignEnv(t)
	camp, _, err := startCampaign(c.env, CampaignOptions{By: AvvisoActor}, false)
	if err != nil {
		t.Fatal(err)
	}
	run := &Run{ID: "t", Log: discardLog()}
	if err := notifyComune(context.Background(), c.env, run, camp, comA); err != nil {
		t.Fatal(err)
	}
	// The process dies here: the campaign is in opening, A notified.
	counts, err := c.run(avvisoJob)
	if err != nil || counts["comuni_avvisati"] != 1 || counts["avvisi_accodati"] != 2 {
		t.Fatalf("resumed run: %v %v", counts, err)
	}
	if counts, err := c.run(invioJob); err != nil || counts["sent"] != 5 {
		t.Fatalf("invio-pin: %v %v", counts, err)
	}
	// The records of the sends are lost (the process died after the
	// server accepted them): every notice is queued again as it was.
	if err := c.env.Store.Update(func(tx *store.Tx) error {
		ids, err := tx.MailsInState(store.MailSent)
		if err != nil {
			return err
		}
		for _, id := range ids {
			m, err := tx.Mail(id)
			if err != nil {
				return err
			}
			m.State, m.Sent = store.MailQueued, time.Time{}
			if err := tx.PutMail(m); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(invioJob); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	if counts, err := c.run(avvisoJob); err != nil || counts["avvisi_accodati"] != 0 {
		t.Fatalf("third run: %v %v", counts, err)
	}
	byID := map[string]map[string]bool{} // Message-ID -> recipients
	for _, m := range srv.Messages() {
		n := c.openNotice(m.Data)
		mid := n.hdr.Get("Message-Id")
		if byID[mid] == nil {
			byID[mid] = map[string]bool{}
		}
		byID[mid][n.to] = true
	}
	if len(byID) != 5 {
		t.Errorf("%d distinct Message-IDs for 5 recipients", len(byID))
	}
	for mid, to := range byID {
		if len(to) != 1 || !strings.Contains(mid, camp.ID) {
			t.Errorf("Message-ID %s to %v", mid, to)
		}
	}
}

// TestScheduledCampaignWithoutComuniStartsNone: before the census the
// scheduled run starts no campaign and does not fail; an extraordinary
// campaign is refused, saying why.
func TestScheduledCampaignWithoutComuniStartsNone(t *testing.T) {
	c := newCertEnv(t)
	if counts, err := c.run(avvisoJob); err != nil || counts["campagne"] != 0 {
		t.Fatalf("avviso-sicurezza on an empty store: %v %v", counts, err)
	}
	if _, err := StartCampaign(c.env, CampaignOptions{By: "test"}); err == nil || !strings.Contains(err.Error(), "nessun comune censito") {
		t.Errorf("extraordinary campaign on an empty store: %v", err)
	}
}
