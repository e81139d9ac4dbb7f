package jobs

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/pki/pgp"
	"anprsec/store"
)

// registroEnv is an environment with the OpenPGP keys and a few history
// entries, and the service's public key.
func registroEnv(t *testing.T) (*certEnv, openpgp.EntityList) {
	t.Helper()
	c := newCertEnv(t)
	c.withPGP()
	for i := 0; i < 3; i++ {
		err := c.env.Store.Update(func(tx *store.Tx) error {
			return tx.Record(store.Source{Actor: "test"}, "prova", "comune", "058091", fmt.Sprint("voce ", i))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	service, err := pgp.ReadVerifierFile(filepath.Join(c.env.Config.Dir, "keys", "service.pub.asc"))
	if err != nil {
		t.Fatal(err)
	}
	return c, service
}

// publishedCheckpoint returns the path of the one checkpoint in the drop.
func (c *certEnv) publishedCheckpoint() string {
	c.t.Helper()
	files, _ := filepath.Glob(filepath.Join(c.root, "sicurezza", "registro", "*"))
	if len(files) != 1 || !regexp.MustCompile(`/registro-\d{8}\.asc$`).MatchString(files[0]) {
		c.t.Fatalf("files in sicurezza/registro: %v, want one registro-<YYYYMMDD>.asc", files)
	}
	return files[0]
}

// TestRegistroCheckpointPassesGPGVerify: GnuPG, given only the service's
// public key, reports a good signature on the published checkpoint, and a
// bad one when its number is changed.
func TestRegistroCheckpointPassesGPGVerify(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not installed")
	}
	c, _ := registroEnv(t)
	if _, err := c.run(registroJob); err != nil {
		t.Fatal(err)
	}
	file := c.publishedCheckpoint()
	home, err := os.MkdirTemp("", "gpg") // short: the agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	defer exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
	gpg := func(args ...string) (string, error) {
		out, err := exec.Command("gpg", append([]string{"--batch", "--homedir", home}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := gpg("--import", filepath.Join(c.env.Config.Dir, "keys", "service.pub.asc")); err != nil {
		t.Fatalf("gpg --import: %v\n%s", err, out)
	}
	out, err := gpg("--verify", file)
	if err != nil || !strings.Contains(out, `Good signature from "service <sicurezza@anprsec.invalid>"`) {
		t.Fatalf("gpg --verify %s: %v\n%s", file, err, out)
	}
	data, _ := os.ReadFile(file)
	forged := regexp.MustCompile(`sequenza: \d+`).ReplaceAll(data, []byte("sequenza: 999"))
	forgedFile := filepath.Join(t.TempDir(), "registro-falso.asc")
	os.WriteFile(forgedFile, forged, 0o644)
	if out, err := gpg("--verify", forgedFile); err == nil || !strings.Contains(out, "BAD signature") {
		t.Errorf("gpg --verify accepted a changed checkpoint: %v\n%s", err, out)
	}
}

// TestRegistroSignsTheHeadItFound: the checkpoint names the head of the
// chain as the job found it (number, hash, time of the last entry), the
// job records registro.pubblicato as the entry right after it, and each
// address of registro.destinatari gets, through the outbox and invio-pin,
// a copy whose signed checkpoint is the same.
func TestRegistroSignsTheHeadItFound(t *testing.T) {
	c, service := registroEnv(t)
	c.env.Config.Registro.Destinatari = []string{"Revisore dei conti <revisore@example.it>", "archivio@example.it"}
	before, err := c.env.Store.HistoryHead()
	if err != nil {
		t.Fatal(err)
	}
	counts, err := c.run(registroJob)
	if err != nil || counts["sequenza"] != int(before.Seq) || counts["destinatari"] != 2 {
		t.Fatalf("counts %v, err %v; want sequenza %d, destinatari 2", counts, err, before.Seq)
	}
	file := c.publishedCheckpoint()
	data, _ := os.ReadFile(file)
	cp, err := VerifyCheckpoint(data, service)
	if err != nil {
		t.Fatal(err)
	}
	want := Checkpoint{Seq: before.Seq, Hash: hex.EncodeToString(before.Hash), Time: before.Time.UTC().Truncate(time.Second)}
	if cp != want || cp.Seq != 3 {
		t.Errorf("checkpoint %+v, want %+v", cp, want)
	}
	es, err := c.env.Store.History(before.Seq, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := "sicurezza/registro/" + filepath.Base(file)
	if len(es) != 1 || es[0].Seq != before.Seq+1 || es[0].Action != "registro.pubblicato" || es[0].Actor != RegistroActor ||
		!strings.Contains(es[0].Detail, name) || !strings.Contains(es[0].Detail, cp.Hash) || !strings.Contains(es[0].Detail, "messaggi in coda: 2") {
		t.Errorf("history after the head: %+v", es)
	}
	if _, err := c.env.Store.VerifyHistory(); err != nil {
		t.Error(err)
	}

	counts, err = c.run(invioJob)
	if err != nil || counts["sent"] != 2 {
		t.Fatalf("invio-pin: %v, %v", counts, err)
	}
	emls, _ := filepath.Glob(filepath.Join(c.env.Config.Path(c.env.Config.Mail.Spool), "*.eml"))
	if len(emls) != 2 {
		t.Fatalf("%d messages in the spool, want 2", len(emls))
	}
	to := map[string]bool{}
	for _, f := range emls {
		raw, _ := os.ReadFile(f)
		hdr, text := c.openPIN(raw, filepath.Join(c.env.Config.Dir, "keys", "gateway.sec.asc"))
		to[hdr.Get("To")] = true
		got, err := VerifyCheckpoint([]byte(text), service)
		if err != nil || got != cp || !strings.Contains(text, name) {
			t.Errorf("mailed copy to %s: %+v, %v\n%s", hdr.Get("To"), got, err, text)
		}
	}
	if !to["revisore@example.it"] && !to["<revisore@example.it>"] || len(to) != 2 {
		t.Errorf("sent to %v", to)
	}
}

// TestRegistroWithoutDestinatariOnlyPublishes: with registro.destinatari
// empty nothing is queued; a second run the same day replaces the file
// with the later head, which includes the first run's entry.
func TestRegistroWithoutDestinatariOnlyPublishes(t *testing.T) {
	c, service := registroEnv(t)
	for run := 1; run <= 2; run++ {
		if counts, err := c.run(registroJob); err != nil || counts["destinatari"] != 0 {
			t.Fatalf("run %d: %v, %v", run, counts, err)
		}
	}
	var queued []string
	c.env.Store.View(func(tx *store.Tx) error {
		var err error
		queued, err = tx.MailsInState(store.MailQueued)
		return err
	})
	if len(queued) != 0 {
		t.Errorf("queued %v", queued)
	}
	data, _ := os.ReadFile(c.publishedCheckpoint())
	cp, err := VerifyCheckpoint(data, service)
	if err != nil || cp.Seq != 4 { // 3 entries, then the first run's registro.pubblicato
		t.Errorf("checkpoint of the second run: %+v, %v; want sequenza 4", cp, err)
	}
}

// TestRegistroNeedsTheServiceKey: without the service key nothing is
// published and nothing recorded.
func TestRegistroNeedsTheServiceKey(t *testing.T) {
	c, _ := registroEnv(t)
	os.Remove(c.env.Config.Keys.Service)
	before, _ := c.env.Store.HistoryHead()
	if _, err := c.run(registroJob); err == nil || !strings.Contains(err.Error(), "keys.service") {
		t.Errorf("err %v, want one about keys.service", err)
	}
	after, _ := c.env.Store.HistoryHead()
	files, _ := filepath.Glob(filepath.Join(c.root, "sicurezza", "registro", "*"))
	if after.Seq != before.Seq || len(files) != 0 {
		t.Errorf("head %d → %d, files %v", before.Seq, after.Seq, files)
	}
}

// TestParseCheckpointRefusesIncompleteTexts: a text without the title,
// without one of its keys, with a key twice or with a bad value is no
// checkpoint; the text the job writes reads back.
func TestParseCheckpointRefusesIncompleteTexts(t *testing.T) {
	good := Checkpoint{Seq: 12, Hash: strings.Repeat("ab", 32), Time: time.Date(2026, 12, 7, 4, 45, 0, 0, time.UTC)}
	if got, err := ParseCheckpoint(good.Text()); err != nil || got != good {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	text := string(good.Text())
	for name, bad := range map[string]string{
		"no title":      strings.Replace(text, checkpointTitle+"\n", "", 1),
		"no hash":       regexp.MustCompile(`hash: \w+\n`).ReplaceAllString(text, ""),
		"twice":         text + "sequenza: 13\n",
		"short hash":    strings.Replace(text, "abab\n", "\n", 1),
		"uppercase":     strings.Replace(text, "ab", "AB", 1),
		"negative":      strings.Replace(text, "sequenza: 12", "sequenza: -1", 1),
		"not RFC 3339":  strings.Replace(text, "2026-12-07T04:45:00Z", "07/12/2026", 1),
		"no key: value": text + "riga senza chiave\n",
	} {
		if got, err := ParseCheckpoint([]byte(bad)); err == nil {
			t.Errorf("%s: parsed %+v from\n%s", name, got, bad)
		}
	}
	if !bytes.HasPrefix(good.Text(), []byte(checkpointTitle+"\nsequenza: 12\nhash: abab")) {
		t.Errorf("text:\n%s", good.Text())
	}
}
