package census

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/istat"

	"github.com/xuri/excelize/v2"
)

// Column names of the Utenti sheet (docs/rules.md#census).
const (
	ColISTAT    = "Codice ISTAT"
	ColComune   = "Comune"
	ColCF       = "Codice Fiscale"
	ColCognome  = "Cognome"
	ColNome     = "Nome"
	ColSesso    = "Sesso"
	ColNascita  = "Data di nascita"
	ColEmail    = "Email"
	ColPEC      = "PEC"
	ColProfili  = "Profili"
	ColCard     = "Smart Card"
	ColAmbiente = "Ambiente"

	ColNumPostazioni = "Numero postazioni"
	ColServer        = "Certificato server"
)

// UserColumns are the required columns of the Utenti sheet.
var UserColumns = []string{ColISTAT, ColComune, ColCF, ColCognome, ColNome, ColSesso, ColNascita, ColEmail, ColPEC, ColProfili, ColCard, ColAmbiente}

// WorkstationColumns are the required columns of the Postazioni sheet.
var WorkstationColumns = []string{ColISTAT, ColNumPostazioni, ColServer}

// UserRow is a validated row of the Utenti sheet.
type UserRow struct {
	Row          int
	ISTAT        string
	CF           string
	Surname      string
	Name         string
	Sex          string
	BirthDate    string // YYYY-MM-DD, from the row or the CF
	Email        string
	PEC          string
	Profiles     []domain.Profile
	Card         bool
	Environments []domain.Environment
}

// rowError is a refusal of a row: a code and a message naming the column.
type rowError struct {
	Code, Message string
}

func (e *rowError) Error() string { return e.Message }

func refuse(code, format string, args ...any) *rowError {
	return &rowError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Validator checks census rows against the table of comuni.
type Validator struct {
	Comuni *istat.Table
}

// MaxCell is the longest value a census cell may hold; no name, code or
// address is longer, and it bounds the size of a row in the store.
const MaxCell = 256

// tooLong refuses a row with a cell over MaxCell characters.
func tooLong(h *header, cells []string) *rowError {
	for i, c := range cells {
		if len(c) > MaxCell {
			name := colLetter(i)
			for n, j := range h.index {
				if j == i {
					name = fmt.Sprintf("%q (%s)", n, colLetter(i))
				}
			}
			return refuse("VALORE_TROPPO_LUNGO", "colonna %s: %d caratteri, al massimo %d", name, len(c), MaxCell)
		}
	}
	return nil
}

// User validates one data row of the Utenti sheet. The checks run in the
// order of the columns, and the first one that fails refuses the row.
func (v *Validator) User(h *header, cells []string, row int) (*UserRow, *rowError) {
	if e := tooLong(h, cells); e != nil {
		return nil, e
	}
	u := &UserRow{Row: row}
	if e := v.userComune(h, cells, u); e != nil {
		return nil, e
	}
	cf, e := v.userCF(h, cells, u)
	if e != nil {
		return nil, e
	}
	if e := userNames(h, cells, u); e != nil {
		return nil, e
	}
	if e := userSex(h, cells, u, cf); e != nil {
		return nil, e
	}
	if e := userBirthDate(h, cells, u, cf); e != nil {
		return nil, e
	}
	if e := userEmails(h, cells, u); e != nil {
		return nil, e
	}
	needsCard, e := userProfiles(h, cells, u)
	if e != nil {
		return nil, e
	}
	if e := userCard(h, cells, u, needsCard); e != nil {
		return nil, e
	}
	if e := userEnvironments(h, cells, u); e != nil {
		return nil, e
	}
	return u, nil
}

// userComune sets u.ISTAT: a known comune, whose name matches the Comune
// column when that is filled in.
func (v *Validator) userComune(h *header, cells []string, u *UserRow) *rowError {
	raw := h.cell(cells, ColISTAT)
	code, err := istat.NormalizeISTAT(raw)
	if err != nil {
		return refuse("ISTAT", "%s: %q non è un codice ISTAT (6 cifre)", h.where(ColISTAT), raw)
	}
	com, ok := v.Comuni.Lookup(code)
	if !ok {
		return refuse("ISTAT", "%s: il codice %s non è un comune italiano", h.where(ColISTAT), code)
	}
	u.ISTAT = code
	if name := h.cell(cells, ColComune); name != "" && !istat.SameName(name, com.Name) {
		return refuse("COMUNE", "%s: %q non corrisponde al codice %s (%s)", h.where(ColComune), name, code, com.Name)
	}
	return nil
}

// userCF sets u.CF and returns the parsed codice fiscale, whose place of
// birth is a known comune or a valid foreign state.
func (v *Validator) userCF(h *header, cells []string, u *UserRow) (codfisc.CF, *rowError) {
	rawCF := h.cell(cells, ColCF)
	u.CF = codfisc.Normalize(rawCF)
	if u.CF == "" {
		return codfisc.CF{}, refuse("CF", "%s: codice fiscale mancante", h.where(ColCF))
	}
	cf, err := codfisc.Parse(u.CF)
	if err != nil {
		return codfisc.CF{}, refuse("CF", "%s: %q: %v", h.where(ColCF), rawCF, err)
	}
	if !cf.Foreign() {
		if _, ok := v.Comuni.ByBelfiore(cf.Belfiore); !ok {
			return codfisc.CF{}, refuse("CF_LUOGO", "%s: %s: il codice del luogo di nascita %s non è noto", h.where(ColCF), u.CF, cf.Belfiore)
		}
	} else if !istat.ForeignBelfiore(cf.Belfiore) {
		return codfisc.CF{}, refuse("CF_LUOGO", "%s: %s: il codice dello stato di nascita %s non è valido", h.where(ColCF), u.CF, cf.Belfiore)
	}
	return cf, nil
}

// userNames sets u.Surname and u.Name; both are required.
func userNames(h *header, cells []string, u *UserRow) *rowError {
	if u.Surname = h.cell(cells, ColCognome); u.Surname == "" {
		return refuse("COGNOME", "%s: cognome mancante", h.where(ColCognome))
	}
	if u.Name = h.cell(cells, ColNome); u.Name == "" {
		return refuse("NOME", "%s: nome mancante", h.where(ColNome))
	}
	return nil
}

// userSex sets u.Sex from the codice fiscale; the Sesso column, when filled
// in, is M or F and agrees with it.
func userSex(h *header, cells []string, u *UserRow, cf codfisc.CF) *rowError {
	u.Sex = cf.Sex
	s := strings.ToUpper(h.cell(cells, ColSesso))
	if s == "" {
		return nil
	}
	if s != "M" && s != "F" {
		return refuse("SESSO", "%s: %q: atteso M o F", h.where(ColSesso), s)
	}
	if s != cf.Sex {
		return refuse("CF_SESSO", "%s: sesso %s, ma il codice fiscale %s è di una persona di sesso %s", h.where(ColSesso), s, u.CF, cf.Sex)
	}
	return nil
}

// userBirthDate sets u.BirthDate from the Data di nascita column, when
// filled in: a date that agrees with the codice fiscale.
func userBirthDate(h *header, cells []string, u *UserRow, cf codfisc.CF) *rowError {
	d := h.cell(cells, ColNascita)
	if d == "" {
		return nil
	}
	t, err := parseDate(d)
	if err != nil {
		return refuse("DATA_NASCITA", "%s: %q: %v", h.where(ColNascita), d, err)
	}
	if !cf.Matches(t) {
		return refuse("CF_NASCITA", "%s: %s non corrisponde alla data di nascita del codice fiscale %s", h.where(ColNascita), t.Format("02/01/2006"), u.CF)
	}
	u.BirthDate = t.Format("2006-01-02")
	return nil
}

// userEmails sets u.Email, a required personal address that is not a PEC,
// and u.PEC when that column is filled in.
func userEmails(h *header, cells []string, u *UserRow) *rowError {
	email := h.cell(cells, ColEmail)
	if email == "" {
		return refuse("EMAIL", "%s: l'e-mail personale è obbligatoria", h.where(ColEmail))
	}
	var err error
	if u.Email, err = checkEmail(email); err != nil {
		return refuse("EMAIL", "%s: %q: %v", h.where(ColEmail), email, err)
	}
	if IsPEC(u.Email) {
		return refuse("EMAIL_PEC", "%s: %s è un indirizzo PEC; l'e-mail personale non può essere una PEC (va nella colonna %q)", h.where(ColEmail), u.Email, ColPEC)
	}
	if pec := h.cell(cells, ColPEC); pec != "" {
		if u.PEC, err = checkEmail(pec); err != nil {
			return refuse("PEC", "%s: %q: %v", h.where(ColPEC), pec, err)
		}
	}
	return nil
}

// userProfiles sets u.Profiles, at least one known profile, each once, and
// reports whether one of them needs a smart card.
func userProfiles(h *header, cells []string, u *UserRow) (needsCard bool, e *rowError) {
	for _, p := range splitList(h.cell(cells, ColProfili)) {
		info, ok := domain.LookupProfile(p)
		if !ok {
			return false, refuse("PROFILO", "%s: profilo %q sconosciuto (ammessi: %s)", h.where(ColProfili), p, profileNames())
		}
		if !hasProfile(u.Profiles, info.Profile) {
			u.Profiles = append(u.Profiles, info.Profile)
		}
		needsCard = needsCard || info.NeedsCard
	}
	if len(u.Profiles) == 0 {
		return false, refuse("PROFILO", "%s: nessun profilo indicato", h.where(ColProfili))
	}
	return needsCard, nil
}

// userCard sets u.Card from the Smart Card column (SI or NO), which is SI
// when a profile needs the card.
func userCard(h *header, cells []string, u *UserRow, needsCard bool) *rowError {
	sc := h.cell(cells, ColCard)
	card, ok := parseYesNo(sc)
	if !ok {
		return refuse("SMART_CARD", "%s: %q: atteso SI o NO", h.where(ColCard), sc)
	}
	if needsCard && !card {
		var need []string
		for _, p := range u.Profiles {
			if info, _ := domain.LookupProfile(string(p)); info.NeedsCard {
				need = append(need, string(p))
			}
		}
		return refuse("SMART_CARD", "%s: il profilo %s richiede la smart card (Smart Card = SI)", h.where(ColCard), strings.Join(need, ", "))
	}
	u.Card = card
	return nil
}

// userEnvironments sets u.Environments: PRODUZIONE, PRE-SUBENTRO or both,
// in one order, so that "PRE-SUBENTRO;PRODUZIONE" is no change from
// "PRODUZIONE;PRE-SUBENTRO".
func userEnvironments(h *header, cells []string, u *UserRow) *rowError {
	for _, a := range splitList(h.cell(cells, ColAmbiente)) {
		e, ok := parseEnvironment(a)
		if !ok {
			return refuse("AMBIENTE", "%s: ambiente %q sconosciuto (ammessi: PRODUZIONE, PRE-SUBENTRO)", h.where(ColAmbiente), a)
		}
		if !hasEnv(u.Environments, e) {
			u.Environments = append(u.Environments, e)
		}
	}
	if len(u.Environments) == 0 {
		return refuse("AMBIENTE", "%s: ambiente mancante (PRODUZIONE, PRE-SUBENTRO o entrambi)", h.where(ColAmbiente))
	}
	if len(u.Environments) == 2 {
		u.Environments = []domain.Environment{domain.Produzione, domain.PreSubentro}
	}
	return nil
}

func hasProfile(ps []domain.Profile, p domain.Profile) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func hasEnv(es []domain.Environment, e domain.Environment) bool {
	for _, q := range es {
		if q == e {
			return true
		}
	}
	return false
}

func profileNames() string {
	var n []string
	for _, p := range domain.Profiles {
		n = append(n, string(p.Profile))
	}
	return strings.Join(n, ", ")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == '\n' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseEnvironment(s string) (domain.Environment, bool) {
	switch FoldHeader(s) {
	case "produzione":
		return domain.Produzione, true
	case "pre subentro", "presubentro":
		return domain.PreSubentro, true
	}
	return "", false
}

func parseYesNo(s string) (yes, ok bool) {
	switch FoldHeader(s) {
	case "si", "s", "yes", "y", "1", "true", "vero", "x":
		return true, true
	case "no", "n", "0", "false", "falso", "":
		return false, true
	}
	return false, false
}

// parseDate reads a date as a spreadsheet serial number, dd/mm/yyyy or
// yyyy-mm-dd; years outside 1900-2100 are refused.
func parseDate(s string) (time.Time, error) {
	t, err := parseAnyDate(s)
	if err == nil && (t.Year() < 1900 || t.Year() > 2100) {
		return time.Time{}, fmt.Errorf("anno %d fuori dall'intervallo 1900-2100", t.Year())
	}
	return t, err
}

func parseAnyDate(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if !(f >= 1 && f <= 2958465) { // also NaN

			return time.Time{}, fmt.Errorf("numero fuori dall'intervallo delle date")
		}
		t, err := excelize.ExcelDateToTime(f, false)
		if err != nil {
			return time.Time{}, err
		}
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), nil
	}
	for _, layout := range []string{"02/01/2006", "2/1/2006", "2006-01-02", "02-01-2006", "02.01.2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil { // some writers store a date-time
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("data non valida (atteso gg/mm/aaaa)")
}

// checkEmail returns the normalized address, or why it is not one.
func checkEmail(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", fmt.Errorf("indirizzo e-mail non valido")
	}
	at := strings.LastIndexByte(s, '@')
	domainPart := s[at+1:]
	if !strings.Contains(domainPart, ".") || strings.HasPrefix(domainPart, ".") || strings.HasSuffix(domainPart, ".") || strings.Contains(domainPart, "..") {
		return "", fmt.Errorf("dominio %q non valido", domainPart)
	}
	return s[:at] + "@" + strings.ToLower(domainPart), nil
}

// pecDomains are the certified-mail providers' domains (and their subdomains).
var pecDomains = []string{
	"legalmail.it", "pec.it", "postecert.it", "arubapec.it", "pec.aruba.it",
	"cert.legalmail.it", "pecimprese.it", "pec.libero.it", "cert.ruparpiemonte.it",
	"sicurezzapostale.it", "pec.actalis.it", "gigapec.it", "pecsicura.it",
}

// IsPEC reports whether an address is a certified-mail (PEC) address: a
// known PEC domain, or any domain with a label "pec" (pec.comune.roma.it).
func IsPEC(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	d := strings.ToLower(addr[at+1:])
	for _, p := range pecDomains {
		if d == p || strings.HasSuffix(d, "."+p) {
			return true
		}
	}
	for _, label := range strings.Split(d, ".") {
		if label == "pec" || strings.HasPrefix(label, "pec-") || strings.HasSuffix(label, "-pec") {
			return true
		}
	}
	return false
}
