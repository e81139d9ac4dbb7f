package jobs

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/mail"
	"anprsec/pki/pgp"
	"anprsec/store"
)

// The first certificate of a comune to its sindaco
// (docs/rules.md#the-first-certificate): a message of the outbox
// (store.MailFirstCert) queued by the certificati job with the comune's
// first workstation certificates, sent by invio-pin like the second halves
// (PGP/MIME, encrypted to the ASC's key or the gateway, signed by the
// service key), with the P12 attached and its password in the text, both
// inside the encrypted part. The P12 stays sealed in the store: the
// comune's ALP downloads it again (SCARICA_CERTIFICATI).

// FirstCertAttachmentType is the media type of the attached PKCS#12.
const FirstCertAttachmentType = "application/x-pkcs12"

// readFirstCertMessage fills a first-certificate message: the postazione
// (known, ATTIVO, its P12 held), the comune's ASC and his e-mail.
func readFirstCertMessage(tx *store.Tx, pm pinMessage) (pinMessage, error) {
	m := &pm.m
	p, err := tx.Postazione(m.Code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		pm.reason = "postazione " + m.Code + " sconosciuta"
		return pm, nil
	case err != nil:
		return pm, err
	case p.State != domain.CertAttivo:
		pm.reason = fmt.Sprintf("il certificato %s è %s: si invia solo un certificato ATTIVO", p.Code, p.State)
		return pm, nil
	case len(p.P12Sealed) == 0 || len(p.PasswordSealed) == 0:
		pm.reason = "la postazione " + p.Code + " non ha un certificato emesso"
		return pm, nil
	}
	pm.station = *p
	cf, email, err := lifecycle.ASCAddress(tx, p.ISTAT)
	if err != nil {
		return pm, err
	}
	if cf == "" || email == "" {
		pm.reason = "il comune " + p.ISTAT + " non ha un sindaco (ASC) con utenza ATTIVA e un indirizzo e-mail"
		return pm, nil
	}
	pm.email = email
	if person, err := tx.Person(cf); err == nil {
		pm.person = *person
	} else if !errors.Is(err, store.ErrNotFound) {
		return pm, err
	}
	return pm, nil
}

// FirstCertMessageID is the stable Message-ID of the first-certificate
// message of postazione code.
func FirstCertMessageID(code string, from *netmail.Address) string {
	return "primo-certificato-" + code + "@" + MessageDomain(from)
}

func composeFirstCert(env *Env, pm *pinMessage, from *netmail.Address, key openpgp.EntityList, signer *openpgp.Entity) ([]byte, error) {
	code := pm.station.Code
	p12, err := env.Sealer.Open(pm.station.P12Sealed, domain.P12SealContext(code))
	if err != nil {
		return nil, fmt.Errorf("P12 della postazione %s: %w", code, err)
	}
	pw, err := env.Sealer.Open(pm.station.PasswordSealed, domain.PasswordSealContext(code))
	if err != nil {
		return nil, fmt.Errorf("password della postazione %s: %w", code, err)
	}
	defer clear(pw)
	name := strings.TrimSpace(pm.person.Name + " " + pm.person.Surname)
	msg := &mail.Message{From: from.String(), To: pm.email, Subject: PINSubject,
		MessageID: FirstCertMessageID(code, from), Date: pm.m.Queued, Text: FirstCertText(name, code, string(pw)),
		Attachments: []mail.Attachment{{Name: code + ".p12", ContentType: FirstCertAttachmentType, Data: p12}}}
	return mail.Compose(msg, func(inner []byte) ([]byte, error) { return pgp.EncryptSign(inner, key, signer) })
}

// FirstCertText is the body of the first-certificate message (plain
// Italian).
func FirstCertText(name, code, password string) string {
	greeting := "Gentile Sindaco,"
	if name != "" {
		greeting = "Gentile " + name + ","
	}
	return greeting + `

in allegato il primo certificato di postazione del comune per l'accesso
ad ANPR, ` + code + `.p12, con la relativa password:

  Postazione:  ` + code + `
  Password:    ` + password + `

Installi il certificato sulla prima postazione (importando il file .p12
con questa password) e non lo inoltri ad altri. Gli altri certificati del
comune sono scaricati dall'amministratore locale delle postazioni (ALP)
dalla console di sicurezza.

Il Ministero dell'Interno non chiede mai credenziali, PIN, PUK o
password per telefono o per posta elettronica: non risponda a richieste
di questo tipo.

Messaggio automatico, non rispondere.
`
}
