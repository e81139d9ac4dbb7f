package jobs

import (
	"context"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/mail"
	"anprsec/pki"
	"anprsec/pki/pgp"
	"anprsec/secret"
	"anprsec/store"
)

// InvioActor is the history actor of the invio-pin job.
const InvioActor = "invio-pin"

// PINSubject is the subject of every second-halves message: generic, since
// the headers of a PGP/MIME message travel in clear.
const PINSubject = "ANPR - comunicazione riservata"

// smtpPasswordEnv names the environment variable that may hold the SMTP
// password instead of mail.smtp.password_file.
const smtpPasswordEnv = "ANPRSEC_SMTP_PASSWORD"

// maxRetryWait caps the wait between two attempts of a message.
const maxRetryWait = 6 * time.Hour

// invioJob sends the queued second halves (docs/rules.md#card-secrets),
// the first certificate of each comune to its ASC (store.MailFirstCert,
// firstcert.go, docs/rules.md#the-first-certificate), and the notices of
// the outbox (store.MailAvviso: expiry warnings of the scadenze job, the
// notices of a security notice campaign with the comune's user list
// attached, sent the same way from the text in their record).
// For each second-halves message of the outbox whose time has come:
//
//  1. the card's second halves are unsealed and put in a plain Italian text
//     (serial, the three halves, and the warning that the Ministry never
//     asks for credentials by phone or e-mail);
//  2. the text is a PGP/MIME message (RFC 3156) encrypted to the holder's
//     own key when keys.holders has one for the holder's e-mail, otherwise
//     to the mail gateway (keys.gateway), always signed by keys.service;
//     Subject generic, Message-ID stable per card (pin-<serial>@<domain of
//     mail.from>), Date = when it was queued, so a repeated send is the same
//     message;
//  3. it goes through SMTP (mail.smtp.address) or, without a server, to the
//     spool folder (mail.spool);
//  4. then one transaction marks it sent and erases the sealed second halves
//     from the card, with a history entry. A crash between 3 and 4 sends the
//     same message again (same Message-ID), never different secrets.
//
// A server that cannot be reached or refuses the connection (TLS, AUTH)
// fails the run and leaves every message as it was: it is the service's
// problem, not the message's. A temporary failure of one message (4xx, a
// timeout) is retried after mail.retry, doubled at each attempt (at most
// 6h); a permanent one (5xx, a holder's key that cannot be used, no
// address) or mail.max_attempts attempts set the message aside as failed,
// with the reason in the history.
var invioJob = Job{
	Name:        "invio-pin",
	Description: "invia per e-mail, cifrati OpenPGP (PGP/MIME) e firmati, le seconde metà in coda di PIN/PUK/password delle smart card, il primo certificato di ogni comune al suo sindaco e gli avvisi",
	Run:         runInvio,
}

// MailSender returns the sender of the configuration: SMTP when
// mail.smtp.address is set, else the spool folder.
func MailSender(env *Env) (mail.Sender, error) {
	if env.Mailer != nil {
		return env.Mailer, nil
	}
	mc := env.Config.Mail
	if mc.SMTP.Address == "" {
		return mail.Spool{Dir: env.Config.Path(mc.Spool)}, nil
	}
	host, portStr, err := net.SplitHostPort(mc.SMTP.Address)
	if err != nil {
		return nil, fmt.Errorf("mail.smtp.address %q: atteso host:porta", mc.SMTP.Address)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("mail.smtp.address %q: porta non valida", mc.SMTP.Address)
	}
	policy, err := mail.ParseTLSPolicy(mc.SMTP.TLS)
	if err != nil {
		return nil, err
	}
	s := &mail.SMTP{Host: host, Port: port, Username: mc.SMTP.Username, TLS: policy, Timeout: mc.SMTP.Timeout}
	if s.Username != "" {
		switch {
		case os.Getenv(smtpPasswordEnv) != "":
			s.Password = os.Getenv(smtpPasswordEnv)
		case mc.SMTP.PasswordFile != "":
			p := env.Config.Path(mc.SMTP.PasswordFile)
			if err := secret.CheckFile(p); err != nil {
				return nil, err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			s.Password = strings.TrimRight(string(b), "\r\n")
		default:
			return nil, fmt.Errorf("mail.smtp.username è impostato ma mancano sia mail.smtp.password_file sia %s", smtpPasswordEnv)
		}
	}
	return s, nil
}

// pinMessage is what one message needs, read in one View.
type pinMessage struct {
	m      store.Mail
	card   domain.SmartCard
	person domain.Person
	email  string
	reason string // why it cannot be sent (set aside as failed)
	// station is the postazione of a first-certificate message.
	station domain.Postazione
}

func runInvio(ctx context.Context, env *Env, run *Run) error {
	if env.Sealer == nil {
		return errors.New("invio-pin: manca la chiave di sigillo (keys.seal; eseguire `anprsec init`)")
	}
	due, err := dueIDs(env)
	if err != nil || len(due) == 0 {
		return err
	}
	kit, err := loadInvioKit(env, run)
	if err != nil {
		return err
	}
	// Messages are read from the store a chunk at a time (dueChunk) and
	// composed, encrypted and sent by a few workers at once (one SMTP
	// session each, kept across messages and dialled again after a
	// failure); their outcomes are recorded in batches, one transaction
	// each. A message accepted by the server but not yet recorded when the
	// process dies is sent again, identical (same Message-ID, same Date).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var readErr error
	outcomes := sendAll(ctx, env, kit, due, &readErr)
	t := &invioTally{env: env, run: run, cancel: cancel}
	for o := range outcomes {
		t.take(o)
	}
	if readErr != nil {
		t.errs = append(t.errs, readErr)
	}
	return t.finish()
}

// dueChunk is the number of messages read from the store at a time: an
// Italy-wide run sends some 100,000, each read with its card and holder.
const dueChunk = 256

// dueIDs lists, in one View, the queued messages whose time has come, in
// ID order.
func dueIDs(env *Env) ([]string, error) {
	var due []string
	err := env.Store.View(func(tx *store.Tx) error {
		ids, err := tx.MailsInState(store.MailQueued)
		if err != nil {
			return err
		}
		sort.Strings(ids)
		for _, id := range ids {
			m, err := tx.Mail(id)
			if err != nil {
				return err
			}
			if !m.NextTry.After(tx.Now) {
				due = append(due, id)
			}
		}
		return nil
	})
	return due, err
}

// dueMessages reads, in one View, the messages ids still queued, each with
// what it needs or the reason it cannot be sent.
func dueMessages(env *Env, ids []string) ([]pinMessage, error) {
	due := make([]pinMessage, 0, len(ids))
	err := env.Store.View(func(tx *store.Tx) error {
		for _, id := range ids {
			m, err := tx.Mail(id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if m.State != store.MailQueued {
				continue
			}
			pm, err := readMessage(tx, m)
			if err != nil {
				return err
			}
			due = append(due, pm)
		}
		return nil
	})
	return due, err
}

// readMessage is what message m needs: a notice its recipient and text, a
// second-halves message the card, the holder and the holder's e-mail.
func readMessage(tx *store.Tx, m *store.Mail) (pinMessage, error) {
	pm := pinMessage{m: *m}
	switch m.Kind {
	case store.MailAvviso:
		pm.email = m.To
		if pm.email == "" || m.Text == "" {
			pm.reason = "avviso senza destinatario o senza testo"
		}
		return pm, nil
	case store.MailPIN:
		return readPINMessage(tx, pm)
	case store.MailFirstCert:
		return readFirstCertMessage(tx, pm)
	default:
		pm.reason = "tipo di messaggio sconosciuto: " + m.Kind
		return pm, nil
	}
}

// readPINMessage fills a second-halves message: the card (known, not
// revoked, with second halves to send), the holder, the holder's e-mail.
func readPINMessage(tx *store.Tx, pm pinMessage) (pinMessage, error) {
	m := &pm.m
	c, err := tx.Card(m.Serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		pm.reason = "smart card sconosciuta"
	case err != nil:
		return pm, err
	case c.State == domain.CardRevocata:
		pm.reason = "smart card revocata"
	case len(c.SecondSealed) == 0:
		pm.reason = "nessuna seconda metà da inviare"
	default:
		pm.card = *c
	}
	if p, err := tx.Person(m.CF); err == nil {
		pm.person = *p
	}
	if pm.reason != "" {
		return pm, nil
	}
	home, email, err := lifecycle.HolderAddress(tx, c)
	if err != nil {
		return pm, err
	}
	if pm.email = email; email == "" {
		pm.reason = "il comune di riferimento della smart card (" + home + ") non ha registrato un indirizzo e-mail del titolare"
	}
	return pm, nil
}

// invioKit is what every message is sent with: the service's signing key,
// the gateway's and the holders' keys, the sender and the From address.
type invioKit struct {
	signer  *openpgp.Entity
	gateway openpgp.EntityList
	holders *pgp.KeyDir
	sender  mail.Sender
	from    *netmail.Address
}

// loadInvioKit reads the keys and the mail configuration; an unusable
// file among the holders' keys is logged, not fatal.
func loadInvioKit(env *Env, run *Run) (*invioKit, error) {
	var k invioKit
	var err error
	if k.signer, err = pgp.ReadSecretFile(env.Config.Path(env.Config.Keys.Service)); err != nil {
		return nil, fmt.Errorf("invio-pin: chiave del servizio (keys.service): %w", err)
	}
	if k.gateway, err = pgp.ReadPublicFile(env.Config.Path(env.Config.Keys.Gateway)); err != nil {
		return nil, fmt.Errorf("invio-pin: chiave del gateway (keys.gateway): %w", err)
	}
	if k.sender, err = MailSender(env); err != nil {
		return nil, fmt.Errorf("invio-pin: %w", err)
	}
	if k.from, err = netmail.ParseAddress(env.Config.Mail.From); err != nil {
		return nil, fmt.Errorf("invio-pin: mail.from: %w", err)
	}
	holders, warnings, err := pgp.OpenKeyDir(env.Config.Path(env.Config.Keys.Holders))
	for _, w := range warnings {
		run.Log.Warn("invio-pin: unusable key file among the holders' keys", "err", w)
	}
	if err != nil {
		return nil, fmt.Errorf("invio-pin: %w", err)
	}
	k.holders = holders
	return &k, nil
}

// sendAll reads the messages due, dueChunk at a time, hands them to the
// workers and returns their outcomes, closed once every worker is done; a
// cancelled ctx stops handing out messages, and so does an error reading
// them, left in *readErr (set before the outcomes are closed).
func sendAll(ctx context.Context, env *Env, kit *invioKit, due []string, readErr *error) <-chan attempt {
	work := make(chan *pinMessage)
	outcomes := make(chan attempt)
	workers := 4 * runtime.NumCPU()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendWorker(ctx, env, kit, work, outcomes)
		}()
	}
	go func() {
		defer close(work)
		for len(due) > 0 {
			ids := due[:min(len(due), dueChunk)]
			due = due[len(ids):]
			msgs, err := dueMessages(env, ids)
			if err != nil {
				*readErr = err
				return
			}
			for i := range msgs {
				select {
				case work <- &msgs[i]:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	go func() { wg.Wait(); close(outcomes) }()
	return outcomes
}

// sendWorker sends the messages of work, over one SMTP session of its own
// when the sender is SMTP.
func sendWorker(ctx context.Context, env *Env, kit *invioKit, work <-chan *pinMessage, outcomes chan<- attempt) {
	snd := kit.sender
	if sm, ok := kit.sender.(*mail.SMTP); ok {
		ss := sm.Session(ctx) // one connection for the worker's messages
		defer ss.Close()
		snd = ss
	}
	for pm := range work {
		outcomes <- sendOne(ctx, env, pm, kit.holders, kit.gateway, kit.signer, snd, kit.from)
	}
}

// invioTally counts the outcomes of a run and records them in batches of
// invioBatch, one transaction each.
type invioTally struct {
	env         *Env
	run         *Run
	cancel      context.CancelFunc
	errs        []error
	unavailable error
	batch       []attempt
}

// invioBatch is the number of outcomes recorded per transaction.
const invioBatch = 64

// take counts outcome o and queues it for recording, unless it is no
// attempt (the server was unavailable).
func (t *invioTally) take(o attempt) {
	if !t.count(o) {
		return
	}
	t.batch = append(t.batch, o)
	if len(t.batch) == invioBatch {
		t.flush()
	}
}

// count adds outcome o to the run's figures and logs; false when o is no
// attempt of the message, which stays queued as it was.
func (t *invioTally) count(o attempt) bool {
	var me *mail.Error
	switch {
	case errors.As(o.sendErr, &me) && me.Op == "connect":
		// The server cannot be reached or refuses us (TLS, AUTH): a
		// problem of the service, not of this message, which stays
		// queued as it was. The run stops sending and fails.
		if t.unavailable == nil {
			t.unavailable = o.sendErr
			t.run.Add("server_unavailable", 1)
			t.cancel()
		}
		return false
	case o.aside != "":
		t.run.Add("failed", 1)
	case o.sendErr == nil:
		t.run.Add("sent", 1)
	case errors.Is(o.sendErr, context.Canceled) && t.unavailable != nil:
		return false // stopped by the unavailable server: not an attempt
	case mail.Temporary(o.sendErr):
		t.run.Add("retry", 1)
		t.run.Log.Warn("invio-pin: temporary failure, retrying later", "id", o.pm.m.ID, "err", o.sendErr)
	default:
		t.run.Add("failed", 1)
		t.run.Log.Error("invio-pin: message set aside", "id", o.pm.m.ID, "err", o.sendErr)
	}
	return true
}

// flush records the queued outcomes in one transaction.
func (t *invioTally) flush() {
	if len(t.batch) == 0 {
		return
	}
	if err := recordAttempts(t.env, t.batch); err != nil {
		t.errs = append(t.errs, err)
	}
	t.batch = t.batch[:0]
}

// finish records what is left and returns the run's errors.
func (t *invioTally) finish() error {
	t.flush()
	if t.unavailable != nil {
		t.errs = append(t.errs, fmt.Errorf("invio-pin: server di posta non disponibile, messaggi lasciati in coda: %w", t.unavailable))
	}
	return errors.Join(t.errs...)
}

// attempt is the outcome of one message: set aside before sending (aside),
// or sent with sendErr.
type attempt struct {
	pm      *pinMessage
	fp      string
	aside   string
	sendErr error
}

// sendOne composes, encrypts, signs and sends one message.
func sendOne(ctx context.Context, env *Env, pm *pinMessage, holders *pgp.KeyDir, gateway openpgp.EntityList, signer *openpgp.Entity, sender mail.Sender, from *netmail.Address) attempt {
	if pm.reason != "" {
		return attempt{pm: pm, aside: pm.reason}
	}
	key, err := holders.ForEmail(pm.email)
	if err != nil {
		return attempt{pm: pm, aside: err.Error()}
	}
	if len(key) == 0 {
		key = gateway
	}
	fp := pgp.Fingerprint(key[0])
	var raw []byte
	switch pm.m.Kind {
	case store.MailAvviso:
		var atts []mail.Attachment
		if atts, err = campaignAttachments(env, &pm.m); err != nil {
			return attempt{pm: pm, aside: err.Error()}
		}
		raw, err = composeAvviso(pm, from, key, signer, atts)
	case store.MailFirstCert:
		raw, err = composeFirstCert(env, pm, from, key, signer)
	default:
		raw, err = composePIN(env, pm, from, key, signer)
	}
	if err != nil {
		return attempt{pm: pm, aside: err.Error()}
	}
	if err := ctx.Err(); err != nil {
		return attempt{pm: pm, fp: fp, sendErr: err}
	}
	return attempt{pm: pm, fp: fp, sendErr: sender.Send(ctx, from.Address, []string{pm.email}, raw)}
}

// recordAttempts records a batch of outcomes in one transaction.
func recordAttempts(env *Env, batch []attempt) error {
	return env.Store.Update(func(tx *store.Tx) error {
		for _, o := range batch {
			var err error
			if o.aside != "" {
				err = setAsideTx(tx, o.pm.m.ID, o.aside)
			} else {
				err = recordAttemptTx(tx, env, o.pm, o.fp, o.sendErr)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// MessageDomain is the domain of the Message-IDs: that of mail.from.
func MessageDomain(from *netmail.Address) string {
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 {
		return from.Address[i+1:]
	}
	return "anprsec.invalid"
}

// PINMessageID is the stable Message-ID of a card's second-halves message.
func PINMessageID(serial string, from *netmail.Address) string {
	return "pin-" + serial + "@" + MessageDomain(from)
}

func composePIN(env *Env, pm *pinMessage, from *netmail.Address, key openpgp.EntityList, signer *openpgp.Entity) ([]byte, error) {
	plain, err := env.Sealer.Open(pm.card.SecondSealed, domain.CardSecretsSealContext(pm.card.Serial, "seconda"))
	if err != nil {
		return nil, fmt.Errorf("seconde metà della smart card %s: %w", pm.card.Serial, err)
	}
	h, err := pki.UnmarshalCardHalf(plain)
	clear(plain)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(pm.person.Name + " " + pm.person.Surname)
	text := PINText(name, pm.card.Serial, h)
	msg := &mail.Message{From: from.String(), To: pm.email, Subject: PINSubject,
		MessageID: PINMessageID(pm.card.Serial, from), Date: pm.m.Queued, Text: text}
	return mail.Compose(msg, func(inner []byte) ([]byte, error) { return pgp.EncryptSign(inner, key, signer) })
}

// AvvisoMessageID is the stable Message-ID of a notice of the outbox.
func AvvisoMessageID(id string, from *netmail.Address) string {
	return strings.NewReplacer("/", ".", "@", ".").Replace(id) + "@" + MessageDomain(from)
}

// campaignAttachments reads, when m is a notice of a campaign, the user
// list it carries (docs/rules.md#security-notice-campaign): read message by
// message, so a run over every comune never holds every list at once.
func campaignAttachments(env *Env, m *store.Mail) ([]mail.Attachment, error) {
	if m.Campaign == "" {
		return nil, nil
	}
	var atts []mail.Attachment
	err := env.Store.View(func(tx *store.Tx) error {
		l, err := tx.CampaignList(m.Campaign, m.ISTAT)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("elenco degli utenti del comune %s non trovato nella campagna %s", m.ISTAT, m.Campaign)
		}
		if err != nil {
			return err
		}
		atts = ListAttachments(l)
		return nil
	})
	return atts, err
}

func composeAvviso(pm *pinMessage, from *netmail.Address, key openpgp.EntityList, signer *openpgp.Entity, atts []mail.Attachment) ([]byte, error) {
	msg := &mail.Message{From: from.String(), To: pm.email, Subject: pm.m.Subject,
		MessageID: AvvisoMessageID(pm.m.ID, from), Date: pm.m.Queued, Text: pm.m.Text, Attachments: atts}
	return mail.Compose(msg, func(inner []byte) ([]byte, error) { return pgp.EncryptSign(inner, key, signer) })
}

// ListAttachments are the files of a campaign notice: the comune's user
// list as xlsx and as CSV (base names).
func ListAttachments(l *store.CampaignList) []mail.Attachment {
	base := func(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
	return []mail.Attachment{
		{Name: base(l.XLSXName), ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Data: l.XLSX},
		{Name: base(l.CSVName), ContentType: "text/csv", Data: l.CSV},
	}
}

// PINText is the body of a second-halves message (plain Italian).
func PINText(name, serial string, h pki.CardHalf) string {
	greeting := "Gentile titolare,"
	if name != "" {
		greeting = "Gentile " + name + ","
	}
	return greeting + `

le inviamo la seconda metà dei codici della smart card n. ` + serial + `
per l'accesso ad ANPR. La prima metà è nella busta sigillata che ha
ricevuto con la carta.

  PIN, seconda metà:       ` + h.PIN + `
  PUK, seconda metà:       ` + h.PUK + `
  Password, seconda metà:  ` + h.Password + `

Ogni codice completo si ottiene scrivendo prima la metà della busta e
poi la metà di questo messaggio. Conservi i codici separati dalla carta
e non li comunichi a nessuno.

Il Ministero dell'Interno non chiede mai credenziali, PIN, PUK o
password per telefono o per posta elettronica: non risponda a richieste
di questo tipo e le segnali al suo Amministratore Locale della Sicurezza.

Messaggio automatico, non rispondere.
`
}

// recordAttempt stores the outcome of one attempt: sent (second halves
// erased), or retried later, or set aside.
func recordAttemptTx(tx *store.Tx, env *Env, pm *pinMessage, fp string, sendErr error) error {
	src := store.Source{Actor: InvioActor}
	return func() error {
		m, err := tx.Mail(pm.m.ID)
		if err != nil {
			return err
		}
		if m.State != store.MailQueued {
			return nil
		}
		m.Attempts++
		m.To, m.Key = pm.email, fp
		if sendErr == nil {
			m.State, m.Sent, m.LastError, m.NextTry = store.MailSent, tx.Now, "", time.Time{}
			if err := tx.PutMail(m); err != nil {
				return err
			}
			if m.Kind == store.MailAvviso {
				return tx.Record(src, "mail.inviata", "mail", m.ID, fmt.Sprintf("%q inviato a %s, cifrato per la chiave %s", m.Subject, pm.email, fp))
			}
			if m.Kind == store.MailFirstCert {
				return tx.Record(src, "postazione.primo-certificato-inviato", "postazione", m.Code,
					fmt.Sprintf("P12 e password inviati al sindaco (ASC) a %s, cifrati per la chiave %s", pm.email, fp))
			}
			c, err := tx.Card(m.Serial)
			if err != nil {
				return err
			}
			c.SecondSealed, c.Updated = nil, tx.Now
			if err := tx.PutCard(c); err != nil {
				return err
			}
			return tx.Record(src, "smartcard.seconde-meta-inviate", "smartcard", c.Serial,
				fmt.Sprintf("inviate a %s, cifrate per la chiave %s; seconde metà cancellate", pm.email, fp))
		}
		m.LastError = sendErr.Error()
		if mail.Temporary(sendErr) && m.Attempts < env.Config.Mail.MaxAttempts {
			wait := env.Config.Mail.Retry << (m.Attempts - 1)
			if wait > maxRetryWait || wait <= 0 {
				wait = maxRetryWait
			}
			m.NextTry = tx.Now.Add(wait)
			if err := tx.PutMail(m); err != nil {
				return err
			}
			return tx.Record(src, "mail.riprova", "mail", m.ID, fmt.Sprintf("tentativo %d non riuscito, nuovo tentativo dopo le %s: %v", m.Attempts, m.NextTry.Format(time.RFC3339), sendErr))
		}
		m.State = store.MailFailed
		if err := tx.PutMail(m); err != nil {
			return err
		}
		return tx.Record(src, "mail.fallita", "mail", m.ID, fmt.Sprintf("messaggio messo da parte dopo %d tentativi: %v", m.Attempts, sendErr))
	}()
}

// setAsideTx marks a message failed without an attempt, with the reason.
func setAsideTx(tx *store.Tx, id, reason string) error {
	m, err := tx.Mail(id)
	if err != nil {
		return err
	}
	if m.State != store.MailQueued {
		return nil
	}
	m.State, m.LastError = store.MailFailed, reason
	if err := tx.PutMail(m); err != nil {
		return err
	}
	return tx.Record(store.Source{Actor: InvioActor}, "mail.fallita", "mail", m.ID, "messaggio messo da parte: "+reason)
}
