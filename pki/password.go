package pki

import (
	"crypto/rand"
	"fmt"
)

// DefaultPasswordLength is the length of a PKCS#12 password: 8 uppercase
// hexadecimal characters, like 653B739E (docs/rules.md#certificates).
const DefaultPasswordLength = 8

// Limits of NewPassword's length.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 64
)

const hexUpper = "0123456789ABCDEF"

// NewPassword returns n uppercase hexadecimal characters from crypto/rand
// (4 bits of entropy each); n = 0 means DefaultPasswordLength. n outside
// [MinPasswordLength, MaxPasswordLength] is an error.
func NewPassword(n int) (string, error) {
	if n == 0 {
		n = DefaultPasswordLength
	}
	if n < MinPasswordLength || n > MaxPasswordLength {
		return "", fmt.Errorf("pki: password length %d: want %d to %d", n, MinPasswordLength, MaxPasswordLength)
	}
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, hexUpper[c>>4], hexUpper[c&0x0f])
	}
	return string(out[:n]), nil
}
