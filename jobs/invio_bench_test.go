package jobs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/config"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/istat"
	"anprsec/mail"
	"anprsec/mail/smtptest"
	"anprsec/pki"
	"anprsec/pki/pgp"
	"anprsec/secret"
	"anprsec/store"
)

// Benchmarks of invio-pin (README, "Performance"), to run together:
//
//	go test -run '^$' -bench 'PIN' -benchtime 1x ./jobs/
//
// N second-half messages (ANPRSEC_BENCH_MAILS, default 10,000): the whole
// invio-pin job (unseal, compose, encrypt to the gateway, sign, SMTP to an
// in-process go-smtp server over loopback TCP, record) vs the bare
// go-crypto encrypt+sign of the same texts (the floor) vs a `gpg --sign
// --encrypt` loop (the peer, on a sample of 100, rate extrapolated).

func benchMails(b *testing.B) int {
	if s := os.Getenv("ANPRSEC_BENCH_MAILS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("ANPRSEC_BENCH_MAILS=%q: want a positive number", s)
		}
		return n
	}
	return 10000
}

var benchKeys struct {
	once sync.Once
	dir  string
	err  error
}

// benchKeyFiles writes service and gateway keys once per process.
func benchKeyFiles(b *testing.B) string {
	benchKeys.once.Do(func() {
		if benchKeys.dir, benchKeys.err = os.MkdirTemp("", "anprsec-bench-keys"); benchKeys.err != nil {
			return
		}
		for _, k := range []string{"service", "gateway"} {
			pub, sec, err := pgp.Generate(k, k+"@anprsec.invalid")
			if err != nil {
				benchKeys.err = err
				return
			}
			os.WriteFile(filepath.Join(benchKeys.dir, k+".pub.asc"), pub, 0o644)
			os.WriteFile(filepath.Join(benchKeys.dir, k+".sec.asc"), sec, 0o600)
		}
	})
	if benchKeys.err != nil {
		b.Fatal(benchKeys.err)
	}
	return benchKeys.dir
}

func benchPINText(i int) string {
	return PINText("Mario Rossi", fmt.Sprintf("SC%010d", i), pki.CardHalf{PIN: "1234", PUK: "5678", Password: "abcde"})
}

func reportMails(b *testing.B, n int) {
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "mails/s")
}

// BenchmarkPINFloor: go-crypto encrypt+sign of N texts on one core (the
// job's work per message without the mail, the store and the network).
func BenchmarkPINFloor(b *testing.B) {
	n := benchMails(b)
	dir := benchKeyFiles(b)
	signer, err := pgp.ReadSecretFile(filepath.Join(dir, "service.sec.asc"))
	if err != nil {
		b.Fatal(err)
	}
	to, err := pgp.ReadPublicFile(filepath.Join(dir, "gateway.pub.asc"))
	if err != nil {
		b.Fatal(err)
	}
	texts := make([][]byte, n)
	for i := range texts {
		texts[i] = []byte(benchPINText(i))
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for _, t := range texts {
			if _, err := pgp.EncryptSign(t, to, signer); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportMails(b, n)
}

// BenchmarkPINJob: the invio-pin job for N queued messages to a local SMTP
// server.
func BenchmarkPINJob(b *testing.B) {
	n := benchMails(b)
	dir := benchKeyFiles(b)
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		env, srv := benchMailEnv(b, n, dir)
		b.StartTimer()
		counts := benchRun(b, env, invioJob)
		b.StopTimer()
		if counts["sent"] != n || len(srv.Messages()) != n {
			b.Fatalf("sent %d, server received %d, want %d", counts["sent"], len(srv.Messages()), n)
		}
		srv.Close()
		b.StartTimer()
	}
	reportMails(b, n)
}

// benchMailEnv is a store with n ATTIVA cards whose messages are queued.
func benchMailEnv(b *testing.B, n int, keys string) (*Env, *smtptest.Server) {
	tmp := b.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(tmp, "data"), Key: bytes.Repeat([]byte{1}, secret.KeySize)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	d, _ := drop.NewLocal(filepath.Join(tmp, "drop"))
	cfg := config.Default(tmp)
	cfg.Keys.Service = filepath.Join(keys, "service.sec.asc")
	cfg.Keys.Gateway = filepath.Join(keys, "gateway.pub.asc")
	cfg.Keys.Holders = filepath.Join(tmp, "holders")
	srv := smtptest.Start(b)
	cfg.Mail.SMTP.Address = srv.Addr
	cfg.Mail.SMTP.TLS = "none"
	sealer, _ := store.NewSealer(bytes.Repeat([]byte{7}, secret.KeySize))
	loc, _ := time.LoadLocation(cfg.Timezone)
	half := pki.CardHalf{PIN: "1234", PUK: "5678", Password: "abcde"}.Marshal()
	for start := 0; start < n; start += 1000 {
		err = st.Update(func(tx *store.Tx) error {
			for i := start; i < min(n, start+1000); i++ {
				cf := fmt.Sprintf("BNCH%07dH501X", i)
				serial := fmt.Sprintf("SC%010d", i)
				if err := tx.PutUtenza(&domain.Utenza{ISTAT: "058091", CF: cf, Email: fmt.Sprintf("u%d@example.it", i), State: domain.UtenzaAttiva}); err != nil {
					return err
				}
				c := &domain.SmartCard{Serial: serial, CF: cf, ISTAT: "058091", State: domain.CardAttiva,
					SecondSealed: sealer.Seal(half, domain.CardSecretsSealContext(serial, "seconda"))}
				if err := tx.InsertCard(c); err != nil {
					return err
				}
				if _, err := tx.QueueMail(&store.Mail{ID: store.PINMailID(serial), Kind: store.MailPIN, Serial: serial, CF: cf, ISTAT: "058091"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return &Env{Config: cfg, Store: st, Drop: d, Comuni: istat.Default(), Loc: loc, Sealer: sealer, Log: discardLog()}, srv
}

// BenchmarkPINGPGLoop: `gpg --batch --sign --encrypt` of a sample of 100
// texts, one process each (the peer); the rate is per message.
func BenchmarkPINGPGLoop(b *testing.B) {
	if _, err := exec.LookPath("gpg"); err != nil {
		b.Skip("gpg not installed")
	}
	const sample = 100
	dir := benchKeyFiles(b)
	home, err := os.MkdirTemp("", "gpgb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(home)
	defer exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
	for _, f := range []string{"service.sec.asc", "gateway.pub.asc"} {
		if out, err := exec.Command("gpg", "--batch", "--homedir", home, "--import", filepath.Join(dir, f)).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	var text bytes.Buffer
	text.WriteString(benchPINText(1))
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for i := 0; i < sample; i++ {
			cmd := exec.Command("gpg", "--batch", "--homedir", home, "--trust-model", "always", "--armor", "--sign", "--encrypt",
				"-u", "service@anprsec.invalid", "-r", "gateway@anprsec.invalid")
			cmd.Stdin = bytes.NewReader(text.Bytes())
			if out, err := cmd.Output(); err != nil || !bytes.Contains(out, []byte("BEGIN PGP MESSAGE")) {
				b.Fatalf("gpg: %v", err)
			}
		}
	}
	reportMails(b, sample)
}

var _ = openpgp.EntityList{}
var _ mail.Sender = mail.Spool{}
