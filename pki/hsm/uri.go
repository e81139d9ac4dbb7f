// Package hsm reaches a private key held by a hardware security module
// through PKCS#11, the standard interface of HSMs (and of SoftHSM2), named
// by an RFC 7512 PKCS#11 URI as OpenSSL and p11-kit write it:
//
//	pkcs11:token=anprsec;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/anprsec/hsm.pin
//
// The key never leaves the token: it signs through crypto.Signer. PKCS#11
// modules are C libraries, so this needs cgo (the default build); a build
// with CGO_ENABLED=0 parses the URIs but refuses to open them (ErrNoCgo).
package hsm

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"anprsec/secret"
)

// Scheme is the prefix of a PKCS#11 URI.
const Scheme = "pkcs11:"

// IsURI reports whether s is a PKCS#11 URI rather than a file path.
func IsURI(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), Scheme) }

// URI is the part of an RFC 7512 PKCS#11 URI that anprsec uses: the token
// (by label, serial or slot), the key (by label and/or id), the module and
// where its PIN is.
type URI struct {
	Token  string // token=: the token's label
	Serial string // serial=: the token's serial number
	SlotID *int   // slot-id=
	Object string // object=: the key's label (CKA_LABEL)
	ID     []byte // id=: the key's CKA_ID
	// ModulePath is the PKCS#11 library (module-path=).
	ModulePath string
	// PinFile is the file holding the user PIN (pin-source=file:...),
	// mode 0600 like every secret of anprsec; empty: no login.
	PinFile string

	raw string
}

// String is the URI as written.
func (u *URI) String() string { return u.raw }

// ParseURI parses a PKCS#11 URI. It needs one way to find the token
// (token, serial or slot-id), the key's object and/or id, type=private
// when a type is given, module-path, and takes the PIN only from a file
// (pin-source): a pin-value would put a secret in the config. Unknown
// attributes are refused rather than ignored.
func ParseURI(s string) (*URI, error) {
	s = strings.TrimSpace(s)
	if !IsURI(s) {
		return nil, fmt.Errorf("hsm: %q non è un URI PKCS#11 (pkcs11:...)", s)
	}
	u := &URI{raw: s}
	rest := strings.TrimPrefix(s, Scheme)
	path, query, _ := strings.Cut(rest, "?")
	for _, attr := range splitNonEmpty(path, ";") {
		k, v, err := attribute(attr)
		if err != nil {
			return nil, err
		}
		if err := u.pathAttribute(k, v); err != nil {
			return nil, err
		}
	}
	for _, attr := range splitNonEmpty(query, "&") {
		k, v, err := attribute(attr)
		if err != nil {
			return nil, err
		}
		if err := u.queryAttribute(k, v); err != nil {
			return nil, err
		}
	}
	return u, u.complete(s)
}

// pathAttribute sets a path attribute of the URI (the token and the key).
func (u *URI) pathAttribute(k string, v []byte) error {
	switch k {
	case "token":
		u.Token = string(v)
	case "serial":
		u.Serial = string(v)
	case "slot-id":
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 {
			return fmt.Errorf("hsm: slot-id %q non è un numero", v)
		}
		u.SlotID = &n
	case "object":
		u.Object = string(v)
	case "id":
		u.ID = v
	case "type":
		if string(v) != "private" {
			return fmt.Errorf("hsm: type=%s: la chiave della CA è una chiave privata (type=private)", v)
		}
	case "manufacturer", "model", "library-manufacturer", "library-description", "library-version":
		// descriptive: the token is chosen by token, serial or slot-id
	default:
		return fmt.Errorf("hsm: attributo %q dell'URI PKCS#11 non supportato", k)
	}
	return nil
}

// queryAttribute sets a query attribute of the URI (the module and the
// PIN's file).
func (u *URI) queryAttribute(k string, v []byte) error {
	switch k {
	case "module-path":
		u.ModulePath = string(v)
	case "pin-source":
		p := strings.TrimPrefix(string(v), "file:")
		p = strings.TrimPrefix(p, "//") // file:///etc/x
		if !filepath.IsAbs(p) && !strings.HasPrefix(string(v), "file:") {
			return fmt.Errorf("hsm: pin-source %q: atteso file:/percorso/assoluto", v)
		}
		if !filepath.IsAbs(p) {
			return fmt.Errorf("hsm: pin-source %q: il percorso del file del PIN deve essere assoluto", v)
		}
		u.PinFile = p
	case "pin-value":
		return errors.New("hsm: pin-value mette il PIN nella configurazione: tenerlo in un file (permessi 0600) indicato con pin-source=file:/percorso")
	case "module-name":
		return errors.New("hsm: module-name non è supportato: indicare il percorso completo della libreria con module-path")
	default:
		return fmt.Errorf("hsm: attributo %q dell'URI PKCS#11 non supportato", k)
	}
	return nil
}

// complete checks that the URI names one token, the key and the module.
func (u *URI) complete(s string) error {
	n := 0
	for _, set := range []bool{u.Token != "", u.Serial != "", u.SlotID != nil} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return fmt.Errorf("hsm: %s: indicare il token con uno solo fra token=, serial=, slot-id=", s)
	case u.Object == "" && len(u.ID) == 0:
		return fmt.Errorf("hsm: %s: indicare la chiave con object= (la sua etichetta) o id=", s)
	case u.ModulePath == "":
		return fmt.Errorf("hsm: %s: manca module-path= (la libreria PKCS#11)", s)
	}
	return nil
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// attribute splits name=value and percent-decodes the value.
func attribute(a string) (string, []byte, error) {
	k, v, ok := strings.Cut(a, "=")
	if !ok || k == "" {
		return "", nil, fmt.Errorf("hsm: attributo %q dell'URI PKCS#11: atteso nome=valore", a)
	}
	dec, err := url.PathUnescape(v)
	if err != nil {
		return "", nil, fmt.Errorf("hsm: attributo %s dell'URI PKCS#11: %w", k, err)
	}
	return strings.ToLower(k), []byte(dec), nil
}

// PIN reads the user PIN from PinFile ("" when there is none), refusing a
// file that group or others may read; a final newline is not part of it.
func (u *URI) PIN() (string, error) {
	if u.PinFile == "" {
		return "", nil
	}
	if err := secret.CheckFile(u.PinFile); err != nil {
		return "", fmt.Errorf("hsm: file del PIN: %w", err)
	}
	b, err := os.ReadFile(u.PinFile)
	if err != nil {
		return "", fmt.Errorf("hsm: file del PIN: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// ErrNoCgo is returned by Open and Generate in a build without cgo.
var ErrNoCgo = errors.New("questo anprsec è compilato senza cgo (CGO_ENABLED=0) e non può caricare un modulo PKCS#11: " +
	"compilarlo con cgo e un compilatore C (la compilazione predefinita), o indicare in pki.ca_key un file di chiave PEM")

// WithObject is u naming another key of the same token: the key labelled
// label (object=label, no id=), with the same module and PIN (a new CA key
// beside the old one, docs/rules.md#ca-rollover).
func (u *URI) WithObject(label string) (*URI, error) {
	path, query, hasQuery := strings.Cut(strings.TrimPrefix(u.raw, Scheme), "?")
	var attrs []string
	for _, a := range splitNonEmpty(path, ";") {
		k, _, _ := strings.Cut(a, "=")
		if k = strings.ToLower(k); k == "object" || k == "id" {
			continue
		}
		attrs = append(attrs, a)
	}
	attrs = append(attrs, "object="+url.PathEscape(label))
	s := Scheme + strings.Join(attrs, ";")
	if hasQuery {
		s += "?" + query
	}
	return ParseURI(s)
}
