package store

import (
	"errors"
	"fmt"
	"time"
)

// Key layout of card orders and of the mail outbox:
//
//	co/<name>                  card order   i/co-pending/<name> while pending
//	o/<id>                     outgoing mail   i/o-st/<state>/<id>
//
// A card order is created in the same transaction that seals the secrets
// of its cards; the mail of a card's second halves in the same transaction
// as the state change that causes it (a transactional outbox).

// OrderState is the state of a card order.
type OrderState string

// States of a card order.
const (
	OrderPending   OrderState = "pending"   // committed, file not yet published
	OrderPublished OrderState = "published" // file written to produttore/ordini/
)

// CardOrder is one order file to the card producer.
type CardOrder struct {
	Name      string     `json:"name"` // file name, ordine-<YYYYMMDD-HHMMSS>.csv.pgp
	Serials   []string   `json:"serials"`
	State     OrderState `json:"state"`
	Created   time.Time  `json:"created"`
	Published time.Time  `json:"published,omitempty"`
	File      string     `json:"file,omitempty"` // drop path once published
	// Data is the order file as first built (encrypted to the producer),
	// kept until it is published so that every attempt writes the same
	// bytes; Included are the serials in it.
	Data     []byte   `json:"data,omitempty"`
	Included []string `json:"included,omitempty"`
}

func orderIndexes(o *CardOrder) []string {
	if o.State == OrderPending {
		return []string{"i/co-pending/" + o.Name}
	}
	return nil
}

// CardOrder returns an order by file name.
func (tx *Tx) CardOrder(name string) (*CardOrder, error) {
	var o CardOrder
	return &o, tx.get("co/"+name, &o)
}

// PutCardOrder stores an order and keeps the index of pending ones.
func (tx *Tx) PutCardOrder(o *CardOrder) error {
	var old []string
	if prev, err := tx.CardOrder(o.Name); err == nil {
		old = orderIndexes(prev)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.setIndexes(old, orderIndexes(o)); err != nil {
		return err
	}
	return tx.set("co/"+o.Name, o)
}

// NewCardOrder creates a pending order named after at in loc
// (ordine-<YYYYMMDD-HHMMSS>.csv.pgp); when the name is taken the next free
// second is used.
func (tx *Tx) NewCardOrder(at time.Time, loc *time.Location, serials []string) (*CardOrder, error) {
	if loc == nil {
		loc = time.UTC
	}
	t := at.In(loc).Truncate(time.Second)
	for {
		o := &CardOrder{Name: "ordine-" + t.Format(BundleStampLayout) + ".csv.pgp", Serials: serials, State: OrderPending, Created: at.UTC()}
		ok, err := tx.exists("co/" + o.Name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return o, tx.PutCardOrder(o)
		}
		t = t.Add(time.Second)
	}
}

// PendingCardOrders returns the names of the pending orders, oldest first.
func (tx *Tx) PendingCardOrders() ([]string, error) { return tx.indexTail("i/co-pending/") }

// MailState is the state of an outgoing message.
type MailState string

// States of an outgoing message.
const (
	MailQueued MailState = "queued" // waiting for (another) attempt
	MailSent   MailState = "sent"   // accepted by the SMTP server or written to the spool
	MailFailed MailState = "failed" // set aside: permanent refusal or too many attempts
)

// Mail kinds.
const (
	MailPIN    = "pin"    // the second halves of a card's secrets
	MailAvviso = "avviso" // a notice without secrets (expiry warnings): To, Subject and Text are in the record
	// MailFirstCert is a comune's first workstation certificate with its
	// password, to the ASC: built when sent from the postazione's sealed
	// P12 and password (Code).
	MailFirstCert = "primo-certificato"
)

// Mail is one message of the outbox. It holds no secret: a MailPIN message
// is built when it is sent, from the sealed record it points to (the card's
// SecondSealed); a MailAvviso one carries its own text.
type Mail struct {
	ID        string    `json:"id"`   // "pin/<serial>"
	Kind      string    `json:"kind"` // MailPIN
	Serial    string    `json:"serial,omitempty"`
	CF        string    `json:"cf,omitempty"`
	ISTAT     string    `json:"istat,omitempty"` // comune whose utenza gives the address
	State     MailState `json:"state"`
	Queued    time.Time `json:"queued"`
	Attempts  int       `json:"attempts,omitempty"`
	NextTry   time.Time `json:"next_try,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Sent      time.Time `json:"sent,omitempty"`
	To        string    `json:"to,omitempty"`  // address used by the last attempt (MailAvviso: the recipient)
	Key       string    `json:"key,omitempty"` // fingerprint of the encryption key used
	// MailAvviso only: the message, which holds no secret.
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text,omitempty"`
	// MailFirstCert only: the postazione whose certificate is sent.
	Code string `json:"code,omitempty"`
	// Campaign, for a notice of a security notice campaign: the notice
	// carries the user list of comune ISTAT kept with the campaign
	// (CampaignList).
	Campaign string `json:"campaign,omitempty"`
}

// FirstCertMailID is the outbox ID of the first-certificate message of
// postazione code.
func FirstCertMailID(code string) string { return MailFirstCert + "/" + code }

// PINMailID is the outbox ID of a card's second-halves message.
func PINMailID(serial string) string { return MailPIN + "/" + serial }

func mailIndexes(m *Mail) []string {
	return []string{"i/o-st/" + string(m.State) + "/" + m.ID}
}

// Mail returns a message of the outbox.
func (tx *Tx) Mail(id string) (*Mail, error) {
	var m Mail
	return &m, tx.get("o/"+id, &m)
}

// PutMail stores a message and keeps its state index.
func (tx *Tx) PutMail(m *Mail) error {
	var old []string
	if prev, err := tx.Mail(m.ID); err == nil {
		old = mailIndexes(prev)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.setIndexes(old, mailIndexes(m)); err != nil {
		return err
	}
	return tx.set("o/"+m.ID, m)
}

// QueueMail adds a message to the outbox, in the caller's transaction. A
// message with the same ID already queued or sent is left alone (a card's
// second halves go out once); a failed one is queued again.
func (tx *Tx) QueueMail(m *Mail) (queued bool, err error) {
	if m.ID == "" {
		return false, fmt.Errorf("store: mail without ID")
	}
	prev, err := tx.Mail(m.ID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return false, err
	case prev.State != MailFailed:
		return false, nil
	}
	m.State, m.Queued, m.Attempts, m.NextTry, m.LastError = MailQueued, tx.Now, 0, tx.Now, ""
	return true, tx.PutMail(m)
}

// MailsInState returns the IDs of the messages in a state, in ID order.
func (tx *Tx) MailsInState(st MailState) ([]string, error) {
	return tx.indexTail("i/o-st/" + string(st) + "/")
}
