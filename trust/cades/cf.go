package cades

import (
	"crypto/x509"
	"strings"

	"anprsec/codfisc"
)

// Prefixes of the subject serialNumber attribute that carry a codice fiscale:
// "TINIT-" is the ETSI EN 319 412-1 semantics identifier of Italian
// qualified certificates (tax identification number, Italy), "IT:" the form
// of certificates issued before it.
var cfPrefixes = []string{"TINIT-", "IT:"}

// signerCF returns the codice fiscale of the holder of cert, upper-cased:
// from the subject serialNumber ("TINIT-<CF>" or "IT:<CF>"), else from a
// Carta Nazionale dei Servizi common name, whose first '/'-separated field is
// the CF ("<CF>/<card number>.<hash>"; a common name of 16 characters alone
// is read the same way). The code must be a valid CF (check letter
// included).
func signerCF(cert *x509.Certificate) (string, *Error) {
	var found string
	for _, atv := range cert.Subject.Names {
		if !atv.Type.Equal(oidSerialNumber) {
			continue
		}
		s, _ := atv.Value.(string)
		up := strings.ToUpper(strings.TrimSpace(s))
		for _, p := range cfPrefixes {
			if strings.HasPrefix(up, p) {
				found = strings.TrimPrefix(up, p)
			}
		}
		if found != "" {
			break
		}
	}
	if found == "" {
		first, _, _ := strings.Cut(cert.Subject.CommonName, "/")
		if first = strings.ToUpper(strings.TrimSpace(first)); len(first) == codfisc.Length {
			found = first
		}
	}
	who := describe(cert)
	if found == "" {
		return "", refuse(FirmatarioSenzaCF, nil,
			"il certificato del firmatario %s non riporta un codice fiscale (né serialNumber TINIT-<codice fiscale> né common name <codice fiscale>/…)", who)
	}
	if _, err := codfisc.Parse(found); err != nil {
		return "", refuse(FirmatarioSenzaCF, err, "il certificato del firmatario %s riporta un codice fiscale non valido: %v", who, err)
	}
	return found, nil
}
