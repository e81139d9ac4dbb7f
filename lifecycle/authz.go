package lifecycle

import (
	"errors"
	"slices"
	"sort"
	"strings"

	"anprsec/domain"
	"anprsec/store"
)

// Op is an operation on a comune's utenze, smart cards or postazioni, as a
// console request names it (docs/rules.md#console-requests). The
// back-office CLI uses the same operations.
type Op string

// The operations of the console, and the undo of a revocation, which only
// the back-office asks for.
const (
	OpRegisterPostazione   Op = "REGISTRA_POSTAZIONE"
	OpBlockPostazione      Op = "BLOCCA_POSTAZIONE"
	OpUnblockPostazione    Op = "SBLOCCA_POSTAZIONE"
	OpRevokePostazione     Op = "REVOCA_POSTAZIONE"
	OpRenewPostazione      Op = "RINNOVA_POSTAZIONE"
	OpRegisterInstall      Op = "REGISTRA_INSTALLAZIONE"
	OpInsertUtente         Op = "INSERISCI_UTENTE"
	OpModifyUtente         Op = "MODIFICA_UTENTE"
	OpBlockUtente          Op = "BLOCCA_UTENTE"
	OpUnblockUtente        Op = "SBLOCCA_UTENTE"
	OpCancelUtente         Op = "CANCELLA_UTENTE"
	OpRegisterCardDelivery Op = "REGISTRA_CONSEGNA_SC"
	OpNewCard              Op = "NUOVA_SC"
	OpBlockCard            Op = "BLOCCA_SC"
	OpUnblockCard          Op = "SBLOCCA_SC"
	OpDownloadCertificates Op = "SCARICA_CERTIFICATI"
	OpStatus               Op = "STATO"
	OpConfirmCheck         Op = "CONFERMA_VERIFICA"

	OpUndoRevocation Op = "ANNULLA_REVOCA_POSTAZIONE"
)

// Rule says who may ask for an operation in a comune: an operator with an
// ATTIVA utenza there, his own card ATTIVA, and Profile or one of Also;
// with FirstALS, the ASC or an APL may ask too while the comune has no ALS
// with an active card (the sindaco names the first ALS).
type Rule struct {
	Op       Op
	Profile  domain.Profile // ALP or ALS
	FirstALS bool
	What     string           // what it does, in Italian
	Also     []domain.Profile // other profiles that may ask (STATO)
}

// Rules is the table of who may ask for each console operation
// (docs/rules.md#console-requests), the one place to change it.
var Rules = []Rule{
	{OpRegisterPostazione, domain.ALP, false, "registra una nuova postazione e ne chiede il certificato", nil},
	{OpBlockPostazione, domain.ALP, false, "blocca il certificato di una postazione", nil},
	{OpUnblockPostazione, domain.ALP, false, "sblocca il certificato di una postazione", nil},
	{OpRevokePostazione, domain.ALP, false, "revoca il certificato di una postazione", nil},
	{OpRenewPostazione, domain.ALP, false, "chiede un nuovo certificato che sostituisce quello di una postazione", nil},
	{OpRegisterInstall, domain.ALP, false, "registra su quale PC o server è installato un certificato", nil},
	{OpInsertUtente, domain.ALS, true, "inserisce un utente", nil},
	{OpModifyUtente, domain.ALS, true, "modifica e-mail, PEC, profili o ambiente di un utente", nil},
	{OpBlockUtente, domain.ALS, true, "blocca un utente", nil},
	{OpUnblockUtente, domain.ALS, true, "sblocca un utente", nil},
	{OpCancelUtente, domain.ALS, true, "cancella l'utenza di un utente", nil},
	{OpRegisterCardDelivery, domain.ALS, true, "registra la consegna della smart card al titolare", nil},
	{OpNewCard, domain.ALS, true, "chiede una nuova smart card (smarrimento, furto)", nil},
	{OpBlockCard, domain.ALS, true, "blocca una smart card", nil},
	{OpUnblockCard, domain.ALS, true, "sblocca una smart card", nil},
	{OpDownloadCertificates, domain.ALP, false, "scarica i certificati ATTIVO del comune (o di una postazione) con le password", nil},
	{OpStatus, domain.ALP, false, "chiede lo stato di utenze e smart card (ALS), postazioni (ALP), o di tutto (ASC)", []domain.Profile{domain.ALS, domain.ASC}},
	{OpConfirmCheck, domain.ALS, false, "conferma di aver verificato l'elenco degli utenti di un avviso di sicurezza", []domain.Profile{domain.ASC}},
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

// ActiveCard reports whether the person cf's current card is usable
// (CardUsable: ATTIVA and not past its expiry); it returns the card state
// for messages ("" when none; SCADUTA for an ATTIVA card past its expiry).
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
	if CardExpired(c, tx.Now) {
		return false, domain.CardScaduta, nil
	}
	return CardUsable(c, tx.Now), c.State, nil
}

// HasActiveALS reports whether comune istat has an ATTIVA ALS utenza whose
// card is ATTIVA.
func HasActiveALS(tx *store.Tx, istat string) (bool, error) {
	found := false
	err := tx.UtenzeRolesOfComune(istat, func(cf string, state domain.UtenzaState, profiles []domain.Profile) error {
		if found || state != domain.UtenzaAttiva || !slices.Contains(profiles, domain.ALS) {
			return nil
		}
		ok, _, err := ActiveCard(tx, cf)
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
		return deny("OPERATORE", "la colonna Operatore è vuota: chi chiede l'operazione va indicato col suo codice fiscale"), nil
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
	for _, p := range rule.Also {
		if u.Has(p) {
			return nil, nil
		}
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
	return deny("NON_AUTORIZZATO", "%s (%s) richiede il profilo %s; l'operatore %s ha %s", rule.Op, rule.What, profileList(append([]domain.Profile{rule.Profile}, rule.Also...)), operator, profileList(u.Profiles)), nil
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

// BackOfficeActor is the history actor of the ministry's CLI operations
// when the operator is not known; BackOfficeOperator names him.
const BackOfficeActor = "back-office"

// BackOfficeOperator is the history actor of a CLI operation by the OS
// user name: "back-office:<name>" (docs/rules.md#history).
func BackOfficeOperator(name string) string {
	if name == "" {
		return BackOfficeActor
	}
	return BackOfficeActor + ":" + name
}

// StatusView is what a STATO request shows its operator: utenze and smart
// cards to the ALS, postazioni to the ALP, all of it to the ASC
// (docs/rules.md#self-service); an operator with more profiles sees the
// union.
type StatusView struct {
	Utenze     bool // the comune's utenze with their smart cards
	Postazioni bool // the comune's postazioni and certificates
}

// Any reports whether the view shows anything.
func (v StatusView) Any() bool { return v.Utenze || v.Postazioni }

// StatusViewOf is the view of the STATO report for an operator with
// profiles ps.
func StatusViewOf(ps []domain.Profile) StatusView {
	var v StatusView
	for _, p := range ps {
		switch p {
		case domain.ASC:
			v.Utenze, v.Postazioni = true, true
		case domain.ALS:
			v.Utenze = true
		case domain.ALP:
			v.Postazioni = true
		}
	}
	return v
}
