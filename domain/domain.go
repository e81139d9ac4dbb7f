// Package domain holds the core types of anprsec: comuni, persons, utenze,
// smart cards, workstations (postazioni) and their states. It imports nothing
// of the project, so every other package can depend on it.
package domain

import (
	"fmt"
	"strings"
	"time"
)

// Profile is an authorization profile of an utenza.
type Profile string

// The profiles of the ANPR security console (docs/rules.md#profiles). ASC,
// APL, ALS and ALP require a smart card; which ones every comune must have
// is the comune invariant (lifecycle/comune.go).
const (
	ASC           Profile = "ASC"           // sindaco or commissario: exactly one per comune
	APL           Profile = "APL"           // delegate of the sindaco
	ALS           Profile = "ALS"           // local security administrator: at least one
	ALP           Profile = "ALP"           // local workstation administrator: at least one
	Operatore     Profile = "OPERATORE"     // console operator
	Consultazione Profile = "CONSULTAZIONE" // read-only console operator
)

// ProfileInfo describes one entry of the profile table.
type ProfileInfo struct {
	Profile     Profile
	Description string
	NeedsCard   bool
}

// Profiles is the table of known profiles, the one place to extend them.
var Profiles = []ProfileInfo{
	{ASC, "Sindaco o commissario", true},
	{APL, "Amministratore di Primo Livello (delegato del sindaco)", true},
	{ALS, "Amministratore Locale della Sicurezza", true},
	{ALP, "Amministratore Locale delle Postazioni", true},
	{Operatore, "Operatore", false},
	{Consultazione, "Operatore di consultazione", false},
}

// LookupProfile finds a profile by name, ignoring case and surrounding blanks.
func LookupProfile(name string) (ProfileInfo, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	for _, p := range Profiles {
		if string(p.Profile) == n {
			return p, true
		}
	}
	return ProfileInfo{}, false
}

// Environment is where an utenza may work.
type Environment string

// The environments of the console.
const (
	Produzione  Environment = "PRODUZIONE"
	PreSubentro Environment = "PRE-SUBENTRO"
)

// Comune is a municipality that has been censused.
type Comune struct {
	ISTAT        string    `json:"istat"` // 6 digits, always text
	Name         string    `json:"name"`
	Province     string    `json:"province"`     // 3-digit province code
	Workstations int       `json:"workstations"` // declared number of workstations
	NextPC       int       `json:"next_pc"`      // last workstation number assigned
	Server       bool      `json:"server"`       // server certificate requested
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	// PrevISTAT lists the comune's earlier ISTAT codes, oldest first, when
	// an update of the table of comuni gave it a new one: its workstations
	// keep the codes they were issued under (docs/rules.md#comune-renumbering).
	PrevISTAT []string `json:"prev_istat,omitempty"`
	// FirstCert is the code of the comune's first workstation certificate,
	// sent with its password to the sindaco's personal e-mail
	// (docs/rules.md#the-first-certificate); "" until it is issued, and
	// for comuni whose certificates were issued before this existed.
	FirstCert string `json:"first_cert,omitempty"`
}

// Codes returns the comune's ISTAT code and its earlier ones.
func (c *Comune) Codes() []string { return append([]string{c.ISTAT}, c.PrevISTAT...) }

// Person is a natural person, identified by codice fiscale.
type Person struct {
	CF        string    `json:"cf"`
	Surname   string    `json:"surname"`
	Name      string    `json:"name"`
	Sex       string    `json:"sex"`            // M or F
	BirthDate string    `json:"birth_date"`     // YYYY-MM-DD
	Card      string    `json:"card,omitempty"` // serial of the current card
	Updated   time.Time `json:"updated"`

	// NextCard is the card requested to replace an expiring current card
	// (NUOVA_SC, motivo scadenza): the current card stays usable until
	// NextCard is activated, which then becomes Card
	// (docs/rules.md#card-lifecycle).
	NextCard string `json:"next_card,omitempty"`
}

// UtenzaState is the state of an utenza.
type UtenzaState string

// States of an utenza.
const (
	UtenzaAttiva     UtenzaState = "ATTIVA"
	UtenzaBloccata   UtenzaState = "BLOCCATA"
	UtenzaCancellata UtenzaState = "CANCELLATA"
)

// Utenza is one person's account in one comune.
type Utenza struct {
	ISTAT        string        `json:"istat"`
	CF           string        `json:"cf"`
	Email        string        `json:"email"`
	PEC          string        `json:"pec,omitempty"`
	Profiles     []Profile     `json:"profiles"`
	Environments []Environment `json:"environments"`
	NeedsCard    bool          `json:"needs_card"`
	State        UtenzaState   `json:"state"`
	Created      time.Time     `json:"created"`
	Updated      time.Time     `json:"updated"`
}

// Has reports whether the utenza holds profile p.
func (u *Utenza) Has(p Profile) bool {
	for _, q := range u.Profiles {
		if q == p {
			return true
		}
	}
	return false
}

// CardState is the state of a smart card.
type CardState string

// States of a smart card (docs/rules.md#card-lifecycle).
const (
	CardRichiesta  CardState = "RICHIESTA"
	CardProduzione CardState = "IN PRODUZIONE"
	CardConsegnata CardState = "CONSEGNATA DALLA PREFETTURA"
	CardAttiva     CardState = "ATTIVA"
	CardBloccata   CardState = "BLOCCATA"
	CardRevocata   CardState = "REVOCATA"
	CardScaduta    CardState = "SCADUTA" // past its expiry: for good
)

// SmartCard is a personal card; one per person across all comuni.
type SmartCard struct {
	Serial string    `json:"serial"`
	CF     string    `json:"cf"`
	ISTAT  string    `json:"istat"` // comune through which it was requested
	State  CardState `json:"state"`
	Reason string    `json:"reason,omitempty"`
	// BlockedBy is the comune whose console request blocked the card when
	// it is not its home ("" otherwise): that comune may unblock it too.
	BlockedBy string    `json:"blocked_by,omitempty"`
	Requested time.Time `json:"requested"`
	Updated   time.Time `json:"updated"`

	// Production and delivery (job ordini-sc, ingest-consegne, smartcard
	// consegna): the order file that carried the card to the producer, when
	// the prefettura handed the parcel over and to whom (CF of the ASC or
	// APL), when the card became ATTIVA, and when it expires.
	Order       string    `json:"order,omitempty"`
	Ordered     time.Time `json:"ordered,omitempty"`
	Delivered   time.Time `json:"delivered,omitempty"`
	DeliveredTo string    `json:"delivered_to,omitempty"`
	Activated   time.Time `json:"activated,omitempty"`
	Expires     time.Time `json:"expires,omitempty"`

	// Secrets, never in clear: the first halves of PIN, PUK and password
	// (sealed until the order is published, then erased) and the second
	// halves (sealed until the e-mail has left, then erased). See
	// CardSecretsSealContext.
	FirstSealed  []byte `json:"first_sealed,omitempty"`
	SecondSealed []byte `json:"second_sealed,omitempty"`

	// Warned is the last expiry threshold (days: 60, 30, 7) whose warning
	// went to the comune's ALS (job scadenze); 0 = none yet.
	Warned int `json:"warned,omitempty"`
	// Unwarned is the threshold that fell due when no ALS had an e-mail to
	// write to: it stays due (retried every day) and is recorded once.
	Unwarned int `json:"unwarned,omitempty"`

	// Replaces is the serial of the expiring card this one replaces
	// (NUOVA_SC, motivo scadenza): that card ends when this one is
	// activated.
	Replaces string `json:"replaces,omitempty"`
	// LateNotified is when the back-office was told by e-mail that the
	// card is late in production (job scadenze); zero: not yet.
	LateNotified time.Time `json:"late_notified,omitempty"`
}

// CardSecretsSealContext is the Sealer context of one half ("prima" or
// "seconda") of a card's secrets.
func CardSecretsSealContext(serial, half string) string { return "smartcard/" + serial + "/" + half }

// CertState is the state of a workstation certificate.
type CertState string

// States of a workstation certificate (docs/rules.md#postazione-lifecycle).
const (
	CertRichiesta     CertState = "RICHIESTA IN LAVORAZIONE"
	CertAttivo        CertState = "ATTIVO"
	CertBloccato      CertState = "BLOCCATO"
	CertRevocaInCorso CertState = "REVOCATA IN LAVORAZIONE"
	CertRevocato      CertState = "REVOCATO"
	CertScaduto       CertState = "SCADUTO"
)

// Postazione is a workstation (or the comune's server) and its certificate.
type Postazione struct {
	Code     string    `json:"code"` // <ISTAT>-PC-<NNNN> or <ISTAT>-CO-9999
	ISTAT    string    `json:"istat"`
	Label    string    `json:"label,omitempty"`
	Server   bool      `json:"server,omitempty"`
	State    CertState `json:"state"`
	Serial   string    `json:"serial,omitempty"` // certificate serial, hex
	NotAfter time.Time `json:"not_after,omitempty"`
	Reason   string    `json:"reason,omitempty"` // motivo of the last block or revoke
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`

	// Block and revoke (lifecycle.ChangePostazione): when the certificate went
	// on hold (BLOCCATO; zero once unblocked), when its revocation was asked
	// (REVOCATA IN LAVORAZIONE, then REVOCATO) and the CRL reason code of the
	// revocation (RFC 5280: 0 unspecified, 1 keyCompromise, 5
	// cessationOfOperation), all used by the crl job.
	HoldSince        time.Time `json:"hold_since,omitempty"`
	RevokedAt        time.Time `json:"revoked_at,omitempty"`
	RevocationReason int       `json:"revocation_reason,omitempty"`
	// RevokedBy is who asked the revocation (the history actor).
	RevokedBy string `json:"revoked_by,omitempty"`
	// PrevState is the state before a revoke (ATTIVO or BLOCCATO), restored
	// by lifecycle.UndoRevocation inside the undo window (pki.revoke_grace).
	PrevState CertState `json:"prev_state,omitempty"`
	// UndoUntil is the end of the undo window in force when the revocation
	// was asked (RevokedAt + pki.revoke_grace then); zero for revocations
	// recorded without one, judged by today's pki.revoke_grace.
	UndoUntil time.Time `json:"undo_until,omitempty"`

	// Certificate, set by the certificati job when the state becomes ATTIVO.
	CertDER        []byte `json:"cert_der,omitempty"`
	P12Sealed      []byte `json:"p12_sealed,omitempty"`      // PKCS#12, sealed with context "postazione/<code>/p12"
	PasswordSealed []byte `json:"password_sealed,omitempty"` // its password, sealed with context "postazione/<code>/password"

	// Issuer is the Subject Key Identifier (hex, upper case) of the CA that
	// issued the certificate; empty for certificates issued before it was
	// recorded, all of the first CA (docs/rules.md#ca-rollover).
	Issuer string `json:"issuer,omitempty"`

	// Failed issuance: the last error and the number of failed attempts.
	LastError string `json:"last_error,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`

	// Warned is the last expiry threshold (days: 60, 30, 7) whose warning
	// went to the comune's ALPs (job scadenze); 0 = none yet.
	Warned int `json:"warned,omitempty"`
	// Unwarned is the threshold that fell due when no ALP had an e-mail to
	// write to: it stays due (retried every day) and is recorded once.
	Unwarned int `json:"unwarned,omitempty"`

	// Renewal (lifecycle.RequestRenewal): a pending request for a new
	// certificate of the same code, issued by the next certificati batch;
	// nil when none is pending.
	Renewal *RenewalRequest `json:"renewal,omitempty"`
	// PrevSerial is the serial of the certificate the current one replaced
	// ("" for a first certificate).
	PrevSerial string `json:"prev_serial,omitempty"`
	// Predecessors are the certificates of this code replaced by a
	// renewal, oldest first (docs/rules.md#renewal).
	Predecessors []PrevCert `json:"predecessors,omitempty"`
}

// RenewalRequest is a pending renewal of a postazione's certificate.
type RenewalRequest struct {
	Requested time.Time `json:"requested"`
	By        string    `json:"by"`     // the operator (CF) or actor who asked
	Motivo    string    `json:"motivo"` // the reason
	Auto      bool      `json:"auto,omitempty"`
}

// PrevCert is a certificate replaced by a renewal: valid through the
// overlap (until OverlapUntil, or until the installation of its successor
// is registered, whichever comes first), then revoked with reason
// superseded.
type PrevCert struct {
	Serial       string    `json:"serial"`
	NotBefore    time.Time `json:"not_before,omitempty"`
	NotAfter     time.Time `json:"not_after"`
	CertDER      []byte    `json:"cert_der,omitempty"`
	SupersededBy string    `json:"superseded_by"` // the successor's serial
	Replaced     time.Time `json:"replaced"`      // when the successor was issued
	OverlapUntil time.Time `json:"overlap_until"`
	// InstalledAt is when the installation of the successor was
	// registered (REGISTRA_INSTALLAZIONE) inside the overlap; zero if not.
	InstalledAt time.Time `json:"installed_at,omitempty"`
	// Final is when anprsec recorded the supersession (history
	// postazione.sostituita); zero while the overlap lasts.
	Final  time.Time `json:"final,omitempty"`
	Motivo string    `json:"motivo,omitempty"` // the reason of the renewal
	By     string    `json:"by,omitempty"`     // who asked the renewal
	// Issuer is the KeyID of the CA that issued it (Postazione.Issuer
	// when it was current); empty: the first CA's.
	Issuer string `json:"issuer,omitempty"`
}

// SupersededAt is when pc stops being valid: the end of its overlap or
// the registration of its successor's installation, whichever comes
// first.
func (pc *PrevCert) SupersededAt() time.Time {
	if !pc.InstalledAt.IsZero() && pc.InstalledAt.Before(pc.OverlapUntil) {
		return pc.InstalledAt
	}
	return pc.OverlapUntil
}

// P12SealContext is the Sealer context of a workstation's PKCS#12.
func P12SealContext(code string) string { return "postazione/" + code + "/p12" }

// PasswordSealContext is the Sealer context of a workstation's P12 password.
func PasswordSealContext(code string) string { return "postazione/" + code + "/password" }

// WorkstationCode returns the code of workstation n of a comune: 058091-PC-0001.
func WorkstationCode(istat string, n int) string {
	return fmt.Sprintf("%s-PC-%04d", istat, n)
}

// ServerCode returns the code of a comune's server certificate: 058091-CO-9999.
func ServerCode(istat string) string { return istat + "-CO-9999" }
