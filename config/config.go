// Package config loads anprsec.yaml. Every key has a default; secrets are
// never values in the file, only paths of files that hold them.
package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultYAML is the commented default configuration written by `anprsec init`.
// It is also parsed to obtain the defaults, so the file and the code agree.
//
//go:embed default.yaml
var DefaultYAML []byte

// Config is the whole configuration.
type Config struct {
	// Dir is the folder relative paths are resolved against (the folder of
	// the config file); not a YAML key.
	Dir string `yaml:"-"`

	DataDir string `yaml:"data_dir"`
	// MinFree is the free space a job needs on the store's and the local
	// drop's file systems to start (0: not checked).
	MinFree ByteSize `yaml:"min_free"`
	// MemoryLimit is the Go runtime's soft memory limit for every command
	// and the daemon (0: none; 128 MiB by default, under which the jobs
	// measured in the README's Performance section peak lowest);
	// GOMEMLIMIT in the environment overrides it.
	MemoryLimit ByteSize `yaml:"memory_limit"`
	Timezone    string   `yaml:"timezone"`

	Keys struct {
		Store  string `yaml:"store"`
		Backup string `yaml:"backup"`
		Seal   string `yaml:"seal"`
		// OpenPGP keys; init writes their defaults.
		Service    string `yaml:"service"`    // service secret key: signs orders and mails
		Producer   string `yaml:"producer"`   // card producer's public key: orders are encrypted to it
		Gateway    string `yaml:"gateway"`    // mail gateway's public key: used when a holder has none
		Holders    string `yaml:"holders"`    // folder of holders' public keys (*.asc)
		Prefetture string `yaml:"prefetture"` // folder of prefetture's public keys (<PPP>.asc)
	} `yaml:"keys"`

	PKI struct {
		CACert string `yaml:"ca_cert"`
		// CAKey is the CA key: a PEM file, or an RFC 7512 PKCS#11 URI
		// (pkcs11:token=...;object=...?module-path=...&pin-source=file:...)
		// of a key in an HSM; see (*Config).CAKey.
		CAKey string `yaml:"ca_key"`
		// Encoding of the PKCS#12 files: legacy (3DES) or modern (AES-256).
		Encoding string `yaml:"encoding"`
		// ValidityDays of workstation and server certificates.
		ValidityDays int `yaml:"validity_days"`
		// PasswordLength and PasswordAlphabet (base32 or hex) of the P12
		// passwords.
		PasswordLength   int    `yaml:"password_length"`
		PasswordAlphabet string `yaml:"password_alphabet"`
		// KeyAlgorithm of workstation keys: rsa2048 or ecdsa-p256.
		KeyAlgorithm string `yaml:"key_algorithm"`
		// BatchMax is the most certificates one run of certificati issues.
		BatchMax int `yaml:"batch_max"`
		// KeyPool is the number of pre-generated keys the pool-chiavi job
		// keeps ready for certificati (0: no pool).
		KeyPool int `yaml:"key_pool"`
		// RevokeGrace is the undo window of a revocation: the certificati
		// batch makes REVOCATA IN LAVORAZIONE final (REVOCATO) only once
		// this long has passed since the request; until then
		// `anprsec postazioni annulla-revoca` brings it back.
		RevokeGrace time.Duration `yaml:"revoke_grace"`
		// Renewal (docs/rules.md#renewal): RenewOverlap is how long a
		// renewed certificate stays valid after its successor's issue (less
		// when the successor's installation is registered first); with
		// AutoRenew the scadenze job asks the renewal of an ATTIVO
		// certificate RenewBefore its expiry.
		RenewOverlap time.Duration `yaml:"renew_overlap"`
		AutoRenew    bool          `yaml:"auto_renew"`
		RenewBefore  time.Duration `yaml:"renew_before"`
		// CRLValidity is nextUpdate - thisUpdate of the signed CRL.
		CRLValidity time.Duration `yaml:"crl_validity"`
		// Revocation discovery (docs/rules.md#certificates): URLs written
		// into every certificate issued, each left out when empty.
		CRLURL       string `yaml:"crl_url"`
		OCSPURL      string `yaml:"ocsp_url"`
		CAIssuersURL string `yaml:"ca_issuers_url"`
		// HTTPAddress is the public host:port where `anprsec run` serves
		// the CRL, the CA certificate and OCSP, at the paths of the URLs
		// above; empty: not served.
		HTTPAddress string `yaml:"http_address"`
		// OCSPValidity is nextUpdate - thisUpdate of an OCSP response; a
		// cached response is signed again after half of it.
		OCSPValidity time.Duration `yaml:"ocsp_validity"`
		// OCSPNonceRate is the most freshly signed OCSP responses a second
		// (requests with a nonce, serials never issued); 0: none.
		OCSPNonceRate float64 `yaml:"ocsp_nonce_rate"`
	} `yaml:"pki"`

	Drop struct {
		Type        string        `yaml:"type"` // local or sftp
		Local       string        `yaml:"local"`
		MaxFileSize ByteSize      `yaml:"max_file_size"`
		Settle      time.Duration `yaml:"settle"`
		// MaxAttempts is how many runs in a row an input file may make its
		// processing fail with the same error before it is refused
		// (ERRORE_ELABORAZIONE); failures of the environment do not count.
		MaxAttempts int `yaml:"max_attempts"`
		SFTP        struct {
			Address    string        `yaml:"address"`
			User       string        `yaml:"user"`
			KeyFile    string        `yaml:"key_file"`
			KnownHosts string        `yaml:"known_hosts"`
			BasePath   string        `yaml:"base_path"`
			Timeout    time.Duration `yaml:"timeout"`
			Keepalive  time.Duration `yaml:"keepalive"`
		} `yaml:"sftp"`
	} `yaml:"drop"`

	Census struct {
		MaxRows   int `yaml:"max_rows"`
		ChunkRows int `yaml:"chunk_rows"`
	} `yaml:"census"`

	Cards struct {
		SerialPrefix string `yaml:"serial_prefix"`
		// ValidityDays of a card, counted from its order to the producer.
		ValidityDays int `yaml:"validity_days"`
		// OrderMax is the most cards one run of ordini-sc puts in its order.
		OrderMax int `yaml:"order_max"`
		// RequireSignature refuses a delivery manifest without a valid
		// detached signature even when its prefettura has no key configured
		// (on by default; docs/rules.md#manifests).
		RequireSignature bool `yaml:"require_signature"`
		// BlockTenure is how long a holder's utenza in a comune must exist
		// before that comune may block a card whose home is elsewhere
		// (docs/rules.md#card-lifecycle).
		BlockTenure time.Duration `yaml:"block_tenure"`
		// PrefetturaOfficers lists, by province code, the codici fiscali of
		// the officers whose CAdES signature a manifest of that prefettura
		// may carry instead of the prefettura's OpenPGP signature.
		PrefetturaOfficers map[string][]string `yaml:"prefettura_officers"`
		// LateWorkingDays: a card IN PRODUZIONE for more working days than
		// this is late (docs/rules.md#card-lifecycle).
		LateWorkingDays int `yaml:"late_working_days"`
		// Holidays are local holidays ("gg/mm", e.g. the patron saint) on
		// top of the national ones, for the working days above.
		Holidays []string `yaml:"holidays"`
		// LastCardWarningDays: the comune is warned this many days before
		// the last usable card of its ASC, ALS or ALP expires.
		LastCardWarningDays int `yaml:"last_card_warning_days"`
	} `yaml:"cards"`

	Notify struct {
		// Backoffice is the back-office's e-mail address: late cards, and
		// the comuni overdue in a security notice campaign.
		Backoffice string `yaml:"backoffice"`
	} `yaml:"notify"`

	Pulizia struct {
		RetentionDays   int `yaml:"retention_days"`   // elaborati/, scartati/, esiti/
		CertificatiDays int `yaml:"certificati_days"` // bundles in comuni/<ISTAT>/certificati/
		MaxFiles        int `yaml:"max_files"`        // files deleted at most by one run
	} `yaml:"pulizia"`

	ISTAT struct {
		// ComuniCSV is retired: the table of comuni is updated with
		// "anprsec istat aggiorna FILE" (docs/reference-data.md). The key
		// is still read so that configs written with it empty load; a
		// value is refused.
		ComuniCSV string `yaml:"comuni_csv"`
	} `yaml:"istat"`

	// Trust anchors of signed inputs (docs/rules.md#console-requests).
	Trust struct {
		// CardCA is a PEM file with the CA certificates that issue the
		// smart cards' signing certificates: console requests are signed
		// with the operator's card.
		CardCA string `yaml:"card_ca"`
		// CardCRL is an optional CRL file (DER or PEM) of the card CA.
		CardCRL string `yaml:"card_crl"`
		// SignatureCA is a PEM file with the qualified-signature CAs that a
		// prefettura officer's CAdES signature of a manifest chains to;
		// empty: no CAdES manifest is accepted.
		SignatureCA string `yaml:"signature_ca"`
	} `yaml:"trust"`

	Richieste struct {
		// RequireSignature refuses a console request file that is not
		// signed with the card of the operator it names.
		RequireSignature bool `yaml:"require_signature"`
		// ScanPerRun bounds how many quiet comuni's richieste/ folders a
		// scheduled run lists, in turn; 0 lists every folder at every run
		// (docs/rules.md#console-requests).
		ScanPerRun int `yaml:"scan_per_run"`
		// HotWindow is how long a comune stays listed at every run after
		// a file was seen in its richieste/ folder, or its folder changed.
		HotWindow time.Duration `yaml:"hot_window"`
	} `yaml:"richieste"`

	Mail struct {
		Spool string `yaml:"spool"`
		// From is the sender of every message; its domain names the
		// Message-IDs.
		From string `yaml:"from"`
		// MaxAttempts of a message before it is set aside as failed.
		MaxAttempts int `yaml:"max_attempts"`
		// Retry is the wait after a temporary failure, doubled at each
		// attempt (at most 6h).
		Retry time.Duration `yaml:"retry"`
		SMTP  struct {
			Address      string        `yaml:"address"` // host:port; empty = spool
			Username     string        `yaml:"username"`
			PasswordFile string        `yaml:"password_file"` // mode 0600; or ANPRSEC_SMTP_PASSWORD
			TLS          string        `yaml:"tls"`           // mandatory, opportunistic or none
			Timeout      time.Duration `yaml:"timeout"`
		} `yaml:"smtp"`
	} `yaml:"mail"`

	Registro struct {
		// Destinatari receive by e-mail each signed checkpoint of the
		// history that the registro job publishes (empty: none).
		Destinatari []string `yaml:"destinatari"`
	} `yaml:"registro"`

	Avvisi struct {
		// DeadlineDays from the start of a security notice campaign to
		// its deadline (the deadline day counts whole).
		DeadlineDays int `yaml:"deadline_days"`
		// ReminderEvery is the wait between a notice and each reminder to
		// a comune that has not confirmed; 0: no reminders.
		ReminderEvery time.Duration `yaml:"reminder_every"`
		// Subject of every notice (travels in clear: keep it generic).
		Subject string `yaml:"subject"`
		// Text is the template (text/template) of the notice: the fields
		// NoticeFields; the paragraph on the signature is always added.
		Text string `yaml:"text"`
	} `yaml:"avvisi"`
	Retention struct {
		// PersonaDays is how long a person left with no utenza and no
		// card that is not REVOCATA stays in the store after his last
		// change; the job pulizia-persone then erases him
		// (docs/personal-data.md).
		PersonaDays int `yaml:"persona_days"`
	} `yaml:"retention"`

	Metrics struct {
		// Address (host:port, loopback only) where `anprsec run` serves
		// /metrics, /healthz and /status; empty disables the server.
		Address string `yaml:"address"`
	} `yaml:"metrics"`

	Control struct {
		// Socket is the Unix socket where `anprsec run` takes the commands
		// of the CLI while it holds the store (docs/architecture.md#the-control-socket).
		Socket string `yaml:"socket"`
		// Group may connect to the socket (its folder 0750, the socket
		// 0660, both of this group); empty: the daemon's own group.
		Group string `yaml:"group"`
	} `yaml:"control"`

	Schedules map[string]string `yaml:"schedules"`
}

// ByteSize is a size in bytes that YAML may give as 50MiB, 10MB, 1024.
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("riga %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// ParseByteSize parses 1024, 64KiB, 50MiB, 1GiB, 10MB, 1GB.
func ParseByteSize(s string) (ByteSize, error) {
	var n int64
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err != nil {
		if _, err2 := fmt.Sscanf(s, "%d", &n); err2 != nil {
			return 0, fmt.Errorf("dimensione %q: serve un numero con un'unità facoltativa (KiB, MiB, GiB, KB, MB, GB)", s)
		}
		unit = ""
	}
	mult := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
	if mult == 0 || n < 0 {
		return 0, fmt.Errorf("dimensione %q: unità %q sconosciuta (usare KiB, MiB, GiB, KB, MB, GB)", s, unit)
	}
	return ByteSize(n * mult), nil
}

// Default returns the configuration with every default, relative to dir.
func Default(dir string) *Config {
	c, err := parse(DefaultYAML, nil)
	if err != nil {
		panic("config: embedded default.yaml: " + err.Error())
	}
	c.Dir = dir
	return c
}

func parse(data []byte, base *Config) (*Config, error) {
	c := base
	if c == nil {
		c = &Config{}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err.Error() != "EOF" {
		return nil, err
	}
	return c, nil
}

// Load reads the config file at path on top of the defaults. A missing file
// is an error only when mustExist is set.
func Load(path string, mustExist bool) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c := Default(filepath.Dir(abs))
	data, err := os.ReadFile(abs)
	if os.IsNotExist(err) && !mustExist {
		return c, c.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("configurazione: %w", err)
	}
	defSched := c.Schedules
	c.Schedules = nil
	if _, err := parse(data, c); err != nil {
		return nil, fmt.Errorf("configurazione %s: %s", path, friendlyYAMLError(err))
	}
	// Schedules given in the file override the defaults one by one.
	merged := map[string]string{}
	for k, v := range defSched {
		merged[k] = v
	}
	for k, v := range c.Schedules {
		merged[k] = v
	}
	c.Schedules = merged
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("configurazione %s: %w", path, err)
	}
	return c, nil
}

// Validate checks values that can be checked without touching the disk.
func (c *Config) Validate() error {
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return fmt.Errorf("timezone %q: %w", c.Timezone, err)
	}
	if err := c.validateDrop(); err != nil {
		return err
	}
	if c.Census.ChunkRows <= 0 || c.Census.MaxRows <= 0 {
		return fmt.Errorf("census.chunk_rows e census.max_rows devono essere positivi")
	}
	if err := c.validatePKI(); err != nil {
		return err
	}
	if c.Cards.ValidityDays <= 0 || c.Cards.OrderMax <= 0 {
		return fmt.Errorf("cards.validity_days e cards.order_max devono essere positivi")
	}
	if c.Cards.BlockTenure < 0 {
		return fmt.Errorf("cards.block_tenure non può essere negativo")
	}
	if err := c.validateExpiry(); err != nil {
		return err
	}
	if err := c.validateMail(); err != nil {
		return err
	}
	if c.Richieste.ScanPerRun < 0 || c.Richieste.HotWindow < 0 {
		return fmt.Errorf("richieste.scan_per_run e richieste.hot_window non possono essere negativi")
	}
	if err := c.validateAvvisi(); err != nil {
		return err
	}
	if err := checkLoopback(c.Metrics.Address); err != nil {
		return fmt.Errorf("metrics.address: %w", err)
	}
	if err := c.validateControl(); err != nil {
		return err
	}
	if c.PKI.CRLValidity <= time.Hour {
		return fmt.Errorf("pki.crl_validity %s: deve superare 1h (la CRL è rifirmata ogni ora)", c.PKI.CRLValidity)
	}
	if c.ISTAT.ComuniCSV != "" {
		return fmt.Errorf("istat.comuni_csv %q: la chiave non è più in uso; caricare l'archivio ANPR dei comuni con \"anprsec istat aggiorna FILE\" e togliere la chiave", c.ISTAT.ComuniCSV)
	}
	return nil
}

// validateExpiry checks the late cards, the last-card warning, the
// back-office address and the retention of the pulizia job.
func (c *Config) validateExpiry() error {
	if c.Cards.LateWorkingDays <= 0 || c.Cards.LastCardWarningDays <= 0 {
		return fmt.Errorf("cards.late_working_days e cards.last_card_warning_days devono essere positivi")
	}
	for _, h := range c.Cards.Holidays {
		if _, err := time.Parse("02/01/2006", strings.TrimSpace(h)+"/2000"); err != nil {
			return fmt.Errorf("cards.holidays %q: atteso gg/mm (per esempio 29/06)", h)
		}
	}
	if a := c.Notify.Backoffice; a != "" {
		if _, err := mail.ParseAddress(a); err != nil {
			return fmt.Errorf("notify.backoffice %q: %v", a, err)
		}
	}
	p := c.Pulizia
	if p.RetentionDays <= 0 || p.CertificatiDays <= 0 || p.MaxFiles <= 0 {
		return fmt.Errorf("pulizia.retention_days, pulizia.certificati_days e pulizia.max_files devono essere positivi")
	}
	return nil
}

// maxSocketPath is the longest path of a Unix socket (sun_path holds 108
// bytes with its terminating NUL).
const maxSocketPath = 107

// validateControl checks control.socket (required, short enough for a
// Unix socket) and control.group (a group name, not a number or a path).
func (c *Config) validateControl() error {
	s := strings.TrimSpace(c.Control.Socket)
	if s == "" {
		return fmt.Errorf("control.socket è vuoto: i comandi raggiungono il servizio in esecuzione attraverso di esso (predefinito var/run/anprsec.sock)")
	}
	if p := c.Path(s); len(p) > maxSocketPath {
		return fmt.Errorf("control.socket %s: %d byte, il percorso di un socket Unix ne ammette al massimo %d: scegliere un percorso più corto", p, len(p), maxSocketPath)
	}
	if g := c.Control.Group; g != "" && !validGroupName(g) {
		return fmt.Errorf("control.group %q: non è un nome di gruppo (lettere, cifre, '_', '-', '.', senza '-' iniziale)", g)
	}
	return nil
}

// validGroupName accepts the portable names of POSIX groups.
func validGroupName(g string) bool {
	if len(g) > 32 || g[0] == '-' {
		return false
	}
	for _, r := range g {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// validateDrop checks drop.type, and that an sftp drop has its address,
// user, key file and known hosts.
func (c *Config) validateDrop() error {
	if c.Drop.MaxAttempts <= 0 {
		return fmt.Errorf("drop.max_attempts deve essere positivo (un file che continua a fallire è rifiutato dopo tanti tentativi)")
	}
	switch c.Drop.Type {
	case "local":
		return nil
	case "sftp":
		s := c.Drop.SFTP
		var missing []string
		for _, kv := range [][2]string{{"address", s.Address}, {"user", s.User}, {"key_file", s.KeyFile}, {"known_hosts", s.KnownHosts}} {
			if kv[1] == "" {
				missing = append(missing, "drop.sftp."+kv[0])
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("drop.type è sftp ma manca %s", strings.Join(missing, ", "))
		}
		return nil
	default:
		return fmt.Errorf("drop.type %q: valori ammessi local o sftp", c.Drop.Type)
	}
}

// validatePKI checks the pki section but its crl_validity, which Validate
// checks last.
func (c *Config) validatePKI() error {
	switch c.PKI.Encoding {
	case "legacy", "modern":
	default:
		return fmt.Errorf("pki.encoding %q: valori ammessi legacy o modern", c.PKI.Encoding)
	}
	switch c.PKI.KeyAlgorithm {
	case "rsa2048", "ecdsa-p256":
	default:
		return fmt.Errorf("pki.key_algorithm %q: valori ammessi rsa2048 o ecdsa-p256", c.PKI.KeyAlgorithm)
	}
	switch c.PKI.PasswordAlphabet {
	case "base32", "hex":
	default:
		return fmt.Errorf("pki.password_alphabet %q: valori ammessi base32 (di Crockford, 5 bit per carattere) o hex (4 bit)", c.PKI.PasswordAlphabet)
	}
	if c.PKI.KeyPool < 0 {
		return fmt.Errorf("pki.key_pool non può essere negativo (0 disattiva la riserva di chiavi)")
	}
	if c.PKI.ValidityDays <= 0 || c.PKI.BatchMax <= 0 || c.PKI.PasswordLength <= 0 {
		return fmt.Errorf("pki.validity_days, pki.batch_max e pki.password_length devono essere positivi")
	}
	if c.PKI.RevokeGrace < 0 {
		return fmt.Errorf("pki.revoke_grace %s: non può essere negativo (0s rende una revoca definitiva al batch successivo)", c.PKI.RevokeGrace)
	}
	validity := time.Duration(c.PKI.ValidityDays) * 24 * time.Hour
	if c.PKI.RenewOverlap < 0 || c.PKI.RenewOverlap >= validity {
		return fmt.Errorf("pki.renew_overlap %s: deve essere almeno 0s e più breve di pki.validity_days", c.PKI.RenewOverlap)
	}
	if c.PKI.AutoRenew && (c.PKI.RenewBefore <= 0 || c.PKI.RenewBefore >= validity) {
		return fmt.Errorf("pki.renew_before %s: con pki.auto_renew deve essere positivo e più breve di pki.validity_days", c.PKI.RenewBefore)
	}
	return c.validatePKIHTTP()
}

// validatePKIHTTP checks the revocation-discovery URLs (absolute http or
// https, with a host, no query or fragment: an OCSP GET appends to the
// path), that no two share a path, and pki.http_address (host:port).
func (c *Config) validatePKIHTTP() error {
	paths := map[string]string{}
	for _, kv := range [][2]string{{"pki.crl_url", c.PKI.CRLURL}, {"pki.ocsp_url", c.PKI.OCSPURL}, {"pki.ca_issuers_url", c.PKI.CAIssuersURL}} {
		if kv[1] == "" {
			continue
		}
		u, err := url.Parse(kv[1])
		if err != nil {
			return fmt.Errorf("%s %q: %v", kv[0], kv[1], err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fmt.Errorf("%s %q: serve un URL http:// assoluto con un host (chi verifica i certificati lo scarica)", kv[0], kv[1])
		}
		if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(kv[1], "?") {
			return fmt.Errorf("%s %q: niente query né frammento (una richiesta OCSP GET si aggiunge al percorso)", kv[0], kv[1])
		}
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		if other, ok := paths[p]; ok {
			return fmt.Errorf("%s e %s hanno lo stesso percorso %s: ciascuno è servito a sé", other, kv[0], p)
		}
		paths[p] = kv[0]
	}
	if c.PKI.OCSPValidity < time.Minute {
		return fmt.Errorf("pki.ocsp_validity %s: deve essere almeno 1m", c.PKI.OCSPValidity)
	}
	if c.PKI.OCSPNonceRate < 0 {
		return fmt.Errorf("pki.ocsp_nonce_rate %g: non può essere negativo (0: le richieste con nonce ricevono la risposta in cache)", c.PKI.OCSPNonceRate)
	}
	if a := c.PKI.HTTPAddress; a != "" {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("pki.http_address %q: serve host:porta (%v)", a, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("pki.http_address %q: la porta %q non è un numero da 0 a 65535", a, port)
		}
	}
	return nil
}

// NoticeFields are the fields of the text of a security notice
// (avvisi.text): {{.Nome}} the recipient, {{.Comune}} and {{.ISTAT}} the
// comune, {{.Campagna}} the campaign's code, {{.Scadenza}} its deadline
// (gg/mm/aaaa).
var NoticeFields = []string{"Nome", "Comune", "ISTAT", "Campagna", "Scadenza"}

// NoticeTemplate parses the text of a security notice; a field that is
// not one of NoticeFields fails when the text is executed.
func NoticeTemplate(text string) (*template.Template, error) {
	return template.New("avvisi.text").Option("missingkey=error").Parse(text)
}

// validateAvvisi checks the avvisi section: positive deadline, reminders
// not negative, the back-office address, a text that fills with the
// NoticeFields and names the campaign.
func (c *Config) validateAvvisi() error {
	a := c.Avvisi
	if a.DeadlineDays <= 0 || a.ReminderEvery < 0 {
		return fmt.Errorf("avvisi.deadline_days deve essere positivo e avvisi.reminder_every non negativo")
	}
	if strings.TrimSpace(a.Subject) == "" || strings.ContainsAny(a.Subject, "\r\n") {
		return fmt.Errorf("avvisi.subject deve essere una sola riga non vuota")
	}
	t, err := NoticeTemplate(a.Text)
	if err != nil {
		return fmt.Errorf("avvisi.text: %v", err)
	}
	data := map[string]string{}
	for _, f := range NoticeFields {
		data[f] = "<" + f + ">"
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return fmt.Errorf("avvisi.text: %v (campi: %s)", err, strings.Join(NoticeFields, ", "))
	}
	if !strings.Contains(b.String(), "<Campagna>") {
		return fmt.Errorf("avvisi.text: il testo deve nominare la campagna ({{.Campagna}}): il comune la indica nella risposta CONFERMA_VERIFICA")
	}
	return nil
}

// validateMail checks the mail section: the sender's address, the retry
// settings and the SMTP TLS mode.
func (c *Config) validateMail() error {
	if _, err := mail.ParseAddress(c.Mail.From); err != nil {
		return fmt.Errorf("mail.from %q: %v", c.Mail.From, err)
	}
	if c.Mail.MaxAttempts <= 0 || c.Mail.Retry <= 0 || c.Mail.SMTP.Timeout <= 0 {
		return fmt.Errorf("mail.max_attempts, mail.retry e mail.smtp.timeout devono essere positivi")
	}
	switch c.Mail.SMTP.TLS {
	case "mandatory", "opportunistic", "none":
	default:
		return fmt.Errorf("mail.smtp.tls %q: valori ammessi mandatory, opportunistic o none", c.Mail.SMTP.TLS)
	}
	for _, a := range c.Registro.Destinatari {
		if _, err := mail.ParseAddress(a); err != nil {
			return fmt.Errorf("registro.destinatari: %q: %v", a, err)
		}
	}
	if c.Retention.PersonaDays < 0 {
		return fmt.Errorf("retention.persona_days non può essere negativo (giorni in cui si conserva una persona senza utenza né smart card; 0: cancellata alla prossima esecuzione)")
	}
	return nil
}

// checkLoopback accepts "" (no metrics server) or a host:port whose host is
// localhost or a loopback IP: the metrics and status pages are for the
// operator of this machine, never for the network.
func checkLoopback(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: serve host:porta sul loopback, per esempio 127.0.0.1:9464 (vuoto disattiva il server)", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: la porta %q non è un numero da 0 a 65535", addr, port)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if host == "" {
		return fmt.Errorf("%q ascolta su tutte le interfacce: il server delle metriche ascolta solo sul loopback (127.0.0.1, ::1 o localhost); per esporlo usare un reverse proxy", addr)
	}
	return fmt.Errorf("%q non è un indirizzo di loopback: il server delle metriche ascolta solo sul loopback (127.0.0.1, ::1 o localhost); per esporlo usare un reverse proxy", addr)
}

// Path resolves a path of the config relative to the config's folder.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// CAKey is where the CA key is: pki.ca_key resolved as a path, or as
// written when it is a PKCS#11 URI ("pkcs11:...", a key in an HSM).
func (c *Config) CAKey() string {
	if k := strings.TrimSpace(c.PKI.CAKey); strings.HasPrefix(k, "pkcs11:") {
		return k
	}
	return c.Path(c.PKI.CAKey)
}

// CAKeyInHSM reports whether pki.ca_key is a PKCS#11 URI.
func (c *Config) CAKeyInHSM() bool {
	return strings.HasPrefix(strings.TrimSpace(c.PKI.CAKey), "pkcs11:")
}

// unknownField matches yaml's "field X not found in type T" to the end of
// its line: T may be a struct type with nested struct types in it.
var unknownField = regexp.MustCompile(`field (\S+) not found in type [^\n]*`)

var badDuration = regexp.MustCompile("cannot unmarshal !!\\w+ (`[^`]*`) into time.Duration")

var yamlLine = regexp.MustCompile(`\bline (\d+):`)

// friendlyYAMLError replaces yaml's Go type dumps ("field setle not found
// in type struct {...}") with words an operator understands.
func friendlyYAMLError(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "yaml: unmarshal errors:\n  ", "")
	msg = unknownField.ReplaceAllString(msg, `chiave "$1" sconosciuta (vedere la configurazione commentata scritta da anprsec init)`)
	msg = badDuration.ReplaceAllString(msg, "$1 non è una durata (scrivere per esempio 30s, 5m, 1h)")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = yamlLine.ReplaceAllString(msg, "riga $1:")
	return msg
}
