package audit

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"anprsec/domain"
	"anprsec/istat"
	"anprsec/lifecycle"
	"anprsec/store"
)

// Sheet names of the national workbook.
const (
	SummarySheet   = "Riepilogo"
	AnomaliesSheet = "Anomalie"
	NationalUsers  = "Utenze"
	HistorySheet   = "Storico"
	CampaignsSheet = "Avvisi"
	NoticesSheet   = "Avvisi per comune"
)

// RefusedAction is the history action of a console request refused for
// authorization (Actor: the operator's CF, Detail: the reason).
const RefusedAction = "richiesta.rifiutata"

// Kinds of anomaly (the Tipo column of the Anomalie sheet).
const (
	AnomalyMandatory   = "Comune senza profilo obbligatorio con smart card attiva"
	AnomalyAdminCard   = "ALS/ALP con smart card bloccata o mancante"
	AnomalyManyComuni  = "Persona con utenze in molti comuni"
	AnomalyCertExpiry  = "Certificato postazione in scadenza"
	AnomalyCardExpiry  = "Smart card in scadenza"
	AnomalyCardLate    = "Smart card in ritardo di produzione"
	AnomalyRefused     = "Richiesta rifiutata per autorizzazione"
	AnomalyCeased      = "Comune cessato o con un nuovo codice"
	AnomalyNotice      = "Comune inadempiente: verifica dell'elenco utenti non confermata"
	maxSheetRows       = 1_048_576
	historyTruncatedAt = maxSheetRows - 1
)

var anomalyCols = []column{
	{"Tipo", 44, kText},
	{"Codice ISTAT", 12, kText},
	{"Comune", 24, kText},
	{"Codice Fiscale o codice", 20, kText},
	{"Nominativo", 28, kText},
	{"Dettaglio", 60, kText},
	{"Data", 18, kDateTime},
}

var nationalUserCols = append([]column{
	{"Codice ISTAT", 12, kText},
	{"Comune", 24, kText},
}, userCols...)

var historyCols = []column{
	{"Data e ora", 19, kDateTime},
	{"Operazione", 22, kText},
	{"Oggetto", 12, kText},
	{"Chiave", 28, kText},
	{"Autore", 20, kText},
	{"File", 40, kText},
	{"Foglio", 12, kText},
	{"Riga", 7, kInt},
	{"Dettaglio", 60, kText},
}

// NationalFiles are the names (as given to the Target) and figures of a
// national export.
type NationalFiles struct {
	XLSX    string
	Monthly []string // one CSV per month of the period
	// Revocations are the revoche-<YYYY-MM>.csv, one per month of the
	// period.
	Revocations []string
	Utenze      int
	Anomalie    int
	Storico     int
	Truncated   bool // the history did not fit in one sheet
}

// cardInfo is what the national pass keeps of a card: its state and
// expiry, by serial (one small entry per card, not the records).
type cardInfo struct {
	state   domain.CardState
	expires time.Time
}

type monthly struct {
	issued, revoked, activated int
}

// national is the state of one national export.
type national struct {
	e       *Exporter
	tx      *store.Tx
	now     time.Time
	period  Period
	names   map[string]string // ISTAT -> comune name
	cards   map[string]cardInfo
	persons *persons
	joinedP map[string]string // profiles (length-prefixed) -> spelled list
	joinedE map[string]string // environments, the same
	key     []byte
	months  map[string]map[string]*monthly // YYYY-MM -> ISTAT -> figures
	revoked []revocation                   // revocations final in the period

	byProfile map[domain.Profile]int
	byCard    map[domain.CardState]int
	byCert    map[domain.CertState]int
	nUtenze   int
	nPersons  int
	nCards    int
	nPost     int

	anom *table
	pipe *pipe
	res  NationalFiles
}

// National writes the national workbook sicurezza-<YYYYMMDD>.xlsx (sheets
// Riepilogo with charts, Anomalie, Utenze, Storico for the period, Revoche)
// and, per month of the period, mensile-<YYYY-MM>.csv (certificates issued
// and revoked, cards activated, per comune) and revoche-<YYYY-MM>.csv (each
// certificate or card whose revocation became final in the month).
func (e *Exporter) National(ctx context.Context, p Period) (NationalFiles, error) {
	n := &national{e: e, now: e.now(), period: p,
		names: map[string]string{}, cards: map[string]cardInfo{}, months: map[string]map[string]*monthly{},
		joinedP: map[string]string{}, joinedE: map[string]string{},
		byProfile: map[domain.Profile]int{}, byCard: map[domain.CardState]int{}, byCert: map[domain.CertState]int{}}
	for _, m := range monthsOf(p, e.loc()) {
		n.months[m] = map[string]*monthly{}
	}
	n.res.XLSX = e.place(NationalDir, NationalName(e.day(n.now)))

	f := excelize.NewFile(excelize.Options{TmpDir: e.tempDir()})
	defer f.Close()
	err := e.Store.View(func(tx *store.Tx) error {
		n.tx = tx
		return n.workbook(ctx, f)
	})
	// What the sheets needed of persons and cards is no longer needed
	// while the workbook is compressed.
	n.tx, n.persons, n.cards = nil, nil, nil
	if err != nil {
		return n.res, err
	}
	tmp, err := os.CreateTemp(e.tempDir(), ".audit-*.xlsx")
	if err != nil {
		return n.res, err
	}
	defer os.Remove(tmp.Name())
	if err := saveTo(f, tmp); err != nil {
		tmp.Close()
		return n.res, err
	}
	if err := tmp.Close(); err != nil {
		return n.res, err
	}
	f.Close()
	if err := e.putFile(ctx, n.res.XLSX, tmp.Name()); err != nil {
		return n.res, err
	}
	if err := n.monthlyCSVs(ctx); err != nil {
		return n.res, err
	}
	if err := n.revocationCSVs(ctx); err != nil {
		return n.res, err
	}
	return n.res, nil
}

// monthsOf lists the months (YYYY-MM, in loc) that the period touches.
func monthsOf(p Period, loc *time.Location) []string {
	if !p.To.After(p.From) {
		return nil
	}
	var out []string
	f := p.From.In(loc)
	m := time.Date(f.Year(), f.Month(), 1, 0, 0, 0, 0, loc)
	for m.Before(p.To) {
		out = append(out, m.Format("2006-01"))
		m = m.AddDate(0, 1, 0)
	}
	return out
}

func (n *national) in(t time.Time) bool {
	return !t.IsZero() && !t.Before(n.period.From) && t.Before(n.period.To)
}

func (n *national) month(t time.Time, istat string) *monthly {
	if !n.in(t) {
		return nil
	}
	byComune := n.months[t.In(n.e.loc()).Format("2006-01")]
	if byComune == nil {
		return nil
	}
	m := byComune[istat]
	if m == nil {
		m = &monthly{}
		byComune[istat] = m
	}
	return m
}

func (n *national) expiring(t time.Time) bool {
	return !t.IsZero() && !t.Before(n.now) && !t.After(n.now.Add(n.e.window()))
}

func (n *national) personName(cf string) string {
	p, ok := n.persons.get(cf)
	if !ok {
		return ""
	}
	return strings.TrimSpace(p.surname + " " + p.name)
}

func (n *national) anomaly(kind, istat, key, name, detail string, when time.Time) error {
	n.res.Anomalie++
	t := n.anom
	t.begin()
	t.text(kind)
	t.text(istat)
	t.text(n.names[istat])
	t.text(key)
	t.text(name)
	t.text(detail)
	t.time(when)
	return t.endData()
}

func (n *national) workbook(ctx context.Context, f *excelize.File) error {
	st, err := n.sheets(f)
	if err != nil {
		return err
	}
	p := newPipe()
	defer p.close()
	n.pipe = p
	if n.anom, err = n.streamed(f, st, anomalyCols, AnomaliesSheet); err != nil {
		return err
	}
	users, err := n.streamed(f, st, nationalUserCols, NationalUsers)
	if err != nil {
		return err
	}
	// The scans, in this order, each followed by a look at ctx: comuni
	// (names, for every other sheet), persons, cards, postazioni, utenze.
	for _, scan := range []func() error{n.readComuni, n.readPersons, n.readCards, n.readPostazioni,
		func() error { return n.utenzeSheet(users) }} {
		if err := scan(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := n.manyComuni(); err != nil {
		return err
	}
	// History of the period, refused requests.
	if err := n.history(f, st); err != nil {
		return err
	}
	if err := n.revocationsSheet(f, st); err != nil {
		return err
	}
	// Security notice campaigns, and their overdue comuni.
	if err := n.campaigns(f, st); err != nil {
		return err
	}
	if err := n.anom.finish("Anomalie"); err != nil {
		return err
	}
	if err := p.close(); err != nil {
		return err
	}
	return n.summary(f, st)
}

// sheets names the four sheets of the workbook, in order, and sets its
// properties.
func (n *national) sheets(f *excelize.File) (*styles, error) {
	st, err := newStyles(f)
	if err != nil {
		return nil, err
	}
	if err := f.SetSheetName("Sheet1", SummarySheet); err != nil {
		return nil, err
	}
	for _, s := range []string{AnomaliesSheet, NationalUsers, HistorySheet, CampaignsSheet, NoticesSheet, RevocationsSheet} {
		if _, err := f.NewSheet(s); err != nil {
			return nil, err
		}
	}
	f.SetDocProps(&excelize.DocProperties{Title: "Riepilogo sicurezza ANPR", Creator: "anprsec"})
	return st, nil
}

// streamed is a table of cols on sheet name, written through the pipe,
// its header written.
func (n *national) streamed(f *excelize.File, st *styles, cols []column, name string) (*table, error) {
	t := newTable(cols, n.e.loc())
	t.pipe = n.pipe
	if err := t.sheet(f, st, name, 1); err != nil {
		return nil, err
	}
	if err := t.header(); err != nil {
		return nil, err
	}
	return t, nil
}

// readComuni keeps the name of every comune.
func (n *national) readComuni() error {
	return n.tx.Comuni(func(c *domain.Comune) error {
		n.names[c.ISTAT] = c.Name
		return nil
	})
}

// readPersons keeps names, cards and last changes of persons, read in one
// scan rather than looked up once per utenza.
func (n *national) readPersons() error {
	var err error
	n.persons, err = loadPersons(n.tx)
	return err
}

// readCards counts the cards by state, keeps their states and expiries,
// counts their activations per month and reports the active or blocked
// ones about to expire.
func (n *national) readCards() error {
	return n.tx.AllCards(func(c *domain.SmartCard) error {
		n.nCards++
		n.byCard[c.State]++
		n.cards[c.Serial] = cardInfo{c.State, c.Expires}
		if m := n.month(c.Activated, c.ISTAT); m != nil {
			m.activated++
		}
		if (c.State == domain.CardAttiva || c.State == domain.CardBloccata) && n.expiring(c.Expires) {
			return n.anomaly(AnomalyCardExpiry, c.ISTAT, c.CF, n.personName(c.CF),
				"smart card "+c.Serial+" ("+string(c.State)+")", c.Expires)
		}
		if late, days := n.e.Late.Late(c, n.now); late {
			return n.anomaly(AnomalyCardLate, c.ISTAT, c.CF, n.personName(c.CF),
				fmt.Sprintf("smart card %s in produzione da %d giorni lavorativi (oltre %d)", c.Serial, days, n.e.Late.Days), c.Ordered)
		}
		return nil
	})
}

// readPostazioni counts the certificates by state, counts issuances and
// revocations per month and reports the active or blocked ones about to
// expire.
func (n *national) readPostazioni() error {
	return n.tx.AllPostazioni(func(p *domain.Postazione) error {
		n.nPost++
		n.byCert[p.State]++
		n.postazioneRevocations(p)
		if len(p.CertDER) > 0 && !p.Updated.Before(n.period.From) {
			if m := n.month(issued(p), p.ISTAT); m != nil {
				m.issued++
			}
		}
		if p.State == domain.CertRevocato {
			if m := n.month(p.RevokedAt, p.ISTAT); m != nil {
				m.revoked++
			}
		}
		if (p.State == domain.CertAttivo || p.State == domain.CertBloccato) && n.expiring(p.NotAfter) {
			detail := "certificato " + string(p.State)
			if p.Label != "" {
				detail += ", postazione " + p.Label
			}
			return n.anomaly(AnomalyCertExpiry, p.ISTAT, p.Code, "", detail, p.NotAfter)
		}
		return nil
	})
}

// utenzeSheet writes the national list of utenze, with the profile
// counts, the mandatory profiles of each comune (utenze come grouped by
// comune) and the ALS/ALP cards.
func (n *national) utenzeSheet(users *table) error {
	if err := n.utenze(users); err != nil {
		return err
	}
	if err := users.finish("Utenze"); err != nil {
		return err
	}
	n.res.Utenze = n.nUtenze
	return nil
}

// manyComuni reports the persons with utenze, not CANCELLATA, in many
// comuni, and counts the persons.
func (n *national) manyComuni() error {
	return n.tx.ComuniByPerson(func(cf string, codes []string) error {
		n.nPersons++
		if len(codes) < n.e.many() {
			return nil
		}
		// Only the utenze still there count (a CANCELLATA one keeps its
		// record and its index entry).
		active := codes[:0:0]
		for _, code := range codes {
			if u, err := n.tx.Utenza(code, cf); err == nil && u.State != domain.UtenzaCancellata {
				active = append(active, code)
			}
		}
		if codes = active; len(codes) < n.e.many() {
			return nil
		}
		return n.anomaly(AnomalyManyComuni, codes[0], cf, n.personName(cf),
			fmt.Sprintf("%d comuni: %s", len(codes), strings.Join(codes, ", ")), time.Time{})
	})
}

// issued is when a workstation certificate was issued: its NotBefore, or
// the last change of the record when the certificate does not parse.
func issued(p *domain.Postazione) time.Time {
	if c, err := x509.ParseCertificate(p.CertDER); err == nil {
		return c.NotBefore
	}
	return p.Updated
}

// comuneCheck counts, for the comune being walked, the profiles of its
// active utenze whose card is active: what the comune invariant of the
// audit looks at (lifecycle.AuditBreaches).
type comuneCheck struct {
	istat string
	staff lifecycle.Staff
}

func (n *national) activeCard(serial string) bool {
	c, ok := n.cards[serial]
	return ok && lifecycle.CardUsable(&domain.SmartCard{State: c.state, Expires: c.expires}, n.now)
}

func (n *national) closeComune(c *comuneCheck) error {
	if c.istat == "" {
		return nil
	}
	why := lifecycle.AuditBreaches(c.staff)
	if why == "" {
		return nil
	}
	return n.anomaly(AnomalyMandatory, c.istat, "", "", why, time.Time{})
}

func (n *national) utenze(users *table) error {
	seen := make(map[string]bool, len(n.names))
	var cur comuneCheck
	err := n.tx.AllUtenze(func(u *domain.Utenza) error {
		if u.ISTAT != cur.istat {
			if err := n.closeComune(&cur); err != nil {
				return err
			}
			cur = comuneCheck{istat: u.ISTAT, staff: lifecycle.Staff{}}
			seen[u.ISTAT] = true
		}
		return n.utenza(users, &cur, u)
	})
	if err != nil {
		return err
	}
	if err := n.closeComune(&cur); err != nil {
		return err
	}
	// Comuni without any utenza.
	var empty []string
	for code := range n.names {
		if !seen[code] {
			empty = append(empty, code)
		}
	}
	sort.Strings(empty)
	for _, code := range empty {
		if err := n.closeComune(&comuneCheck{istat: code, staff: lifecycle.Staff{}}); err != nil {
			return err
		}
	}
	return n.ceasedComuni()
}

// ceasedComuni reports the censused comuni that are no longer in force
// (merged, or moved to another code), naming the successor when the table
// of places knows it.
func (n *national) ceasedComuni() error {
	t := n.e.Table
	if t == nil {
		t = istat.Default()
	}
	codes := make([]string, 0, len(n.names))
	for code := range n.names {
		if _, ok := t.Lookup(code); !ok {
			codes = append(codes, code)
		}
	}
	sort.Strings(codes)
	for _, code := range codes {
		detail := "il codice ISTAT " + code + " non è più in uso"
		if ps := t.Places().ISTAT(code); len(ps) > 0 {
			last := ps[len(ps)-1]
			if !last.Until.IsZero() {
				detail += " dal " + last.Until.AddDate(0, 0, 1).Format("02/01/2006")
			}
			if next, ok := t.Places().Successor(last); ok && next.ISTAT != code {
				detail += "; ora " + next.ISTAT + " " + next.Name + " (" + next.Sigla + ")"
			}
		}
		if err := n.anomaly(AnomalyCeased, code, "", "", detail, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// utenza takes one utenza of the comune being walked (cur): it counts its
// profiles (unless CANCELLATA), writes its row, notes which mandatory
// profiles it holds with an active card, and reports an ALS or ALP
// without a usable card.
func (n *national) utenza(users *table, cur *comuneCheck, u *domain.Utenza) error {
	p, _ := n.persons.get(u.CF)
	info, hasCard := n.cards[p.card]
	if u.State != domain.UtenzaCancellata {
		for _, pr := range u.Profiles {
			n.byProfile[pr]++
		}
	}
	n.nUtenze++
	if err := n.userRow(users, u, p, info, hasCard); err != nil {
		return err
	}
	if u.State == domain.UtenzaCancellata {
		return nil
	}
	active := u.State == domain.UtenzaAttiva && n.activeCard(p.card)
	if active {
		cur.staff.Add(u.Profiles)
	}
	return n.adminCard(u, p, info, hasCard)
}

// userRow writes the row of userRow, with the comune first; the card's own
// last change is not kept (cardInfo), as before.
func (n *national) userRow(users *table, u *domain.Utenza, p person, info cardInfo, hasCard bool) error {
	cardState, serial := "", ""
	if p.card != "" && hasCard {
		cardState, serial = string(info.state), p.card
	} else if u.NeedsCard {
		cardState = "NESSUNA"
	}
	last := u.Updated
	if p.updated.After(last) {
		last = p.updated
	}
	users.begin()
	users.text(u.ISTAT)
	users.text(n.names[u.ISTAT])
	users.text(u.CF)
	users.text(p.surname)
	users.text(p.name)
	users.text(n.profiles(u.Profiles))
	users.text(n.envs(u.Environments))
	users.text(string(u.State))
	users.text(cardState)
	users.text(serial)
	users.text(u.Email)
	users.text(u.PEC)
	users.time(last)
	return users.endData()
}

// adminCard reports utenza u when it is ALS or ALP and its holder's card
// is missing, BLOCCATA or REVOCATA.
func (n *national) adminCard(u *domain.Utenza, p person, info cardInfo, hasCard bool) error {
	if !u.Has(domain.ALS) && !u.Has(domain.ALP) {
		return nil
	}
	var why string
	switch {
	case p.card == "" || !hasCard:
		why = "nessuna smart card"
	case info.state == domain.CardBloccata:
		why = "smart card " + p.card + " bloccata"
	case info.state == domain.CardRevocata:
		why = "smart card " + p.card + " revocata"
	case info.state == domain.CardScaduta:
		why = "smart card " + p.card + " scaduta"
	}
	if why == "" {
		return nil
	}
	var roles []string
	for _, r := range []domain.Profile{domain.ALS, domain.ALP} {
		if u.Has(r) {
			roles = append(roles, string(r))
		}
	}
	return n.anomaly(AnomalyAdminCard, u.ISTAT, u.CF, strings.TrimSpace(p.surname+" "+p.name),
		strings.Join(roles, ", ")+": "+why, time.Time{})
}

func (n *national) history(f *excelize.File, st *styles) error {
	h, err := n.streamed(f, st, historyCols, HistorySheet)
	if err != nil {
		return err
	}
	err = n.tx.EachHistory(0, func(en *store.Entry) (bool, error) {
		if !n.in(en.Time) {
			return !en.Time.After(n.period.To.Add(time.Hour)), nil
		}
		if en.Action == RefusedAction {
			if err := n.anomaly(AnomalyRefused, entryISTAT(en), en.Actor, n.personName(en.Actor),
				refusedDetail(en), en.Time); err != nil {
				return false, err
			}
		}
		if en.Action == CardRevokeAction && en.Kind == "smartcard" {
			if err := n.cardRevocation(en); err != nil {
				return false, err
			}
		}
		if n.res.Storico >= historyTruncatedAt-1 {
			n.res.Truncated = true
			return true, nil
		}
		n.res.Storico++
		h.begin()
		h.time(en.Time)
		h.text(en.Action)
		h.text(en.Kind)
		h.text(en.Key)
		h.text(en.Actor)
		h.text(en.File)
		h.text(en.Sheet)
		h.number(en.Row)
		h.text(en.Detail)
		return true, h.endData()
	})
	if err != nil {
		return err
	}
	if n.res.Truncated {
		if err := h.line("Storico troncato: il periodo ha più righe di quante ne tenga un foglio; esportare un periodo più breve"); err != nil {
			return err
		}
	}
	return h.finish("Storico")
}

var campaignCols = []column{
	{"Campagna", 20, kText},
	{"Stato", 12, kText},
	{"Avviata", 12, kDate},
	{"Scadenza", 12, kDate},
	{"Comuni", 9, kInt},
	{"Avvisati", 9, kInt},
	{"Confermati", 11, kInt},
	{"Sollecitati", 11, kInt},
	{"Inadempienti", 12, kInt},
	{"Senza destinatario", 12, kInt},
	{"Messaggi inviati", 10, kInt},
	{"Messaggi in coda", 10, kInt},
	{"Messaggi non recapitati", 12, kInt},
	{"Comuni con messaggi non recapitati", 40, kText},
}

var noticeCols = []column{
	{"Campagna", 20, kText},
	{"Codice ISTAT", 12, kText},
	{"Comune", 24, kText},
	{"Avvisato", 18, kDateTime},
	{"Destinatari", 11, kInt},
	{"Promemoria", 11, kInt},
	{"Confermato", 18, kDateTime},
	{"Confermato da", 20, kText},
	{"Nota", 30, kText},
	{"Inadempiente dal", 18, kDateTime},
	{"Messaggi non recapitati", 12, kInt},
}

// campaigns writes the Avvisi sheet, one row per security notice
// campaign (docs/rules.md#security-notice-campaign), the Avvisi per
// comune sheet, one row per comune of each campaign (its confirmation:
// when and who), and an anomaly for each overdue comune of a campaign not
// closed.
func (n *national) campaigns(f *excelize.File, st *styles) error {
	t, err := n.streamed(f, st, campaignCols, CampaignsSheet)
	if err != nil {
		return err
	}
	d, err := n.streamed(f, st, noticeCols, NoticesSheet)
	if err != nil {
		return err
	}
	rows := 0
	err = n.tx.Campaigns(func(c *store.Campaign) error {
		fg, err := n.tx.CampaignFiguresOf(c)
		if err != nil {
			return err
		}
		if err := t.data(c.ID, string(c.State), c.Start, c.Deadline, fg.Comuni, fg.Notified, fg.Confirmed, fg.Reminded,
			fg.Overdue, fg.NoRecipient, fg.MailsSent, fg.MailsQueued, fg.MailsFailed, strings.Join(fg.FailedComuni, ", ")); err != nil {
			return err
		}
		return n.tx.CampaignComuni(c.ID, func(cc *store.CampaignComune) error {
			if rows < historyTruncatedAt-1 {
				rows++
				overdue := cc.Overdue
				if !cc.Confirmed.IsZero() {
					overdue = time.Time{}
				}
				if err := d.data(c.ID, cc.ISTAT, cc.Name, cc.Notified, cc.Recipients, cc.Reminders, cc.Confirmed, cc.ConfirmedBy,
					cc.Note, overdue, fg.FailedBy[cc.ISTAT]); err != nil {
					return err
				}
			}
			if c.State == store.CampaignClosed || cc.Overdue.IsZero() || !cc.Confirmed.IsZero() {
				return nil
			}
			return n.anomaly(AnomalyNotice, cc.ISTAT, c.ID, "",
				fmt.Sprintf("campagna %s: scadenza del %s passata senza la conferma (CONFERMA_VERIFICA); %d promemoria",
					c.ID, c.Deadline.In(n.e.loc()).Format("02/01/2006"), cc.Reminders), cc.Overdue)
		})
	})
	if err != nil {
		return err
	}
	if err := t.finish("Avvisi"); err != nil {
		return err
	}
	return d.finish("AvvisiPerComune")
}

// entryISTAT finds the comune of a history entry: from its file
// (comuni/<ISTAT>/...) or its key (<ISTAT>/... or <ISTAT>-PC-...).
func entryISTAT(en *store.Entry) string {
	if rest, ok := strings.CutPrefix(en.File, "comuni/"); ok && len(rest) >= 6 && isDigits(rest[:6]) {
		return rest[:6]
	}
	if len(en.Key) >= 6 && isDigits(en.Key[:6]) {
		return en.Key[:6]
	}
	return ""
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func refusedDetail(en *store.Entry) string {
	d := en.Detail
	if en.File != "" {
		d += " (file " + en.File
		if en.Row > 0 {
			d += fmt.Sprintf(", riga %d", en.Row)
		}
		d += ")"
	}
	return d
}

// cardStates and certStates are the lifecycle orders of the summary.
var cardStates = []domain.CardState{domain.CardRichiesta, domain.CardProduzione, domain.CardConsegnata,
	domain.CardAttiva, domain.CardBloccata, domain.CardRevocata, domain.CardScaduta}

var certStates = []domain.CertState{domain.CertRichiesta, domain.CertAttivo, domain.CertBloccato,
	domain.CertRevocaInCorso, domain.CertRevocato, domain.CertScaduto}

// summary writes the Riepilogo sheet (small: normal mode) and its charts.
func (n *national) summary(f *excelize.File, st *styles) error {
	if err := n.summaryTotals(f, st); err != nil {
		return err
	}
	// Three tables: profile, card state, certificate state.
	row, chartRow := 14, 1
	for _, b := range n.summaryBlocks() {
		last, err := summaryTable(f, st, b, row)
		if err != nil {
			return err
		}
		if err := summaryChart(f, b, row, last, chartRow); err != nil {
			return err
		}
		chartRow += 15
		row = last + 2
	}
	s := SummarySheet
	if err := f.SetColWidth(s, "A", "A", 30); err != nil {
		return err
	}
	if err := f.SetColWidth(s, "B", "B", 20); err != nil {
		return err
	}
	return f.SetColWidth(s, "C", "C", 50)
}

// summarySet writes value v with style in cell of the Riepilogo sheet.
func summarySet(f *excelize.File, cell string, v any, style int) error {
	if err := f.SetCellValue(SummarySheet, cell, v); err != nil {
		return err
	}
	return f.SetCellStyle(SummarySheet, cell, cell, style)
}

// summaryText writes text v with style in cell of the Riepilogo sheet.
func summaryText(f *excelize.File, cell, v string, style int) error {
	// SetCellStr never makes a formula; the text style keeps it text.
	if err := f.SetCellStr(SummarySheet, cell, v); err != nil {
		return err
	}
	return f.SetCellStyle(SummarySheet, cell, cell, style)
}

// summaryTotals writes the title, the date, the period and the totals.
func (n *national) summaryTotals(f *excelize.File, st *styles) error {
	loc := n.e.loc()
	cells := []struct {
		cell  string
		v     any
		style int
	}{
		{"A1", "Riepilogo sicurezza ANPR", st.title},
		{"A2", "Data", st.head}, {"B2", n.now.In(loc), st.dateTime},
		{"A3", "Periodo dal", st.head}, {"B3", n.period.From.In(loc), st.dateTime},
		{"A4", "al", st.head}, {"B4", n.period.To.In(loc), st.dateTime},
		{"A6", "Totali", st.head}, {"B6", "Numero", st.head},
		{"A7", "Comuni", st.text}, {"B7", len(n.names), st.num},
		{"A8", "Utenze", st.text}, {"B8", n.nUtenze, st.num},
		{"A9", "Persone", st.text}, {"B9", n.nPersons, st.num},
		{"A10", "Smart card", st.text}, {"B10", n.nCards, st.num},
		{"A11", "Postazioni e server", st.text}, {"B11", n.nPost, st.num},
		{"A12", "Anomalie", st.text}, {"B12", n.res.Anomalie, st.num},
	}
	for _, c := range cells {
		var err error
		if str, ok := c.v.(string); ok {
			err = summaryText(f, c.cell, str, c.style)
		} else {
			err = summarySet(f, c.cell, c.v, c.style)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// summaryBlock is one table of the summary, with its chart.
type summaryBlock struct {
	title  string
	labels []string
	descr  []string
	values []int
	chart  excelize.ChartType
}

// summaryBlocks are the tables of the summary: by profile (with the
// descriptions), by card state, by certificate state.
func (n *national) summaryBlocks() []summaryBlock {
	var pb summaryBlock
	pb.title, pb.chart = "Profilo", excelize.Col
	for _, p := range domain.Profiles {
		pb.labels = append(pb.labels, string(p.Profile))
		pb.descr = append(pb.descr, p.Description)
		pb.values = append(pb.values, n.byProfile[p.Profile])
	}
	var cb summaryBlock
	cb.title, cb.chart = "Stato smart card", excelize.Bar
	for _, c := range cardStates {
		cb.labels = append(cb.labels, string(c))
		cb.values = append(cb.values, n.byCard[c])
	}
	var wb summaryBlock
	wb.title, wb.chart = "Stato certificato postazione", excelize.Bar
	for _, c := range certStates {
		wb.labels = append(wb.labels, string(c))
		wb.values = append(wb.values, n.byCert[c])
	}
	return []summaryBlock{pb, cb, wb}
}

// summaryTable writes table b with its header at row, and returns the
// row of its last line.
func summaryTable(f *excelize.File, st *styles, b summaryBlock, row int) (int, error) {
	if err := summaryText(f, fmt.Sprintf("A%d", row), b.title, st.head); err != nil {
		return 0, err
	}
	if err := summaryText(f, fmt.Sprintf("B%d", row), "Numero", st.head); err != nil {
		return 0, err
	}
	if b.descr != nil {
		if err := summaryText(f, fmt.Sprintf("C%d", row), "Descrizione", st.head); err != nil {
			return 0, err
		}
	}
	first := row + 1
	for i, l := range b.labels {
		r := first + i
		if err := summaryText(f, fmt.Sprintf("A%d", r), l, st.text); err != nil {
			return 0, err
		}
		if err := summarySet(f, fmt.Sprintf("B%d", r), b.values[i], st.num); err != nil {
			return 0, err
		}
		if b.descr != nil {
			if err := summaryText(f, fmt.Sprintf("C%d", r), b.descr[i], st.text); err != nil {
				return 0, err
			}
		}
	}
	return first + len(b.labels) - 1, nil
}

// summaryChart adds the chart of table b (header at row, last line at
// last) at chartRow of column E.
func summaryChart(f *excelize.File, b summaryBlock, row, last, chartRow int) error {
	s := SummarySheet
	first := row + 1
	return f.AddChart(s, fmt.Sprintf("E%d", chartRow), &excelize.Chart{
		Type: b.chart,
		Series: []excelize.ChartSeries{{
			Name:       fmt.Sprintf("%s!$B$%d", s, row),
			Categories: fmt.Sprintf("%s!$A$%d:$A$%d", s, first, last),
			Values:     fmt.Sprintf("%s!$B$%d:$B$%d", s, first, last),
		}},
		Title:     excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: b.title}}},
		Legend:    excelize.ChartLegend{Position: "none"},
		Format:    excelize.GraphicOptions{OffsetX: 10, OffsetY: 5},
		Dimension: excelize.ChartDimension{Width: 560, Height: 280},
	})
}

// profiles is joinProfiles, remembered per combination (a few dozen in a
// country: the spelled list is shared instead of built per utenza).
func (n *national) profiles(ps []domain.Profile) string {
	n.key = n.key[:0]
	for _, p := range ps {
		n.key = append(binary.AppendUvarint(n.key, uint64(len(p))), p...)
	}
	if s, ok := n.joinedP[string(n.key)]; ok {
		return s
	}
	s := joinProfiles(ps)
	if len(n.joinedP) < 4096 {
		n.joinedP[string(n.key)] = s
	}
	return s
}

// envs is joinEnv, remembered the same way.
func (n *national) envs(es []domain.Environment) string {
	n.key = n.key[:0]
	for _, e := range es {
		n.key = append(binary.AppendUvarint(n.key, uint64(len(e))), e...)
	}
	if s, ok := n.joinedE[string(n.key)]; ok {
		return s
	}
	s := joinEnv(es)
	if len(n.joinedE) < 4096 {
		n.joinedE[string(n.key)] = s
	}
	return s
}
