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
	MinFree  ByteSize `yaml:"min_free"`
	Timezone string   `yaml:"timezone"`

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
	} `yaml:"cards"`

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

	Schedules map[string]string `yaml:"schedules"`
}

// ByteSize is a size in bytes that YAML may give as 50MiB, 10MB, 1024.
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
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
			return 0, fmt.Errorf("size %q: want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", s)
		}
		unit = ""
	}
	mult := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
	if mult == 0 || n < 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (use KiB, MiB, GiB, KB, MB, GB)", s, unit)
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
		return nil, fmt.Errorf("config: %w", err)
	}
	defSched := c.Schedules
	c.Schedules = nil
	if _, err := parse(data, c); err != nil {
		return nil, fmt.Errorf("config %s: %s", path, friendlyYAMLError(err))
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
		return nil, fmt.Errorf("config %s: %w", path, err)
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
		return fmt.Errorf("census.chunk_rows and census.max_rows must be positive")
	}
	if err := c.validatePKI(); err != nil {
		return err
	}
	if c.Cards.ValidityDays <= 0 || c.Cards.OrderMax <= 0 {
		return fmt.Errorf("cards.validity_days and cards.order_max must be positive")
	}
	if c.Cards.BlockTenure < 0 {
		return fmt.Errorf("cards.block_tenure must not be negative")
	}
	if err := c.validateMail(); err != nil {
		return err
	}
	if err := checkLoopback(c.Metrics.Address); err != nil {
		return fmt.Errorf("metrics.address: %w", err)
	}
	if c.PKI.CRLValidity <= time.Hour {
		return fmt.Errorf("pki.crl_validity %s: must be more than 1h (the CRL is re-signed every hour)", c.PKI.CRLValidity)
	}
	if c.ISTAT.ComuniCSV != "" {
		return fmt.Errorf("istat.comuni_csv %q: the key is retired; load the ANPR archive of comuni with \"anprsec istat aggiorna FILE\" and remove the key (docs/reference-data.md)", c.ISTAT.ComuniCSV)
	}
	return nil
}

// validateDrop checks drop.type, and that an sftp drop has its address,
// user, key file and known hosts.
func (c *Config) validateDrop() error {
	if c.Drop.MaxAttempts <= 0 {
		return fmt.Errorf("drop.max_attempts must be positive (a file that keeps failing is refused after that many attempts)")
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
			return fmt.Errorf("drop.type is sftp but %s not set", strings.Join(missing, ", "))
		}
		return nil
	default:
		return fmt.Errorf("drop.type %q: want local or sftp", c.Drop.Type)
	}
}

// validatePKI checks the pki section but its crl_validity, which Validate
// checks last.
func (c *Config) validatePKI() error {
	switch c.PKI.Encoding {
	case "legacy", "modern":
	default:
		return fmt.Errorf("pki.encoding %q: want legacy or modern", c.PKI.Encoding)
	}
	switch c.PKI.KeyAlgorithm {
	case "rsa2048", "ecdsa-p256":
	default:
		return fmt.Errorf("pki.key_algorithm %q: want rsa2048 or ecdsa-p256", c.PKI.KeyAlgorithm)
	}
	switch c.PKI.PasswordAlphabet {
	case "base32", "hex":
	default:
		return fmt.Errorf("pki.password_alphabet %q: want base32 (Crockford's, 5 bits a character) or hex (4 bits)", c.PKI.PasswordAlphabet)
	}
	if c.PKI.KeyPool < 0 {
		return fmt.Errorf("pki.key_pool must not be negative (0 disables the key pool)")
	}
	if c.PKI.ValidityDays <= 0 || c.PKI.BatchMax <= 0 || c.PKI.PasswordLength <= 0 {
		return fmt.Errorf("pki.validity_days, pki.batch_max and pki.password_length must be positive")
	}
	if c.PKI.RevokeGrace < 0 {
		return fmt.Errorf("pki.revoke_grace %s: must not be negative (0s makes a revocation final at the next batch)", c.PKI.RevokeGrace)
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
			return fmt.Errorf("%s %q: want an absolute http:// URL with a host (relying parties fetch it)", kv[0], kv[1])
		}
		if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(kv[1], "?") {
			return fmt.Errorf("%s %q: no query or fragment (an OCSP GET request appends to the path)", kv[0], kv[1])
		}
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		if other, ok := paths[p]; ok {
			return fmt.Errorf("%s and %s have the same path %s: each is served on its own", other, kv[0], p)
		}
		paths[p] = kv[0]
	}
	if c.PKI.OCSPValidity < time.Minute {
		return fmt.Errorf("pki.ocsp_validity %s: must be at least 1m", c.PKI.OCSPValidity)
	}
	if c.PKI.OCSPNonceRate < 0 {
		return fmt.Errorf("pki.ocsp_nonce_rate %g: must not be negative (0: requests with a nonce get the cached response)", c.PKI.OCSPNonceRate)
	}
	if a := c.PKI.HTTPAddress; a != "" {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("pki.http_address %q: want host:port (%v)", a, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("pki.http_address %q: port %q is not a number from 0 to 65535", a, port)
		}
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
		return fmt.Errorf("mail.max_attempts, mail.retry and mail.smtp.timeout must be positive")
	}
	switch c.Mail.SMTP.TLS {
	case "mandatory", "opportunistic", "none":
	default:
		return fmt.Errorf("mail.smtp.tls %q: want mandatory, opportunistic or none", c.Mail.SMTP.TLS)
	}
	for _, a := range c.Registro.Destinatari {
		if _, err := mail.ParseAddress(a); err != nil {
			return fmt.Errorf("registro.destinatari: %q: %v", a, err)
		}
	}
	if c.Retention.PersonaDays < 0 {
		return fmt.Errorf("retention.persona_days must not be negative (days a person without utenza and card is kept; 0: erased at the next run)")
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
		return fmt.Errorf("%q: want host:port on the loopback, e.g. 127.0.0.1:9464 (empty disables the server)", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if host == "" {
		return fmt.Errorf("%q listens on every interface: the metrics server only listens on the loopback (127.0.0.1, ::1 or localhost); put a reverse proxy in front to expose it", addr)
	}
	return fmt.Errorf("%q is not a loopback address: the metrics server only listens on the loopback (127.0.0.1, ::1 or localhost); put a reverse proxy in front to expose it", addr)
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

// friendlyYAMLError replaces yaml's Go type dumps ("field setle not found
// in type struct {...}") with words an operator understands.
func friendlyYAMLError(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "yaml: unmarshal errors:\n  ", "")
	msg = unknownField.ReplaceAllString(msg, `unknown key "$1" (see the commented default written by anprsec init)`)
	msg = badDuration.ReplaceAllString(msg, "$1 is not a duration (write for example 30s, 5m, 1h)")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	return msg
}
