package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/internal/clip"
)

// validCF completes the first 15 characters of a codice fiscale with its
// check letter.
func validCF(first15 string) string { return first15 + string(codfisc.CheckLetter(first15)) }

var (
	cfGone  = validCF("RSSMRA68A01H501")
	cfStays = validCF("BNCLRA75M41F205")
	cfASC   = validCF("VRDGPP60C12L219")
)

const (
	mailGone   = "Mario.Rossi@comune.example.it"
	mailShared = "anagrafe@comune.example.it"
)

// personalIn returns the keys of the stored versions (all of them, deleted
// and old ones too) whose key or value holds one of the strings (case
// insensitive).
func personalIn(t *testing.T, s *Store, what ...string) []string {
	t.Helper()
	var hits []string
	err := s.RawScanAllVersions(func(k, v []byte, deleted bool) error {
		lk, lv := bytes.ToLower(k), bytes.ToLower(v)
		for _, w := range what {
			lw := []byte(strings.ToLower(w))
			if bytes.Contains(lk, lw) || bytes.Contains(lv, lw) {
				hits = append(hits, fmt.Sprintf("%q (deleted %v) holds %s", k, deleted, w))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// versionsOf counts the stored versions of key, deleted ones included.
func versionsOf(t *testing.T, s *Store, key string) int {
	t.Helper()
	n := 0
	err := s.EachVersion(func(k []byte, _, _ bool) error {
		if string(k) == key {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func update(t *testing.T, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryBodiesHoldPseudonymsAndReadingResolvesThem: the chained body
// of an entry holds no codice fiscale and no e-mail address, only
// pseudonyms; History and EachHistory show the values again.
func TestHistoryBodiesHoldPseudonymsAndReadingResolvesThem(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	update(t, s, func(tx *Tx) error {
		return tx.Record(Source{Actor: cfASC}, "utenza.crea", "utenza", "058091/"+cfGone, "e-mail "+mailGone+", referente "+cfStays)
	})
	err := s.View(func(tx *Tx) error {
		return tx.scan("h/", true, func(k string, v []byte) (bool, error) {
			for _, w := range []string{cfGone, cfStays, cfASC, strings.ToLower(mailGone)} {
				if bytes.Contains(bytes.ToLower(v), []byte(strings.ToLower(w))) {
					t.Errorf("history block holds %s in clear: %s", w, v)
				}
			}
			if !bytes.Contains(v, []byte(PseudonymPrefix)) {
				t.Errorf("history block holds no pseudonym: %s", v)
			}
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.History(0, 0, nil)
	if err != nil || len(es) != 1 {
		t.Fatalf("history = %v, %v", es, err)
	}
	e := es[0]
	if e.Actor != cfASC || e.Key != "058091/"+cfGone || e.Detail != "e-mail "+strings.ToLower(mailGone)+", referente "+cfStays {
		t.Fatalf("entry read back = %+v", e)
	}
	if _, err := s.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
}

// TestForgedPseudonymMappingIsNotBelieved: a mapping record edited to name
// another person does not match its HMAC, and the reader shows the bare
// pseudonym instead of the forged name.
func TestForgedPseudonymMappingIsNotBelieved(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	update(t, s, func(tx *Tx) error { return tx.Record(Source{Actor: "t"}, "a", "persona", cfGone, "") })
	var tok string
	update(t, s, func(tx *Tx) error {
		var err error
		if tok, err = tx.PseudonymOf(cfGone); err != nil {
			return err
		}
		var p pseudonym
		if err := tx.get("pt/"+tok, &p); err != nil {
			return err
		}
		p.Value = cfStays
		return tx.set("pt/"+tok, p)
	})
	es, err := s.History(0, 0, nil)
	if err != nil || es[0].Key != tok {
		t.Fatalf("entry key = %q (%v), want the bare pseudonym %s", es[0].Key, err, tok)
	}
}

// seedPerson stores a person who had an utenza (cancelled since), a
// revoked card delivered to cfASC, a sent message, and the history of it
// all; and another person sharing an e-mail address.
func seedPerson(t *testing.T, s *Store) {
	t.Helper()
	update(t, s, func(tx *Tx) error {
		for _, p := range []*domain.Person{{CF: cfGone, Surname: "ROSSI", Name: "MARIO", Card: "SC1"}, {CF: cfStays, Surname: "BIANCHI", Name: "LAURA"}} {
			if err := tx.PutPerson(p); err != nil {
				return err
			}
		}
		for _, u := range []*domain.Utenza{
			{ISTAT: "058091", CF: cfGone, Email: mailGone, PEC: mailShared, State: domain.UtenzaAttiva},
			{ISTAT: "058091", CF: cfStays, Email: mailShared, State: domain.UtenzaAttiva},
		} {
			if err := tx.PutUtenza(u); err != nil {
				return err
			}
			if err := tx.Record(Source{Actor: cfASC}, "utenza.crea", "utenza", u.ISTAT+"/"+u.CF, "e-mail "+u.Email); err != nil {
				return err
			}
		}
		if err := tx.InsertCard(&domain.SmartCard{Serial: "SC1", CF: cfGone, ISTAT: "058091", State: domain.CardAttiva, DeliveredTo: cfGone}); err != nil {
			return err
		}
		if err := tx.InsertCard(&domain.SmartCard{Serial: "SC2", CF: cfASC, ISTAT: "058091", State: domain.CardAttiva, DeliveredTo: cfGone}); err != nil {
			return err
		}
		if err := tx.PutMail(&Mail{ID: PINMailID("SC1"), Kind: MailPIN, Serial: "SC1", CF: cfGone, To: mailGone, State: MailSent}); err != nil {
			return err
		}
		return tx.PutMail(&Mail{ID: "avviso/x/1", Kind: MailAvviso, To: mailShared, Subject: "avviso", Text: "la carta di " + cfGone + " (" + mailGone + ") scade", State: MailSent})
	})
	// The utenza is cancelled (deleted), the card revoked.
	update(t, s, func(tx *Tx) error {
		if err := tx.DeleteUtenza("058091", cfGone); err != nil {
			return err
		}
		c, err := tx.Card("SC1")
		if err != nil {
			return err
		}
		c.State, c.Reason = domain.CardRevocata, "ultima utenza cancellata"
		if err := tx.PutCard(c); err != nil {
			return err
		}
		return tx.Record(Source{Actor: cfASC}, "utenza.cancella", "utenza", "058091/"+cfGone, "")
	})
}

// TestErasedPersonLeavesNoVersionAndTheHistoryVerifies: after ErasePersons
// and Purge no version of the person's records is stored, no value or key
// holds his codice fiscale or his own e-mail address, the history still
// verifies with the same hashes, names him by his bare pseudonym, and the
// other person keeps her data and the shared address.
func TestErasedPersonLeavesNoVersionAndTheHistoryVerifies(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	seedPerson(t, s)
	before, hashes, err := s.HistoryHashes(1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n := versionsOf(t, s, "u/058091/"+cfGone); n == 0 {
		t.Fatal("the cancelled utenza has no stored version before the purge: the test proves nothing")
	}
	var tok string
	update(t, s, func(tx *Tx) error {
		if err := tx.Record(Source{Actor: "pulizia"}, "persona.cancellata", "persona", cfGone, ""); err != nil {
			return err
		}
		toks, err := tx.ErasePersons([]string{cfGone})
		tok = toks[0]
		return err
	})
	res, err := s.Purge()
	if err != nil || !res.Done || res.Left != 0 {
		t.Fatalf("purge = %+v, %v; want nothing left", res, err)
	}
	if res, err := s.Purge(); err != nil || res.Done {
		t.Fatalf("second purge = %+v, %v; want nothing to do", res, err)
	}
	for _, k := range []string{"p/" + cfGone, "u/058091/" + cfGone, "i/u-cf/" + cfGone + "/058091", "pv/" + cfGone, "pt/" + tok, "o/" + PINMailID("SC1")} {
		if n := versionsOf(t, s, k); n != 0 {
			t.Errorf("%s: %d versions stored after the purge, want none", k, n)
		}
	}
	if hits := personalIn(t, s, cfGone, mailGone); len(hits) > 0 {
		t.Errorf("personal data of the erased person left:\n%s", strings.Join(hits, "\n"))
	}
	after, hashes2, err := s.HistoryHashes(1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if after.Entries != before.Entries+1 {
		t.Fatalf("entries %d -> %d", before.Entries, after.Entries)
	}
	for n, h := range hashes {
		if hashes2[n] != h {
			t.Errorf("hash of entry %d changed by the erasure", n)
		}
	}
	es, _ := s.History(0, 0, nil)
	if es[0].Key != "058091/"+tok || es[1].Key != "058091/"+cfStays || es[3].Key != tok {
		t.Errorf("history keys after erasure: %q %q %q; want the bare pseudonym %s and %s resolved", es[0].Key, es[1].Key, es[3].Key, tok, cfStays)
	}
	if es[1].Detail != "e-mail "+mailShared {
		t.Errorf("the shared address no longer resolves: %q", es[1].Detail)
	}
	err = s.View(func(tx *Tx) error {
		c, err := tx.Card("SC1")
		if err != nil || c.CF != tok || c.DeliveredTo != tok {
			return fmt.Errorf("card SC1 = %+v, %v; want the pseudonym as holder", c, err)
		}
		if got, _ := tx.CardsOfPerson(tok); len(got) != 1 {
			return fmt.Errorf("cards of the pseudonym = %v", got)
		}
		if c, _ := tx.Card("SC2"); c.DeliveredTo != tok || c.CF != cfASC {
			return fmt.Errorf("card SC2 = %+v", c)
		}
		if u, err := tx.Utenza("058091", cfStays); err != nil || u.Email != mailShared {
			return fmt.Errorf("the other person's utenza: %+v, %v", u, err)
		}
		if m, err := tx.Mail("avviso/x/1"); err != nil || strings.Contains(m.Text, cfGone) {
			return fmt.Errorf("the notice = %+v, %v", m, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// oldRecord appends an entry as anprsec did before pseudonyms: the fields
// in clear in the chained body.
func oldRecord(tx *Tx, src Source, action, kind, key, detail string) error {
	if tx.head == nil {
		var h histHead
		if err := tx.get(histHeadKey, &h); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if h.Hash == nil {
			h.Hash = make([]byte, sha256.Size)
		}
		tx.head = &h
	}
	e := Entry{Seq: tx.head.Seq + 1, Time: tx.Now, Actor: src.Actor, Action: action, Kind: kind,
		Key: key, File: src.File, Row: src.Row, Detail: clip.String(detail, MaxEntryDetail)}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	hash := chainHash(tx.head.Hash, body)
	if len(tx.histBlock) == 0 {
		tx.histFirst = e.Seq
	}
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(body)))
	tx.histBlock = append(append(append(append(tx.histBlock, tx.head.Hash...), hash...), l[:]...), body...)
	tx.head = &histHead{Seq: e.Seq, Hash: hash}
	tx.headDirty = true
	return nil
}

// oldStore makes a store as the code before pseudonyms did: n
// transactions of entries naming persons in clear.
func oldStore(t *testing.T, dir string, n int) *Store {
	t.Helper()
	s := openTest(t, dir)
	for i := 0; i < n; i++ {
		update(t, s, func(tx *Tx) error {
			for j := 0; j < 3; j++ {
				cf := []string{cfGone, cfStays, cfASC}[j]
				mail := []string{mailGone, mailShared, "asc@comune.example.it"}[j]
				if err := oldRecord(tx, Source{Actor: cfASC, File: "censimento/c.xlsx", Row: i + 2}, "utenza.modifica", "utenza", "058091/"+cf,
					fmt.Sprintf("e-mail %s, giro %d %s", mail, i, strings.Repeat("x", 300))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Nothing marks the store as pseudonymised: the old code wrote no mark.
	update(t, s, func(tx *Tx) error { return tx.del(histPseudoKey) })
	return s
}

// TestMigratedHistoryVerifiesAndKeepsOldCheckpoints: a store whose
// history names persons in clear is rewritten once: the chain verifies,
// no body holds a codice fiscale any more (not in any old version either,
// after the purge), the entries read back as before, and the hashes of
// the old chain stay checkable for the checkpoints published before.
func TestMigratedHistoryVerifiesAndKeepsOldCheckpoints(t *testing.T) {
	s := oldStore(t, t.TempDir(), 400)
	defer s.Close()
	oldRes, oldHashes, err := s.HistoryHashes(1, 600, 1200)
	if err != nil {
		t.Fatal(err)
	}
	oldEntries, err := s.History(0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	mig, err := s.MigrateHistory()
	if err != nil || mig.Entries != 1200 {
		t.Fatalf("migration = %+v, %v; want 1200 entries rewritten", mig, err)
	}
	res, err := s.VerifyHistory()
	if err != nil || res.Entries != 1201 {
		t.Fatalf("verify after migration = %+v, %v", res, err)
	}
	legacy, err := s.LegacyHistoryHashes(1, 600, 1200, 1201)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{1, 600, 1200} {
		if legacy[n] != oldHashes[n] {
			t.Errorf("old hash of entry %d = %s, the checkpoint says %s", n, legacy[n], oldHashes[n])
		}
	}
	if _, ok := legacy[1201]; ok {
		t.Error("an old hash past the old chain")
	}
	es, err := s.History(0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range oldEntries {
		e.Detail = strings.ReplaceAll(e.Detail, mailGone, strings.ToLower(mailGone)) // addresses read back in lower case
		if es[i] != e {
			t.Fatalf("entry %d read back as %+v, was %+v", i+1, es[i], e)
		}
	}
	last := es[len(es)-1]
	if last.Action != "storia.pseudonimizzata" || !strings.Contains(last.Detail, oldRes.Head) {
		t.Errorf("closing entry = %+v, want the old head %s", last, oldRes.Head)
	}
	if again, err := s.MigrateHistory(); err != nil || again.Entries != 0 {
		t.Errorf("second migration = %+v, %v; want nothing to do", again, err)
	}
	if _, err := s.Purge(); err != nil {
		t.Fatal(err)
	}
	var inHistory []string
	err = s.RawScanAllVersions(func(k, v []byte, _ bool) error {
		if (bytes.HasPrefix(k, []byte("h/")) || bytes.HasPrefix(k, []byte("hn/"))) && (bytes.Contains(v, []byte(cfGone)) || bytes.Contains(v, []byte(mailGone))) {
			inHistory = append(inHistory, fmt.Sprintf("%q", k))
		}
		return nil
	})
	if err != nil || len(inHistory) > 0 {
		t.Fatalf("history versions still holding personal data after the purge: %v %v", inHistory, err)
	}
	// Erasing now leaves the migrated history verifying.
	update(t, s, func(tx *Tx) error { _, err := tx.ErasePersons([]string{cfGone}); return err })
	if _, err := s.Purge(); err != nil {
		t.Fatal(err)
	}
	if hits := personalIn(t, s, cfGone, mailGone); len(hits) > 0 {
		t.Errorf("personal data left:\n%s", strings.Join(hits, "\n"))
	}
	if _, err := s.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
}

// TestTamperedOldHashesAreCaughtByVerify: the old hashes the migration
// keeps are covered by the closing entry: changing one breaks the chain.
func TestTamperedOldHashesAreCaughtByVerify(t *testing.T) {
	s := oldStore(t, t.TempDir(), 5)
	defer s.Close()
	if _, err := s.MigrateHistory(); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Tx) error {
		v, err := tx.getRaw("hl/" + histKey(4)[2:])
		if err != nil {
			return err
		}
		v = bytes.Clone(v)
		v[0] ^= 1
		return tx.setRaw("hl/"+histKey(4)[2:], v)
	})
	if _, err := s.VerifyHistory(); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("verify = %v, want ErrChainBroken", err)
	}
}

// errCrash stands for the process dying at a crash point.
var errCrash = errors.New("crash")

// TestMigrationInterruptedFinishesOnTheNextRun: a migration stopped after
// its first build transaction resumes, even after entries were appended
// meanwhile; one stopped in its swap phase is finished by Open. Both end
// with a verifying chain.
func TestMigrationInterruptedFinishesOnTheNextRun(t *testing.T) {
	dir := t.TempDir()
	s := oldStore(t, dir, 1200) // > 1 MB of history: several build transactions
	defer func() { migrationCrash = nil }()
	migrationCrash = func(phase string) error {
		if phase == migBuild {
			return errCrash
		}
		return nil
	}
	if _, err := s.MigrateHistory(); !errors.Is(err, errCrash) {
		t.Fatalf("migration = %v, want the crash", err)
	}
	update(t, s, func(tx *Tx) error { return tx.Record(Source{Actor: cfASC}, "dopo", "persona", cfGone, "") })
	if _, err := s.VerifyHistory(); err != nil {
		t.Fatalf("verify mid-build: %v", err)
	}
	swaps := 0
	migrationCrash = func(phase string) error {
		if phase == migSwap {
			if swaps++; swaps == 2 {
				return errCrash
			}
		}
		return nil
	}
	if _, err := s.MigrateHistory(); !errors.Is(err, errCrash) {
		t.Fatalf("migration = %v, want the crash in the swap", err)
	}
	s.Close()
	migrationCrash = nil
	s = openTest(t, dir)
	defer s.Close()
	res, err := s.VerifyHistory()
	if err != nil || res.Entries != 3602 {
		t.Fatalf("verify after reopening = %+v, %v; want 3602 entries", res, err)
	}
	if st, _ := s.migrationState(); st.Phase != migDone {
		t.Fatalf("migration phase %q", st.Phase)
	}
	es, _ := s.History(3600, 0, nil)
	if len(es) != 2 || es[0].Key != cfGone || es[1].Action != "storia.pseudonimizzata" {
		t.Fatalf("last entries = %+v", es)
	}
}

// TestPurgeRemovesOldVersionsOfALargeStore: with records spread over
// several levels of the tree, the versions older than the newest are gone
// after Purge.
func TestPurgeRemovesOldVersionsOfALargeStore(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 40 MB")
	}
	s := openTest(t, t.TempDir())
	defer s.Close()
	update(t, s, func(tx *Tx) error { return tx.PutPerson(&domain.Person{CF: cfGone, Surname: "ROSSI"}) })
	fill := func(tag string) {
		for b := 0; b < 20; b++ {
			update(t, s, func(tx *Tx) error {
				for i := 0; i < 2000; i++ {
					if err := tx.setRaw(fmt.Sprintf("z/%s/%d/%d", tag, b, i), bytes.Repeat([]byte{'z'}, 500)); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	fill("a")
	update(t, s, func(tx *Tx) error {
		return tx.PutPerson(&domain.Person{CF: cfGone, Surname: "ROSSI", Updated: time.Now()})
	})
	fill("b")
	update(t, s, func(tx *Tx) error {
		if err := tx.markPurge(); err != nil {
			return err
		}
		return tx.del("p/" + cfGone)
	})
	if versionsOf(t, s, "p/"+cfGone) < 2 {
		t.Fatal("no old versions before the purge: the test proves nothing")
	}
	res, err := s.Purge()
	if err != nil || res.Left != 0 {
		t.Fatalf("purge = %+v, %v", res, err)
	}
	if n := versionsOf(t, s, "p/"+cfGone); n != 0 {
		t.Fatalf("%d versions left", n)
	}
}

// The child process of the erasure's kill -9 tests: on the store the
// parent seeded, it erases cfGone and purges, says so on stdout at the step
// it is told and waits to be killed there.
func TestErasureChildProcess(t *testing.T) {
	at := os.Getenv("ANPRSEC_ERASE_CHILD")
	if at == "" {
		t.Skip("run by the kill -9 tests")
	}
	park := func(step string) {
		if step == at {
			fmt.Printf("AT %s\n", step)
			os.Stdout.Sync()
			time.Sleep(time.Minute)
		}
	}
	purgeStep = park
	migrationCrash = func(phase string) error { park("migration-" + phase); return nil }
	s, err := Open(Options{Dir: os.Getenv("ANPRSEC_DIR"), Key: testKey()})
	if err == nil {
		_, err = s.MigrateHistory()
	}
	if err == nil {
		err = s.Update(func(tx *Tx) error {
			if err := tx.Record(Source{Actor: "pulizia"}, "persona.cancellata", "persona", cfGone, ""); err != nil {
				return err
			}
			_, err := tx.ErasePersons([]string{cfGone})
			return err
		})
	}
	if err == nil {
		park("erased")
		_, err = s.Purge()
	}
	fmt.Printf("DONE %v\n", err)
}

// TestErasureKilledFinishesOnTheNextRun: killed with SIGKILL during the
// migration's swap, after the erasure's commit, or inside the purge, the
// store opens consistent (the chain verifies, the person is gone for every
// reader), and the next run (migration, purge) leaves no version and no
// personal data of the person.
func TestErasureKilledFinishesOnTheNextRun(t *testing.T) {
	for _, step := range []string{"migration-swap", "erased", "flushed", "flattened"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			s := oldStore(t, dir, 400) // history in clear: the migration has work to do
			seedPerson(t, s)
			s.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestErasureChildProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ANPRSEC_ERASE_CHILD="+step, "ANPRSEC_DIR="+dir)
			out, err := cmd.StdoutPipe()
			must(t, err)
			must(t, cmd.Start())
			sc := bufio.NewScanner(out)
			killed := false
			for !killed && sc.Scan() {
				if line := sc.Text(); line == "AT "+step {
					must(t, cmd.Process.Kill())
					killed = true
				} else if strings.HasPrefix(line, "DONE") {
					t.Fatalf("the child ended before %s: %s", step, line)
				}
			}
			cmd.Wait()
			if !killed {
				t.Fatalf("the child ended before %s", step)
			}
			s = openTest(t, dir)
			defer s.Close()
			if _, err := s.VerifyHistory(); err != nil {
				t.Fatalf("after kill -9 at %s: %v", step, err)
			}
			if _, err := s.MigrateHistory(); err != nil {
				t.Fatal(err)
			}
			if step == "migration-swap" { // killed before the erasure: it runs now
				update(t, s, func(tx *Tx) error { _, err := tx.ErasePersons([]string{cfGone}); return err })
			}
			err = s.View(func(tx *Tx) error {
				if _, err := tx.Person(cfGone); !errors.Is(err, ErrNotFound) {
					return fmt.Errorf("person after the erasure: %v", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if res, err := s.Purge(); err != nil || res.Left != 0 {
				t.Fatalf("purge = %+v, %v", res, err)
			}
			if hits := personalIn(t, s, cfGone, mailGone); len(hits) > 0 {
				t.Errorf("personal data left:\n%s", strings.Join(hits, "\n"))
			}
			if _, err := s.VerifyHistory(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAddressStillInAnotherUtenzaStays: an e-mail address the erased
// person shared with someone whose utenza still holds it is not erased:
// that utenza keeps it, and the history still shows it.
func TestAddressStillInAnotherUtenzaStays(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	update(t, s, func(tx *Tx) error {
		for _, cf := range []string{cfGone, cfStays} {
			if err := tx.PutUtenza(&domain.Utenza{ISTAT: "058091", CF: cf, Email: mailShared, State: domain.UtenzaAttiva}); err != nil {
				return err
			}
		}
		return tx.Record(Source{Actor: "t"}, "avviso", "comune", "058091", "scritto a "+mailShared)
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteUtenza("058091", cfGone) })
	update(t, s, func(tx *Tx) error { _, err := tx.ErasePersons([]string{cfGone}); return err })
	err := s.View(func(tx *Tx) error {
		u, err := tx.Utenza("058091", cfStays)
		if err != nil || u.Email != mailShared {
			return fmt.Errorf("the other utenza = %+v, %v; want its address kept", u, err)
		}
		es, err := s.History(0, 0, nil)
		if err != nil || es[0].Detail != "scritto a "+mailShared {
			return fmt.Errorf("history = %+v, %v; want the shared address resolved", es, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLargeHistoryResolvesEveryPerson: a reading that meets more
// pseudonyms than bulkAfter loads the mappings at once and still resolves
// each, and still leaves an erased one bare.
func TestLargeHistoryResolvesEveryPerson(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	var cfs []string
	for i := 0; len(cfs) < bulkAfter+500; i++ {
		cfs = append(cfs, validCF(fmt.Sprintf("RSSMRA%02d%c%02dH501", i%100, "ABCDEHLMPRST"[i/100%12], 1+i/1200)))
	}
	for i := 0; i < len(cfs); i += 500 {
		update(t, s, func(tx *Tx) error {
			for _, cf := range cfs[i:min(i+500, len(cfs))] {
				if err := tx.Record(Source{Actor: "censimento"}, "utenza.crea", "utenza", "058091/"+cf, ""); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var tok string
	update(t, s, func(tx *Tx) error {
		toks, err := tx.ErasePersons(cfs[7:8])
		tok = toks[0]
		return err
	})
	es, err := s.History(0, 0, nil)
	if err != nil || len(es) != len(cfs) {
		t.Fatalf("history: %d entries, %v", len(es), err)
	}
	for i, e := range es {
		want := "058091/" + cfs[i]
		if i == 7 {
			want = "058091/" + tok
		}
		if e.Key != want {
			t.Fatalf("entry %d key %q, want %q", i+1, e.Key, want)
		}
	}
}
