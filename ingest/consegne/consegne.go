// Package consegne reads the prefetture's smart-card delivery manifests
// (docs/rules.md#manifests): prefetture/<PPP>/consegne/*.csv|*.xlsx,
// one row per card handed over to a comune, with the columns Codice ISTAT,
// Seriale, Codice Fiscale (the holder), Data consegna and Ritirata da (who
// collected the parcel for the comune: its ASC or APL).
//
// Each row is checked and applied on its own (a chunk of rows per store
// transaction), with an esito line and, when refused, a history entry with
// the reason. A row is refused when:
//
//   - the comune is not of this prefettura (istat.Table.Prefettura), or was
//     never censused;
//   - the card does not exist, is not IN PRODUZIONE, or is not the holder's;
//   - the holder has no utenza in that comune;
//   - the date is missing, not a date, or in the future;
//   - Ritirata da is not an active ASC or APL of that comune.
//
// A manifest is signed: when signatures are mandatory
// (cards.require_signature, the default) or the prefettura has a key
// (keys.prefetture/<PPP>.asc), the file must come with a detached OpenPGP
// signature <file>.asc of its exact bytes (type binary: a text-mode
// signature still verifies after the line ends change, and is refused) by
// that key; otherwise the whole file is refused, and nothing of it is
// applied.
//
// A manifest is identified by the SHA-256 of its content after decoding
// and normalising line ends (Canonical): the same manifest dropped again
// with CRLF line ends or in another encoding is a duplicate.
package consegne

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/esito"
	"anprsec/ingest/table"
	"anprsec/istat"
	"anprsec/lifecycle"
	"anprsec/pki/pgp"
	"anprsec/store"
	"anprsec/trust/cades"
)

// Columns of a manifest.
const (
	ColISTAT    = "Codice ISTAT"
	ColSerial   = "Seriale"
	ColCF       = "Codice Fiscale"
	ColDate     = "Data consegna"
	ColTakenBy  = "Ritirata da"
	SheetOfXLSX = "" // the first visible sheet
)

// Columns lists the columns of a manifest, in the order of
// docs/rules.md#manifests.
var Columns = []string{ColISTAT, ColSerial, ColCF, ColDate, ColTakenBy}

// Actor is the history actor of prefettura ppp.
func Actor(ppp string) string { return "prefettura " + ppp }

// chunkRows is the number of rows applied per store transaction.
const chunkRows = 250

// maxSignature bounds the size of a detached signature read from the drop.
const maxSignature = 64 << 10

// SignatureSuffix is the suffix of a manifest's detached OpenPGP
// signature, <file>.asc (in any case).
const SignatureSuffix = ".asc"

// Ingester applies the manifests of one prefettura.
type Ingester struct {
	Store  *store.Store
	Comuni *istat.Table
	Drop   drop.Drop // to read the detached signature <file>.asc
	PPP    string    // the prefettura's code (the folder prefetture/<PPP>/)
	// Keyring is the prefettura's key (nil: none configured).
	Keyring openpgp.EntityList
	// RequireSignature refuses a manifest without a valid signature even
	// when Keyring is nil (and then every manifest is refused).
	RequireSignature bool
	MaxRows          int
	Loc              *time.Location
	// CompanionOf finds the signature of a file (ingest.Inbox.CompanionOf:
	// <file>.asc in any case); nil looks for <file>.asc exactly.
	CompanionOf func(ctx context.Context, p string) (string, error)

	// CAdES (<file>.p7m) by an officer of the prefettura: the qualified
	// signature CAs (trust.signature_ca; nil: none accepted) and the
	// officers' codici fiscali (cards.prefettura_officers[PPP]); Now is the
	// time certificates are judged at (nil: the clock).
	SignatureCAs *cades.Anchors
	Officers     []string
	Now          func() time.Time
}

// Process implements ingest.Processor.
func (g *Ingester) Process(ctx context.Context, f *ingest.File) (ingest.Result, error) {
	data, err := os.ReadFile(f.Local)
	if err != nil {
		return ingest.Result{}, err
	}
	name := f.Name
	if strings.EqualFold(filepath.Ext(f.Name), EnvelopeSuffix) {
		var res *ingest.Result
		if name, data, res = g.openEnvelope(f.Name, data); res != nil {
			return *res, nil
		}
	} else if res, err := g.checkSignature(ctx, f, data); err != nil {
		return ingest.Result{}, err
	} else if res != nil {
		return *res, nil
	}
	t, err := table.Open(name, data, table.Options{Required: Columns, MaxRows: g.MaxRows})
	var fe *table.FileError
	if errors.As(err, &fe) {
		return ingest.Result{Refused: true, Code: fe.Code, Message: fe.Message}, nil
	}
	if err != nil {
		return ingest.Result{}, err
	}
	// The last chunk's transaction also commits the file.
	f.Expect((len(t.Rows) + chunkRows - 1) / chunkRows)
	for k := 0; k*chunkRows < len(t.Rows); k++ {
		if err := ctx.Err(); err != nil {
			return ingest.Result{}, err
		}
		rows := t.Rows[k*chunkRows : min(len(t.Rows), (k+1)*chunkRows)]
		err := f.CommitLines(k, len(rows), func(tx *store.Tx, i int) (esito.Line, error) {
			// The check reads the card that the delivery updates, and the
			// rows of a comune read its record and its sindaco's utenza:
			// read once per chunk.
			tx.CacheReads()
			line, err := g.apply(tx, f, t, rows[i])
			line.Sheet, line.Row = t.Sheet, rows[i].Line
			return line, err
		})
		if err != nil {
			return ingest.Result{}, err
		}
	}
	return ingest.Result{}, nil
}

// checkSignature verifies the signature of a manifest when one is wanted
// (docs/rules.md#manifests); a refusal is returned as a Result, naming
// what is wrong: no key to check with (FIRMA_CHIAVE_ASSENTE), no signature
// (FIRMA_MANCANTE), a text-mode one (FIRMA_TESTUALE), one that does not
// verify (FIRMA_NON_VALIDA).
func (g *Ingester) checkSignature(ctx context.Context, f *ingest.File, data []byte) (*ingest.Result, error) {
	if g.Keyring == nil && !g.RequireSignature {
		return nil, nil
	}
	if g.Keyring == nil {
		return refuseFile("FIRMA_CHIAVE_ASSENTE", "la firma è obbligatoria ma la chiave della prefettura %s non è configurata (%s.asc in keys.prefetture): nessun suo elenco è accettato finché la chiave non c'è", g.PPP, g.PPP), nil
	}
	sigPath := f.Path + SignatureSuffix
	if g.CompanionOf != nil {
		c, err := g.CompanionOf(ctx, f.Path)
		if err != nil {
			return nil, err
		}
		if c != "" {
			sigPath = c
		}
	}
	rc, err := g.Drop.Open(ctx, sigPath)
	if errors.Is(err, drop.ErrNotExist) {
		return refuseFile("FIRMA_MANCANTE", "manca la firma %s%s: la prefettura %s firma i suoi elenchi", f.Name, SignatureSuffix, g.PPP), nil
	}
	if err != nil {
		return nil, err
	}
	sig, err := io.ReadAll(io.LimitReader(rc, maxSignature+1))
	rc.Close()
	if err != nil {
		return nil, err
	}
	sigName := f.Name + sigPath[len(f.Path):]
	if len(sig) > maxSignature {
		return refuseFile("FIRMA_NON_VALIDA", "%s non è una firma (oltre %d byte)", sigName, maxSignature), nil
	}
	return g.verifySignature(sigPath[len(f.Path):], sigName, data, sig), nil
}

// verifySignature checks sig, the companion of a manifest with the given
// suffix, by the method the suffix names; nil when it verifies. ".asc" is
// a detached OpenPGP signature by the prefettura's key; a signature of
// another kind (a CAdES .p7s by an officer of the prefettura) is another
// case here, with the inbox's companion taking its suffix too.
func (g *Ingester) verifySignature(suffix, sigName string, data, sig []byte) *ingest.Result {
	switch strings.ToLower(suffix) {
	case SignatureSuffix:
		return g.verifyOpenPGP(sigName, data, sig)
	}
	return refuseFile("FIRMA_NON_VALIDA", "%s: firma di un tipo non previsto (%s)", sigName, suffix)
}

// verifyOpenPGP checks a detached OpenPGP signature of the manifest's exact
// bytes (type binary, 0x00) by the prefettura's key.
func (g *Ingester) verifyOpenPGP(sigName string, data, sig []byte) *ingest.Result {
	_, err := pgp.VerifyDetachedBinary(g.Keyring, data, sig)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgp.ErrTextSignature):
		return refuseFile("FIRMA_TESTUALE", "firma in modalità testo: %s è una firma OpenPGP di tipo testo (0x01), che resta valida anche se i fine riga del file cambiano; firmare il file così com'è: usare gpg --detach-sign senza --textmode", sigName)
	case errors.Is(err, pgp.ErrUnknownSigner):
		return refuseFile("FIRMA_NON_VALIDA", "%s è firmata con una chiave che non è quella della prefettura %s (%s.asc in keys.prefetture): %v", sigName, g.PPP, g.PPP, err)
	case errors.Is(err, pgp.ErrMalformed):
		return refuseFile("FIRMA_NON_VALIDA", "%s non è una firma OpenPGP separata (gpg --detach-sign): %v", sigName, err)
	default:
		return refuseFile("FIRMA_NON_VALIDA", "la firma %s non corrisponde al file o alla chiave della prefettura %s: %v", sigName, g.PPP, err)
	}
}

// EnvelopeSuffix names a manifest signed with CAdES, enveloping:
// <file>.csv.p7m or <file>.xlsx.p7m.
const EnvelopeSuffix = ".p7m"

// openEnvelope verifies a CAdES-signed manifest (docs/rules.md#manifests):
// the signature is valid, its certificate chains to trust.signature_ca, is
// valid now and not revoked, and its codice fiscale is one of the
// prefettura's officers (cards.prefettura_officers). It returns the name of
// the signed file and its content, or the refusal of the whole manifest.
func (g *Ingester) openEnvelope(name string, sig []byte) (string, []byte, *ingest.Result) {
	inner := name[:len(name)-len(EnvelopeSuffix)]
	if ext := strings.ToLower(filepath.Ext(inner)); ext != ".csv" && ext != ".xlsx" {
		return "", nil, refuseFile("NOME_FILE_FIRMATO", "%s: un elenco firmato si chiama <file>.csv.p7m o <file>.xlsx.p7m", name)
	}
	now := time.Now()
	if g.Now != nil {
		now = g.Now()
	}
	s, err := cades.Verify(nil, sig, false, g.SignatureCAs, now)
	if err != nil {
		var ce *cades.Error
		if errors.As(err, &ce) {
			return "", nil, refuseFile(ce.Code, "%s: %s", name, ce.Message)
		}
		return "", nil, refuseFile(cades.FirmaNonValida, "%s: %v", name, err)
	}
	if !slices.Contains(g.Officers, s.CF) {
		return "", nil, refuseFile("FIRMATARIO_NON_AUTORIZZATO", "%s è firmato da %s, che non è tra i funzionari della prefettura %s (cards.prefettura_officers)", name, s.CF, g.PPP)
	}
	return inner, s.Content, nil
}

// refuseFile is the refusal of a whole manifest.
func refuseFile(code, format string, args ...any) *ingest.Result {
	return &ingest.Result{Refused: true, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Canonical is the content a manifest is identified by (ingest.Inbox's
// Canonical): for a CSV its text decoded to UTF-8 with LF line ends and no
// final line end (table.CanonicalCSV), so that the same manifest dropped
// again with other line ends or in another encoding is the same content;
// nil (the raw bytes) for a workbook, or a CSV the reader cannot decode.
func Canonical(name string, data []byte) []byte {
	if strings.EqualFold(filepath.Ext(name), EnvelopeSuffix) {
		// The document inside, not the envelope: signed again, or as a
		// .csv with its .asc, it is the same manifest.
		content, err := cades.EnvelopedContent(data)
		if err != nil {
			return nil
		}
		name, data = name[:len(name)-len(EnvelopeSuffix)], content
		if c := Canonical(name, data); c != nil {
			return c
		}
		return data
	}
	if !strings.EqualFold(filepath.Ext(name), ".csv") {
		return nil
	}
	if text, ok := table.CanonicalCSV(data); ok {
		return text
	}
	return nil
}

func refused(code, format string, args ...any) esito.Line {
	return esito.Line{Outcome: esito.Scartato, Code: code, Message: fmt.Sprintf(format, args...)}
}

// apply checks one row and, when it is right, records the delivery.
// Refusals are recorded in the history too.
func (g *Ingester) apply(tx *store.Tx, f *ingest.File, t *table.Table, r *table.Row) (esito.Line, error) {
	src := f.Source(Actor(g.PPP), t.Sheet, r.Line)
	line, d, err := g.check(tx, t, r)
	if err != nil {
		return line, err
	}
	if line.Outcome == esito.Scartato {
		key := strings.ToUpper(r.Get(ColSerial))
		if key == "" {
			key = "-"
		}
		return line, tx.Record(src, "consegna.rifiutata", "smartcard", key, line.Code+": "+line.Message)
	}
	if err := lifecycle.DeliverCard(tx, src, d.card, d.at, d.by, d.asc); err != nil {
		var se *lifecycle.StateError
		if errors.As(err, &se) {
			line = refused("STATO", "%v", err)
			return line, tx.Record(src, "consegna.rifiutata", "smartcard", d.card.Serial, line.Code+": "+line.Message)
		}
		return line, err
	}
	if d.asc {
		return esito.Line{Outcome: esito.OK, Code: "ATTIVA", Message: fmt.Sprintf(
			"smart card %s consegnata al comune e attiva (sindaco): seconde metà di PIN, PUK e password in invio per e-mail", d.card.Serial)}, nil
	}
	return esito.Line{Outcome: esito.OK, Code: "CONSEGNATA", Message: fmt.Sprintf(
		"smart card %s consegnata al comune; diventa attiva quando il comune registra la consegna al titolare", d.card.Serial)}, nil
}

// delivery is a manifest row that passes the checks: the card handed over,
// on day at, to by (the comune's ASC or an APL of it).
type delivery struct {
	card *domain.SmartCard
	asc  bool // the holder is the comune's active sindaco: the card is active at once
	at   time.Time
	by   string
}

// refusal is a check's refusal of a row: its receipt line.
type refusal struct{ line esito.Line }

func (r *refusal) Error() string { return r.line.Message }

func refuseRow(code, format string, args ...any) error {
	return &refusal{refused(code, format, args...)}
}

// check returns the delivery of a row, or the line refusing it (with a nil
// delivery); an error is a failure of the store.
func (g *Ingester) check(tx *store.Tx, t *table.Table, r *table.Row) (esito.Line, *delivery, error) {
	d, err := g.checkRow(tx, t, r)
	var no *refusal
	if errors.As(err, &no) {
		return no.line, nil, nil
	}
	if err != nil {
		return esito.Line{}, nil, err
	}
	return esito.Line{Outcome: esito.OK}, d, nil
}

// checkRow checks a row in the order of the refusals listed in the package
// doc: every column filled in, the comune, the card, its holder and its
// state, the date, who collected the parcel.
func (g *Ingester) checkRow(tx *store.Tx, t *table.Table, r *table.Row) (*delivery, error) {
	if r.Err != nil {
		return nil, refuseRow(r.Err.Code, "%s", r.Err.Message)
	}
	for _, col := range Columns {
		if r.Get(col) == "" {
			return nil, refuseRow("CAMPO_MANCANTE", "%s è vuota", t.Where(col))
		}
	}
	code, info, err := g.comuneOf(tx, t, r)
	if err != nil {
		return nil, err
	}
	card, holder, err := cardOf(tx, t, r, code, info)
	if err != nil {
		return nil, err
	}
	at, err := g.deliveryDate(tx, t, r)
	if err != nil {
		return nil, err
	}
	by, err := takenBy(tx, t, r, code, info)
	if err != nil {
		return nil, err
	}
	// The sindaco's card is active at once only while his utenza is.
	return &delivery{card: card, asc: holder.Has(domain.ASC) && holder.State == domain.UtenzaAttiva, at: at, by: by}, nil
}

// comuneOf returns the row's comune: an existing comune of this
// prefettura, censused.
func (g *Ingester) comuneOf(tx *store.Tx, t *table.Table, r *table.Row) (string, istat.Comune, error) {
	code, err := istat.NormalizeISTAT(r.Get(ColISTAT))
	if err != nil {
		return "", istat.Comune{}, refuseRow("ISTAT", "%s: %v", t.Where(ColISTAT), err)
	}
	info, ok := g.Comuni.Lookup(code)
	if !ok {
		return "", istat.Comune{}, refuseRow("ISTAT_SCONOSCIUTO", "%s: il comune %s non esiste", t.Where(ColISTAT), code)
	}
	if ppp, _ := g.Comuni.Prefettura(code); ppp != g.PPP {
		return "", istat.Comune{}, refuseRow("FUORI_PROVINCIA", "il comune %s (%s) non è di competenza della prefettura %s: nessuna modifica", code, info.Name, g.PPP)
	}
	if ok, err := tx.HasComune(code); err != nil {
		return "", istat.Comune{}, err
	} else if !ok {
		return "", istat.Comune{}, refuseRow("COMUNE_NON_CENSITO", "il comune %s (%s) non è stato censito", code, info.Name)
	}
	return code, info, nil
}

// cardOf returns the row's card and the utenza of its holder: the card
// exists, is the holder's and was asked for the row's comune, in which the
// holder has an utenza not cancelled, and it is IN PRODUZIONE.
func cardOf(tx *store.Tx, t *table.Table, r *table.Row, code string, info istat.Comune) (*domain.SmartCard, *domain.Utenza, error) {
	serial := strings.ToUpper(r.Get(ColSerial))
	card, err := tx.Card(serial)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, refuseRow("SERIALE_SCONOSCIUTO", "%s: la smart card %s non esiste", t.Where(ColSerial), serial)
	} else if err != nil {
		return nil, nil, err
	}
	cf := codfisc.Normalize(r.Get(ColCF))
	if card.CF != cf {
		return nil, nil, refuseRow("TITOLARE_DIVERSO", "%s: la smart card %s non è intestata a %s", t.Where(ColCF), serial, cf)
	}
	if card.ISTAT != code {
		return nil, nil, refuseRow("ALTRO_COMUNE", "la smart card %s è stata richiesta per il comune %s, non per il comune %s (%s): il plico va a quel comune", serial, card.ISTAT, code, info.Name)
	}
	holder, err := tx.Utenza(code, cf)
	if err != nil || holder.State == domain.UtenzaCancellata {
		return nil, nil, refuseRow("TITOLARE_NON_DEL_COMUNE", "%s non ha un'utenza nel comune %s (%s)", cf, code, info.Name)
	}
	if err := deliverable(serial, card.State); err != nil {
		return nil, nil, err
	}
	return card, holder, nil
}

// deliverable refuses a card that is not IN PRODUZIONE.
func deliverable(serial string, state domain.CardState) error {
	switch state {
	case domain.CardProduzione:
		return nil
	case domain.CardRichiesta:
		return refuseRow("NON_ORDINATA", "la smart card %s non è ancora stata ordinata al produttore", serial)
	case domain.CardConsegnata, domain.CardAttiva, domain.CardBloccata:
		return refuseRow("GIA_CONSEGNATA", "la smart card %s è già stata consegnata (stato %s)", serial, state)
	default:
		return refuseRow("STATO", "la smart card %s è %s: non può essere consegnata", serial, state)
	}
}

// deliveryDate returns the row's date, at noon in the configured time zone;
// a day after today's there is in the future, whatever the hour the
// manifest is read.
func (g *Ingester) deliveryDate(tx *store.Tx, t *table.Table, r *table.Row) (time.Time, error) {
	at, err := t.Date(r.Get(ColDate))
	if err != nil {
		return time.Time{}, refuseRow("DATA", "%s: %v", t.Where(ColDate), err)
	}
	loc := g.Loc
	if loc == nil {
		loc = time.Local
	}
	at = time.Date(at.Year(), at.Month(), at.Day(), 12, 0, 0, 0, loc)
	now := tx.Now.In(loc)
	if at.After(time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, loc)) {
		return time.Time{}, refuseRow("DATA_FUTURA", "%s: la data di consegna %s è nel futuro", t.Where(ColDate), at.Format("02/01/2006"))
	}
	return at, nil
}

// takenBy returns who collected the parcel: an active ASC or APL of the
// comune.
func takenBy(tx *store.Tx, t *table.Table, r *table.Row, code string, info istat.Comune) (string, error) {
	by := codfisc.Normalize(r.Get(ColTakenBy))
	u, err := tx.Utenza(code, by)
	if err != nil || u.State != domain.UtenzaAttiva || !(u.Has(domain.ASC) || u.Has(domain.APL)) {
		return "", refuseRow("RITIRO_NON_AUTORIZZATO", "%s: %s non è il sindaco (ASC) né un suo delegato (APL) attivo nel comune %s (%s)", t.Where(ColTakenBy), by, code, info.Name)
	}
	return by, nil
}
