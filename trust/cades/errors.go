package cades

import (
	"errors"
	"fmt"
)

// Codes of the refusals Verify returns. Each is meant to be carried as it is
// by an operator receipt (docs/rules.md#console-requests).
const (
	// FirmaAssente: no signature at all (empty signature file, or an
	// envelope without signers).
	FirmaAssente = "FIRMA_ASSENTE"
	// FirmaNonValida: the envelope is malformed, the signature does not
	// match the content, or a CAdES attribute is missing or wrong.
	FirmaNonValida = "FIRMA_NON_VALIDA"
	// CertificatoNonFidato: the signer certificate does not chain to a
	// configured certification authority, or may not sign.
	CertificatoNonFidato = "CERTIFICATO_NON_FIDATO"
	// CertificatoScaduto: the signer certificate (or a CA of its chain) is
	// not valid at the time of the check.
	CertificatoScaduto = "CERTIFICATO_SCADUTO"
	// CertificatoRevocato: the signer certificate is revoked or suspended in
	// the configured CRL of its issuer.
	CertificatoRevocato = "CERTIFICATO_REVOCATO"
	// FirmatarioSenzaCF: the signer certificate carries no valid codice
	// fiscale.
	FirmatarioSenzaCF = "FIRMATARIO_SENZA_CF"
)

// Error is a refusal of a signature: a Code from the list above and an
// Italian Message, for the operator, that names what is wrong. Err, when set,
// is the technical cause (for logs; never shown to the operator).
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error implements the error interface: "CODE: message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the technical cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &cades.Error{Code: cades.CertificatoScaduto}) classifies a
// refusal.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the Code of err when it is (or wraps) an *Error, else "".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func refuse(code string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}
