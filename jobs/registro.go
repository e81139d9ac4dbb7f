package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	netmail "net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/pki/pgp"
	"anprsec/store"
)

// RegistroActor is the history actor of the registro job.
const RegistroActor = "registro"

// RegistroDir is the drop folder of the published checkpoints.
const RegistroDir = "sicurezza/registro"

// RegistroFileName is the drop path of the checkpoint published on day
// (a date in the config's time zone).
func RegistroFileName(day time.Time) string {
	return RegistroDir + "/registro-" + day.Format("20060102") + ".asc"
}

// registroJob publishes a checkpoint of the history chain (daily by
// default; docs/rules.md#history):
//
//  1. it reads the head of the chain (store.HistoryHead: the number, hash
//     and time of the last entry) and makes it durable (Store.Sync) before
//     anything announces it;
//  2. it writes the checkpoint text (Checkpoint.Text: a title line and
//     "sequenza", "hash", "ora" lines) and signs it with the service key
//     (keys.service, the key that signs every mail) as an OpenPGP
//     cleartext-signed message, which `gpg --verify` checks;
//  3. it publishes it atomically in the drop as
//     sicurezza/registro/registro-<YYYYMMDD>.asc (over SFTP: on the other
//     machine); a second run the same day replaces the file with a later
//     head, which extends the earlier one;
//  4. in one transaction it queues one message per address of
//     registro.destinatari (sent by invio-pin like the expiry warnings:
//     encrypted to the recipient's key or the gateway, signed) carrying
//     the signed checkpoint, and records registro.pubblicato. That entry
//     follows the head it publishes: the next checkpoint covers it.
//
// `anprsec history verify --checkpoint FILE` checks the signature of a
// checkpoint against the service key and that the chain, recomputed,
// still holds its hash at its number.
//
// What it protects against: whoever holds the store key can rewrite the
// chain (change an entry and recompute every hash after it, so that plain
// `history verify` passes); the hash of a checkpoint published before the
// rewrite no longer matches, and he cannot sign a new one without the
// service key. What it does not protect against: whoever holds both the
// store key and the service key can sign a checkpoint of the rewritten
// chain and replace the files in the drop; the copies already mailed to
// registro.destinatari, or kept elsewhere, stay, and still show the
// rewrite.
var registroJob = Job{
	Name:        "registro",
	Description: "firma la testa della catena dello storico con la chiave del servizio e la pubblica in sicurezza/registro/ (e la invia a registro.destinatari)",
	Run:         runRegistro,
}

// Checkpoint is the head of the history chain at one time.
type Checkpoint struct {
	Seq  uint64
	Hash string    // lowercase hex, 64 digits
	Time time.Time // of entry Seq (of the reading, for an empty history), UTC
}

// checkpointTitle is the first line of a checkpoint's text.
const checkpointTitle = "anprsec - registro della storia"

// Text is the text of the checkpoint that is signed.
func (c Checkpoint) Text() []byte {
	return fmt.Appendf(nil, "%s\nsequenza: %d\nhash: %s\nora: %s\n",
		checkpointTitle, c.Seq, c.Hash, c.Time.UTC().Format(time.RFC3339))
}

// ParseCheckpoint reads the text of a checkpoint: the title line, then
// "key: value" lines, "sequenza", "hash" and "ora" each exactly once
// (other keys are ignored).
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	lines := strings.Split(strings.ReplaceAll(strings.TrimRight(string(text), "\r\n"), "\r\n", "\n"), "\n")
	if len(lines) == 0 || lines[0] != checkpointTitle {
		return Checkpoint{}, fmt.Errorf("non è un registro della storia (prima riga %q)", lines[0])
	}
	var c Checkpoint
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			return Checkpoint{}, fmt.Errorf("riga %q: attesa chiave: valore", l)
		}
		if seen[k] {
			return Checkpoint{}, fmt.Errorf("%q compare due volte", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "sequenza":
			c.Seq, err = strconv.ParseUint(v, 10, 64)
		case "hash":
			if b, herr := hex.DecodeString(v); herr != nil || len(b) != sha256.Size || v != strings.ToLower(v) {
				err = errors.New("atteso un hash SHA-256 in esadecimale")
			}
			c.Hash = v
		case "ora":
			c.Time, err = time.Parse(time.RFC3339, v)
		}
		if err != nil {
			return Checkpoint{}, fmt.Errorf("%s %q: %v", k, v, err)
		}
	}
	for _, k := range []string{"sequenza", "hash", "ora"} {
		if !seen[k] {
			return Checkpoint{}, fmt.Errorf("manca %q", k)
		}
	}
	return c, nil
}

// VerifyCheckpoint checks that data holds a checkpoint signed by a key of
// keyring (the service's public key) and reads its signed text; anything
// around the signed message is ignored. A signature error wraps those of
// pgp.VerifyClearSigned.
func VerifyCheckpoint(data []byte, keyring openpgp.EntityList) (Checkpoint, error) {
	text, _, err := pgp.VerifyClearSigned(keyring, data)
	if err != nil {
		return Checkpoint{}, err
	}
	return ParseCheckpoint(text)
}

func runRegistro(ctx context.Context, env *Env, run *Run) error {
	signer, err := pgp.ReadSecretFile(env.Config.Path(env.Config.Keys.Service))
	if err != nil {
		return fmt.Errorf("registro: chiave del servizio (keys.service): %w", err)
	}
	var to []string
	for _, a := range env.Config.Registro.Destinatari {
		addr, err := netmail.ParseAddress(a)
		if err != nil {
			return fmt.Errorf("registro: registro.destinatari %q: %w", a, err)
		}
		to = append(to, addr.Address)
	}
	head, err := env.Store.HistoryHead()
	if err != nil {
		return fmt.Errorf("registro: %w", err)
	}
	// What the checkpoint names must survive a crash of this process.
	if err := env.Store.Sync(); err != nil {
		return fmt.Errorf("registro: %w", err)
	}
	var now time.Time
	if err := env.Store.View(func(tx *store.Tx) error { now = tx.Now; return nil }); err != nil {
		return err
	}
	cp := Checkpoint{Seq: head.Seq, Hash: hex.EncodeToString(head.Hash), Time: head.Time.UTC()}
	if head.Seq == 0 {
		cp.Time = now.Truncate(time.Second)
	}
	signed, err := pgp.ClearSign(cp.Text(), signer)
	if err != nil {
		return fmt.Errorf("registro: %w", err)
	}
	day := now.In(env.Loc)
	name := RegistroFileName(day)
	if err := env.Drop.Write(ctx, name, bytes.NewReader(signed)); err != nil {
		return fmt.Errorf("registro: scrittura di %s: %w", name, err)
	}
	run.Set("sequenza", int(cp.Seq))
	queued := 0
	err = env.Store.Update(func(tx *store.Tx) error {
		queued = 0
		for _, addr := range to {
			who := sha256.Sum256([]byte(strings.ToLower(addr)))
			m := &store.Mail{
				ID:   fmt.Sprintf("registro/%s/%d/%x", day.Format("20060102"), cp.Seq, who[:5]),
				Kind: store.MailAvviso, To: addr,
				Subject: "ANPR - registro della storia del " + day.Format("02/01/2006"),
				Text:    registroMailText(name, signed),
			}
			ok, err := tx.QueueMail(m)
			if err != nil {
				return err
			}
			if ok {
				queued++
			}
		}
		detail := fmt.Sprintf("registro della storia alla voce %d (hash %s) pubblicato in %s", cp.Seq, cp.Hash, name)
		if queued > 0 {
			detail += fmt.Sprintf("; messaggi in coda: %d", queued)
		}
		return tx.Record(store.Source{Actor: RegistroActor}, "registro.pubblicato", "registro", strconv.FormatUint(cp.Seq, 10), detail)
	})
	if err != nil {
		return fmt.Errorf("registro: %w", err)
	}
	run.Add("destinatari", queued)
	return nil
}

// registroMailText is the body of the message that carries a checkpoint:
// a short explanation, then the signed checkpoint as published.
func registroMailText(name string, signed []byte) string {
	return `Registro della storia di anprsec: copia del punto di controllo pubblicato
in ` + name + `, firmato con la chiave del servizio.

Conservi questo messaggio. Salvato in un file il testo firmato qui sotto,
"anprsec history verify --checkpoint FILE" controlla che la storia non sia
stata riscritta dopo questo punto; "gpg --verify FILE" ne controlla la firma.

` + string(signed)
}
