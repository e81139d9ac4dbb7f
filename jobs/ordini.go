package jobs

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/domain"
	"anprsec/pki"
	"anprsec/pki/pgp"
	"anprsec/store"
)

// OrdiniActor is the history actor of the ordini-sc job.
const OrdiniActor = "ordini-sc"

// OrdiniDir is the drop folder of the card orders.
const OrdiniDir = "produttore/ordini"

// OrderHeader is the header of the CSV inside an order (docs/rules.md#card-secrets).
var OrderHeader = []string{"Seriale", "Codice Fiscale", "Cognome", "Nome", "Codice ISTAT", "Comune", "Prefettura",
	"PIN (prima metà)", "PUK (prima metà)", "Password (prima metà)"}

// ordiniJob sends card orders to the producer (docs/rules.md#card-lifecycle,
// docs/rules.md#card-secrets), in two steps that each survive a crash,
// once the drop has shown it takes files in produttore/ordini/
// (checkWayOut; else the run stops at once, having drawn and committed
// nothing). The orders a crash left pending are published first; then
// each new order is published as soon as it is made:
//
//  1. The cards in RICHIESTA not yet in an order get their secrets from
//     crypto/rand, split in halves and sealed
//     (domain.CardSecretsSealContext), and go into new pending orders of
//     at most cards.order_max cards, each order committed on its own (in
//     transactions of at most orderTxCards cards).
//  2. A pending order is built from the store: a CSV with the first
//     halves, OpenPGP-encrypted to the producer (keys.producer) and signed
//     by the service key (keys.service), written
//     atomically as produttore/ordini/ordine-<YYYYMMDD-HHMMSS>.csv.pgp. The
//     encrypted file is kept with the pending order, so a second attempt
//     writes the same bytes. Then, in one transaction, the order is published and its cards are IN
//     PRODUZIONE, with their expiry (cards.validity_days) and their first
//     halves erased; the second halves stay sealed until their e-mail.
var ordiniJob = Job{
	Name:        "ordini-sc",
	Description: "ordina al produttore le smart card richieste: un CSV cifrato OpenPGP e firmato ogni cards.order_max smart card, con le prime metà di PIN/PUK/password",
	Run:         runOrdini,
}

func runOrdini(ctx context.Context, env *Env, run *Run) error {
	if env.Sealer == nil {
		return errors.New("ordini-sc: manca la chiave di sigillo (keys.seal; eseguire `anprsec init`)")
	}
	signer, err := pgp.ReadSecretFile(env.Config.Path(env.Config.Keys.Service))
	if err != nil {
		return fmt.Errorf("ordini-sc: chiave del servizio (keys.service): %w", err)
	}
	producer, err := pgp.ReadPublicFile(env.Config.Path(env.Config.Keys.Producer))
	if err != nil {
		return fmt.Errorf("ordini-sc: chiave del produttore (keys.producer): %w", err)
	}
	if busy, err := ordersToPublish(env); err != nil {
		return err
	} else if busy {
		if err := checkWayOut(ctx, env, OrdiniActor, OrdiniDir); err != nil {
			return err
		}
	}
	var pending []string
	if err := env.Store.View(func(tx *store.Tx) error {
		pending, err = tx.PendingCardOrders()
		return err
	}); err != nil {
		return err
	}
	var errs []error
	publish := func(name string, cards *store.CardCache, names map[string]*store.PersonName) {
		if err := publishOrder(ctx, env, run, name, producer, signer, cards, names); err != nil {
			errs = append(errs, fmt.Errorf("ordini-sc: %s: %w", name, err))
		}
	}
	for _, name := range pending {
		if err := ctx.Err(); err != nil {
			return err
		}
		publish(name, store.NewCardCache(), nil)
	}
	if err := newOrders(ctx, env, run, publish); err != nil {
		return errors.Join(append(errs, err)...)
	}
	return errors.Join(errs...)
}

// ordersToPublish reports whether the run has an order to publish: cards
// requested (perhaps already in a pending order) or a pending order.
func ordersToPublish(env *Env) (bool, error) {
	busy := false
	err := env.Store.View(func(tx *store.Tx) error {
		requested, err := tx.CardsInState(domain.CardRichiesta)
		if err != nil {
			return err
		}
		pending, err := tx.PendingCardOrders()
		busy = len(requested) > 0 || len(pending) > 0
		return err
	})
	return busy, err
}

// newOrders puts the requested cards that are in no order yet into new
// pending orders of at most cards.order_max cards each, with their secrets
// sealed: every requested card is ordered in one run, each order committed
// in its own transactions (Badger bounds a transaction's size) and handed
// to publish, with the cards as the order's transactions left them, before
// the next is made, so a crash keeps the orders already made and the next
// run orders the rest. A run that makes more than one order reads the
// names of the holders of every requested card at its start, in one pass
// (holderNames), for the orders' files.
func newOrders(ctx context.Context, env *Env, run *Run, publish func(name string, cards *store.CardCache, names map[string]*store.PersonName)) error {
	var serials []string
	var names map[string]*store.PersonName
	err := env.Store.View(func(tx *store.Tx) error {
		var err error
		if serials, err = tx.CardsInState(domain.CardRichiesta); err != nil {
			return err
		}
		if len(serials) > env.Config.Cards.OrderMax {
			names, err = holderNames(tx, serials)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(serials)
	for len(serials) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		cards := store.NewCardCache() // the order's cards, decoded once
		var name string
		if serials, name, err = newOrder(env, run, serials, cards); err != nil {
			return err
		}
		if name != "" {
			publish(name, cards, names)
		}
	}
	return nil
}

// orderTxCards is the most cards one transaction of ordini-sc writes:
// every card written is its record, its indexes and a history entry, and
// Badger bounds a transaction (a fifth of cards.order_max's default did
// not fit in one). An order larger than this is created, and later
// published, in several transactions (see newOrder and commitOrder).
var orderTxCards = 500

// holderNames returns the names of the holders of the cards of serials,
// by codice fiscale: the holders from the index of the cards by holder,
// their names in one walk of the persons in key order, instead of a point
// read of each in each order.
func holderNames(tx *store.Tx, serials []string) (map[string]*store.PersonName, error) {
	holders, err := tx.CardHolders(serials)
	if err != nil {
		return nil, err
	}
	cfs := make([]string, 0, len(holders))
	for _, cf := range holders {
		cfs = append(cfs, cf)
	}
	return tx.PersonNamesByCF(cfs, true)
}

// newOrder puts the first cards of serials (requested ones, in serial
// order) that are still RICHIESTA and in no order, at most
// cards.order_max of them, into one new pending order, with their secrets
// sealed, and returns the serials it did not look at and the order's name
// ("" when it made none): first the order with its serials, then,
// orderTxCards at a time, each card with its sealed secrets and the
// order's name. A card is in the order only once it names it: a crash
// between the transactions leaves the order with fewer cards (its file
// holds only the cards that name it, see buildOrder) and the others in no
// order, for the next run. Every card is read again in each transaction
// that writes it, so a card changed meanwhile is left out; cards
// remembers them as read and written.
func newOrder(env *Env, run *Run, serials []string, cards *store.CardCache) ([]string, string, error) {
	src := store.Source{Actor: OrdiniActor}
	o, in, rest, err := openOrder(env, src, serials, cards)
	if err != nil || o == nil {
		return rest, "", err
	}
	// Secrets drawn and sealed outside the transactions.
	first := make(map[string][]byte, len(in))
	second := make(map[string][]byte, len(in))
	for _, s := range in {
		sec, err := pki.NewCardSecrets()
		if err != nil {
			return nil, "", err
		}
		a, b := sec.Split()
		first[s] = env.Sealer.Seal(a.Marshal(), domain.CardSecretsSealContext(s, "prima"))
		second[s] = env.Sealer.Seal(b.Marshal(), domain.CardSecretsSealContext(s, "seconda"))
	}
	for len(in) > 0 {
		chunk := in[:min(len(in), orderTxCards)]
		in = in[len(chunk):]
		n := 0
		err := env.Store.Update(func(tx *store.Tx) error {
			n = 0
			cs, err := tx.ReadCards(chunk, cards)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.State != domain.CardRichiesta || c.Order != "" {
					continue // changed since it was read: not in the order's file
				}
				next := *c
				next.FirstSealed, next.SecondSealed = first[c.Serial], second[c.Serial]
				next.Order, next.Updated = o.Name, tx.Now
				if err := tx.PutReadCard(c, &next, cards); err != nil {
					return err
				}
				if err := tx.Record(src, "smartcard.ordine", "smartcard", c.Serial, "segreti generati e sigillati; nell'ordine "+o.Name); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		run.Add("cards_ordered", n)
		if err != nil {
			return nil, "", err
		}
	}
	return rest, o.Name, nil
}

// openOrder commits a new pending order with the first cards of serials
// still RICHIESTA and in no order, at most cards.order_max of them, read
// in the order's transaction, and returns it (nil when no card is left)
// with its serials and the serials it did not look at.
func openOrder(env *Env, src store.Source, serials []string, cards *store.CardCache) (o *store.CardOrder, in, rest []string, err error) {
	limit := env.Config.Cards.OrderMax
	err = env.Store.Update(func(tx *store.Tx) error {
		o, in, rest = nil, nil, serials
		for len(in) < limit && len(rest) > 0 {
			look := rest[:min(len(rest), limit-len(in))]
			rest = rest[len(look):]
			cs, err := tx.ReadCards(look, cards)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.State == domain.CardRichiesta && c.Order == "" {
					in = append(in, c.Serial)
				} // else changed since it was listed, or already in an order
			}
		}
		if len(in) == 0 {
			return nil
		}
		var err error
		if o, err = tx.NewCardOrder(tx.Now, env.Loc, in); err != nil {
			return err
		}
		return tx.Record(src, "ordine.crea", "ordine", o.Name, fmt.Sprintf("%d smart card", len(in)))
	})
	return o, in, rest, err
}

// publishOrder builds and encrypts a pending order once, keeps the
// encrypted file with the order, publishes it, then marks it published and
// its cards IN PRODUZIONE with the first halves erased. Every attempt
// writes the same bytes: after a crash (or a lost acknowledgement of the
// drop) the file is written again identical, whatever changed meanwhile.
// cards remembers the order's cards as last read or written, so that the
// transactions, which each read them again, decode only those changed
// meanwhile; names, when not nil, are the names of the holders read at the
// run's start (see buildOrder).
func publishOrder(ctx context.Context, env *Env, run *Run, name string, producer openpgp.EntityList, signer *openpgp.Entity, cards *store.CardCache, names map[string]*store.PersonName) error {
	o, err := pendingOrder(env, name, producer, signer, cards, names)
	if err != nil || o == nil {
		return err
	}
	if len(o.Data) > 0 {
		// The order and its secrets must be durable before the producer
		// can act on the file.
		if err := env.Store.Sync(); err != nil {
			return err
		}
		if err := env.Drop.Write(ctx, OrdiniDir+"/"+name, bytes.NewReader(o.Data)); err != nil {
			return err
		}
	}
	return commitOrder(env, run, name, o.Included, cards)
}

// pendingOrder is order name with its encrypted file, built and kept with
// the order at the first attempt (empty, not nil, when no card is left);
// nil when the order is no longer pending.
func pendingOrder(env *Env, name string, producer openpgp.EntityList, signer *openpgp.Entity, cards *store.CardCache, names map[string]*store.PersonName) (*store.CardOrder, error) {
	var o *store.CardOrder
	if err := env.Store.View(func(tx *store.Tx) error {
		var err error
		o, err = tx.CardOrder(name)
		return err
	}); err != nil {
		return nil, err
	}
	if o.State != store.OrderPending {
		return nil, nil
	}
	if o.Data != nil {
		return o, nil
	}
	data, included, err := buildOrder(env, name, producer, signer, cards, names)
	if err != nil {
		return nil, err
	}
	if err := env.Store.Update(func(tx *store.Tx) error {
		cur, err := tx.CardOrder(name)
		if err != nil {
			return err
		}
		if cur.State != store.OrderPending || cur.Data != nil {
			o = cur
			return nil
		}
		next := *cur
		next.Data, next.Included = data, included
		if next.Data == nil {
			next.Data = []byte{} // an order left empty (its cards replaced): nothing to write
		}
		o = &next
		return tx.PutReadCardOrder(cur, &next)
	}); err != nil {
		return nil, err
	}
	if o.State != store.OrderPending {
		return nil, nil
	}
	return o, nil
}

// commitOrder marks published order name, pending with the cards
// included in its file, and those of them still RICHIESTA in it IN
// PRODUZIONE: the cards orderTxCards at a time, the order itself, if still
// pending, with the last of them. Its file is already in the drop, so a
// card IN PRODUZIONE in an order still pending (a crash between the
// transactions) is in production; the next run writes the same file again
// and commits the rest.
func commitOrder(env *Env, run *Run, name string, included []string, cards *store.CardCache) error {
	src := store.Source{Actor: OrdiniActor, File: OrdiniDir + "/" + name}
	validity := time.Duration(env.Config.Cards.ValidityDays) * 24 * time.Hour
	for len(included) > orderTxCards {
		chunk := included[:orderTxCards]
		included = included[orderTxCards:]
		n := 0
		err := env.Store.Update(func(tx *store.Tx) error {
			var err error
			n, err = cardsInProduction(tx, src, name, chunk, validity, cards)
			return err
		})
		run.Add("cards_in_production", n)
		if err != nil {
			return err
		}
	}
	return env.Store.Update(func(tx *store.Tx) error {
		prev, err := tx.CardOrder(name)
		if err != nil {
			return err
		}
		if prev.State != store.OrderPending {
			return nil
		}
		o := *prev
		size := len(o.Data)
		o.State, o.Published, o.Data = store.OrderPublished, tx.Now, nil
		if size > 0 {
			o.File = OrdiniDir + "/" + name
		}
		if err := tx.PutReadCardOrder(prev, &o); err != nil {
			return err
		}
		n, err := cardsInProduction(tx, src, name, included, validity, cards)
		if err != nil {
			return err
		}
		run.Add("orders", 1)
		run.Add("cards_in_production", n)
		return tx.Record(src, "ordine.pubblicato", "ordine", name, fmt.Sprintf("%d smart card, %d byte cifrati", len(o.Included), size))
	})
}

// cardsInProduction makes the included cards still RICHIESTA in order
// name IN PRODUZIONE, with their expiry and their first halves erased,
// and returns how many. Each card is read again in the transaction.
func cardsInProduction(tx *store.Tx, src store.Source, name string, included []string, validity time.Duration, cards *store.CardCache) (int, error) {
	cs, err := tx.ReadCards(included, cards)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		if c.State != domain.CardRichiesta || c.Order != name {
			continue // replaced since: the producer makes it, the prefettura's delivery will be refused
		}
		next := *c
		next.State, next.Ordered, next.Expires, next.FirstSealed, next.Updated = domain.CardProduzione, tx.Now, tx.Now.Add(validity), nil, tx.Now
		if err := tx.PutReadCard(c, &next, cards); err != nil {
			return 0, err
		}
		if err := tx.Record(src, "smartcard.in-produzione", "smartcard", c.Serial, "ordine inviato al produttore; prime metà cancellate"); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// buildOrder makes the CSV of a pending order with the first halves of its
// cards still RICHIESTA in it, encrypted to the producer and signed; nil
// data when no card is left. The cards, their holders and their comuni
// are each read in one pass in key order; a holder's name is taken from
// names, read at the run's start, when it is there (and then dropped from
// it).
func buildOrder(env *Env, name string, producer openpgp.EntityList, signer *openpgp.Entity, cards *store.CardCache, names map[string]*store.PersonName) ([]byte, []string, error) {
	var buf bytes.Buffer
	var included []string
	err := env.Store.View(func(tx *store.Tx) error {
		in, look, err := orderCards(tx, name, cards, names)
		if err != nil {
			return err
		}
		w := csv.NewWriter(&buf)
		w.Comma = ';'
		w.UseCRLF = true
		if err := w.Write(OrderHeader); err != nil {
			return err
		}
		for _, c := range in {
			s := c.Serial
			plain, err := env.Sealer.Open(c.FirstSealed, domain.CardSecretsSealContext(s, "prima"))
			if err != nil {
				return fmt.Errorf("smart card %s: prime metà: %w", s, err)
			}
			h, err := pki.UnmarshalCardHalf(plain)
			clear(plain)
			if err != nil {
				return fmt.Errorf("smart card %s: %w", s, err)
			}
			surname, given, comune := look(c)
			ppp, _ := env.Comuni.Prefettura(c.ISTAT)
			if err := w.Write([]string{s, c.CF, surname, given, c.ISTAT, comune, ppp, h.PIN, h.PUK, h.Password}); err != nil {
				return err
			}
			included = append(included, s)
		}
		for _, c := range in {
			delete(names, c.CF) // used; a later order with the same holder reads it again
		}
		w.Flush()
		return w.Error()
	})
	plain := buf.Bytes()
	defer clear(plain)
	if err != nil || len(included) == 0 {
		return nil, nil, err
	}
	data, err := pgp.EncryptSign(plain, producer, signer)
	return data, included, err
}

// orderCards returns the cards of order name still RICHIESTA in it with
// their first halves, in the order's order, and look, which gives a
// card's holder's surname and name and its comune's name ("" for a record
// that is not there): from names when the holder is there, else from the
// persons and comuni read here.
func orderCards(tx *store.Tx, name string, cards *store.CardCache, names map[string]*store.PersonName) ([]*domain.SmartCard, func(*domain.SmartCard) (string, string, string), error) {
	o, err := tx.CardOrder(name)
	if err != nil {
		return nil, nil, err
	}
	cs, err := tx.ReadCards(o.Serials, cards)
	if err != nil {
		return nil, nil, err
	}
	var in []*domain.SmartCard
	var cfs, istats []string
	for _, c := range cs {
		if c.State != domain.CardRichiesta || c.Order != name || len(c.FirstSealed) == 0 {
			continue // revoked (replaced) since the order was made
		}
		in = append(in, c)
		if names[c.CF] == nil {
			cfs = append(cfs, c.CF)
		}
		istats = append(istats, c.ISTAT)
	}
	persons, err := tx.PersonNamesByCF(cfs, false)
	if err != nil {
		return nil, nil, err
	}
	comuni, err := tx.ComuniByISTAT(istats)
	if err != nil {
		return nil, nil, err
	}
	look := func(c *domain.SmartCard) (surname, given, comune string) {
		p := names[c.CF]
		if p == nil {
			p = persons[c.CF]
		}
		if p != nil {
			surname, given = p.Surname, p.Name
		}
		if com := comuni[c.ISTAT]; com != nil {
			comune = com.Name
		}
		return surname, given, comune
	}
	return in, look, nil
}
