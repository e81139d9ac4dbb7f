// Package richieste holds what the console requests of the comuni are
// (SPEC.md, "Console request"): the operations, the columns each needs, the
// table of who may ask what, and the authorization check of an operator,
// done inside the transaction that then applies the row (jobs/richieste.go).
//
// A request file comuni/<ISTAT>/richieste/*.csv|*.xlsx has a header row with
// Operazione and Operatore (the CF of the console user asking) and the
// columns the operations need. Every row is authorized on its own:
//
//   - the operator has an ATTIVA utenza in the comune of the folder, and his
//     own smart card is ATTIVA;
//   - he holds the profile the operation needs (Rules): ALP for the
//     workstations, ALS for users and cards; the ASC or an APL may do the
//     ALS's operations only while the comune has no ALS with an active card
//     (the sindaco names the first ALS, seed 001 step 8);
//   - the target (user, card, workstation) belongs to that same comune.
//
// The invariants of a comune (exactly one ASC, at least one ALS and one ALP
// among its active utenze) are checked by Invariant before a change to an
// utenza is applied.
package richieste

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"anprsec/domain"
	"anprsec/store"
)

// Op is a console operation.
type Op string

// The operations of the console (SPEC.md).
const (
	RegistraPostazione Op = "REGISTRA_POSTAZIONE"
	BloccaPostazione   Op = "BLOCCA_POSTAZIONE"
	SbloccaPostazione  Op = "SBLOCCA_POSTAZIONE"
	RevocaPostazione   Op = "REVOCA_POSTAZIONE"
	InserisciUtente    Op = "INSERISCI_UTENTE"
	ModificaUtente     Op = "MODIFICA_UTENTE"
	BloccaUtente       Op = "BLOCCA_UTENTE"
	SbloccaUtente      Op = "SBLOCCA_UTENTE"
	CancellaUtente     Op = "CANCELLA_UTENTE"
	RegistraConsegnaSC Op = "REGISTRA_CONSEGNA_SC"
	NuovaSC            Op = "NUOVA_SC"
	BloccaSC           Op = "BLOCCA_SC"
	SbloccaSC          Op = "SBLOCCA_SC"
)

// Columns of a request file.
const (
	ColOperazione = "Operazione"
	ColOperatore  = "Operatore"
	ColCF         = "Codice Fiscale"
	ColSeriale    = "Seriale"
	ColCodice     = "Codice postazione"
	ColEtichetta  = "Nome postazione"
	ColCognome    = "Cognome"
	ColNome       = "Nome"
	ColSesso      = "Sesso"
	ColNascita    = "Data di nascita"
	ColEmail      = "Email"
	ColPEC        = "PEC"
	ColProfili    = "Profili"
	ColCard       = "Smart Card"
	ColAmbiente   = "Ambiente"
	ColMotivo     = "Motivo"
)

// Required are the columns every request file has; Optional the others.
var (
	Required = []string{ColOperazione, ColOperatore}
	Optional = []string{ColCF, ColSeriale, ColCodice, ColEtichetta, ColCognome, ColNome, ColSesso, ColNascita,
		ColEmail, ColPEC, ColProfili, ColCard, ColAmbiente, ColMotivo}
)

// Rule says who may ask for an operation and what it needs.
type Rule struct {
	Op      Op
	Profile domain.Profile // ALP or ALS
	// FirstALS: the ASC or an APL may ask while the comune has no ALS with
	// an active card.
	FirstALS bool
	Needs    []string // columns that must be filled
	What     string   // what it does, in Italian
}

// Rules is the table of SPEC.md "who may ask (in that comune, with an
// active card)", the one place to change it.
var Rules = []Rule{
	{RegistraPostazione, domain.ALP, false, []string{ColEtichetta}, "registra una nuova postazione e ne chiede il certificato"},
	{BloccaPostazione, domain.ALP, false, []string{ColCodice, ColMotivo}, "blocca il certificato di una postazione"},
	{SbloccaPostazione, domain.ALP, false, []string{ColCodice, ColMotivo}, "sblocca il certificato di una postazione"},
	{RevocaPostazione, domain.ALP, false, []string{ColCodice, ColMotivo}, "revoca il certificato di una postazione"},
	{InserisciUtente, domain.ALS, true, []string{ColCF, ColCognome, ColNome, ColEmail, ColProfili, ColCard, ColAmbiente}, "inserisce un utente"},
	{ModificaUtente, domain.ALS, true, []string{ColCF}, "modifica e-mail, PEC, profili o ambiente di un utente"},
	{BloccaUtente, domain.ALS, true, []string{ColCF}, "blocca un utente"},
	{SbloccaUtente, domain.ALS, true, []string{ColCF}, "sblocca un utente"},
	{CancellaUtente, domain.ALS, true, []string{ColCF}, "cancella l'utenza di un utente"},
	{RegistraConsegnaSC, domain.ALS, true, []string{ColCF, ColSeriale}, "registra la consegna della smart card al titolare"},
	{NuovaSC, domain.ALS, true, []string{ColCF, ColMotivo}, "chiede una nuova smart card (smarrimento, furto)"},
	{BloccaSC, domain.ALS, true, []string{ColCF, ColMotivo}, "blocca una smart card"},
	{SbloccaSC, domain.ALS, true, []string{ColCF, ColMotivo}, "sblocca una smart card"},
}

// LookupRule finds the rule of an operation (case and blanks ignored,
// spaces or dashes for underscores).
func LookupRule(name string) (Rule, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	n = strings.NewReplacer(" ", "_", "-", "_").Replace(n)
	for _, r := range Rules {
		if string(r.Op) == n {
			return r, true
		}
	}
	return Rule{}, false
}

// OpNames lists the operations, for messages.
func OpNames() string {
	names := make([]string, len(Rules))
	for i, r := range Rules {
		names[i] = string(r.Op)
	}
	return strings.Join(names, ", ")
}

// Refusal is why a row is not applied: a receipt code and a message an ALS
// understands. Authz marks a refusal of the operator's authorization (the
// security review lists those).
type Refusal struct {
	Code, Message string
	Authz         bool
}

func (r *Refusal) Error() string { return r.Message }

// Refuse makes a Refusal that is not about authorization.
func Refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

func deny(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...), Authz: true}
}

// ActiveCard reports whether the person cf's current card is ATTIVA; it
// returns the card state for messages ("" when none).
func ActiveCard(tx *store.Tx, cf string) (bool, domain.CardState, error) {
	p, err := tx.Person(cf)
	if errors.Is(err, store.ErrNotFound) {
		return false, "", nil
	}
	if err != nil || p.Card == "" {
		return false, "", err
	}
	c, err := tx.Card(p.Card)
	if errors.Is(err, store.ErrNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	return c.State == domain.CardAttiva, c.State, nil
}

// HasActiveALS reports whether comune istat has an ATTIVA ALS utenza whose
// card is ATTIVA.
func HasActiveALS(tx *store.Tx, istat string) (bool, error) {
	found := false
	err := tx.UtenzeOfComune(istat, func(u *domain.Utenza) error {
		if found || u.State != domain.UtenzaAttiva || !u.Has(domain.ALS) {
			return nil
		}
		ok, _, err := ActiveCard(tx, u.CF)
		found = ok
		return err
	})
	return found, err
}

// Authorize checks that operator (a CF) may ask for rule's operation in
// comune istat. It returns nil when he may, a Refusal (Authz) when not, an
// error for a failure of the store.
func Authorize(tx *store.Tx, istat, operator string, rule Rule) (*Refusal, error) {
	operator = strings.ToUpper(strings.TrimSpace(operator))
	if operator == "" {
		return deny("OPERATORE", "la colonna %s è vuota: chi chiede l'operazione va indicato col suo codice fiscale", ColOperatore), nil
	}
	u, err := tx.Utenza(istat, operator)
	if errors.Is(err, store.ErrNotFound) {
		return deny("OPERATORE_SCONOSCIUTO", "l'operatore %s non ha un'utenza nel comune %s", operator, istat), nil
	}
	if err != nil {
		return nil, err
	}
	if u.State != domain.UtenzaAttiva {
		return deny("OPERATORE_NON_ATTIVO", "l'utenza dell'operatore %s nel comune %s è %s: non può chiedere operazioni", operator, istat, u.State), nil
	}
	active, state, err := ActiveCard(tx, operator)
	if err != nil {
		return nil, err
	}
	if !active {
		if state == "" {
			return deny("OPERATORE_SENZA_SMART_CARD", "l'operatore %s non ha una smart card: le operazioni si chiedono con la propria smart card attiva", operator), nil
		}
		return deny("OPERATORE_SMART_CARD_NON_ATTIVA", "la smart card dell'operatore %s è %s: le operazioni si chiedono con la propria smart card attiva", operator, state), nil
	}
	if u.Has(rule.Profile) {
		return nil, nil
	}
	if rule.FirstALS && (u.Has(domain.ASC) || u.Has(domain.APL)) {
		has, err := HasActiveALS(tx, istat)
		if err != nil {
			return nil, err
		}
		if !has {
			return nil, nil
		}
		return deny("NON_AUTORIZZATO", "%s (%s) spetta all'ALS: il comune %s ha già un ALS con smart card attiva, quindi il sindaco (ASC) o il suo delegato (APL) non può più farlo",
			rule.Op, rule.What, istat), nil
	}
	return deny("NON_AUTORIZZATO", "%s (%s) richiede il profilo %s; l'operatore %s ha %s", rule.Op, rule.What, rule.Profile, operator, profileList(u.Profiles)), nil
}

func profileList(ps []domain.Profile) string {
	if len(ps) == 0 {
		return "nessun profilo"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// Invariant checks that a change to the utenza of cf in comune istat does
// not leave the comune without its ASC, an ALS or an ALP among its ATTIVA
// utenze, nor give it a second ASC: after are the utenza's profiles once
// changed (nil: the utenza is no longer active). Only a change for the
// worse is refused (a comune already short of a profile may still change
// other things). It returns a Refusal naming the profile.
func Invariant(tx *store.Tx, istat, cf string, after []domain.Profile) (*Refusal, error) {
	others := map[domain.Profile]int{}
	var before []domain.Profile
	err := tx.UtenzeOfComune(istat, func(u *domain.Utenza) error {
		if u.State != domain.UtenzaAttiva {
			return nil
		}
		if u.CF == cf {
			before = u.Profiles
			return nil
		}
		for _, p := range u.Profiles {
			others[p]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	count := func(ps []domain.Profile, want domain.Profile) int {
		n := others[want]
		for _, p := range ps {
			if p == want {
				n++
			}
		}
		return n
	}
	for _, info := range domain.Profiles {
		if !info.Mandatory {
			continue
		}
		was, now := count(before, info.Profile), count(after, info.Profile)
		switch {
		case now == 0 && was > 0:
			return Refuse("COMUNE_SENZA_"+string(info.Profile), "il comune %s resterebbe senza %s (%s) attivo: prima va nominato un altro %s",
				istat, info.Profile, info.Description, info.Profile), nil
		case info.Profile == domain.ASC && now > 1 && now > was:
			return Refuse("ASC_DOPPIO", "il comune %s ha già un sindaco (ASC) attivo: l'ASC è uno solo", istat), nil
		}
	}
	return nil, nil
}
