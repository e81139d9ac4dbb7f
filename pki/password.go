package pki

import (
	"crypto/rand"
	"fmt"
	"math"
	"math/big"
)

// Passwords of the PKCS#12 files (docs/rules.md#certificates): n characters
// drawn with crypto/rand from an alphabet. The default, 12 characters of
// Crockford's base32 (no I, L, O, U: nothing to misread on paper), holds 60
// bits, so that a .p12 copied without its password.txt is no practical
// oracle for a password search; 8 uppercase hexadecimal characters (32
// bits, like 653B739E) stay available as an explicit choice.
const (
	PasswordHex    = "hex"
	PasswordBase32 = "base32"

	DefaultPasswordAlphabet = PasswordBase32
	DefaultPasswordLength   = 12
)

// alphabets are the characters of each password alphabet.
var alphabets = map[string]string{
	PasswordHex:    "0123456789ABCDEF",
	PasswordBase32: "0123456789ABCDEFGHJKMNPQRSTVWXYZ",
}

// Limits of a password's length.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 64
)

// PasswordBits is the entropy of a password of n characters of alphabet
// ("" means the default), or an error for an unknown alphabet.
func PasswordBits(alphabet string, n int) (float64, error) {
	a, err := passwordAlphabet(alphabet)
	if err != nil {
		return 0, err
	}
	return float64(n) * math.Log2(float64(len(a))), nil
}

func passwordAlphabet(name string) (string, error) {
	if name == "" {
		name = DefaultPasswordAlphabet
	}
	a, ok := alphabets[name]
	if !ok {
		return "", fmt.Errorf("pki: alfabeto delle password %q: ammessi %s o %s", name, PasswordBase32, PasswordHex)
	}
	return a, nil
}

// NewPassword returns n characters of alphabet ("": the default) from
// crypto/rand, each drawn uniformly; n = 0 means DefaultPasswordLength. n
// outside [MinPasswordLength, MaxPasswordLength] is an error.
func NewPassword(alphabet string, n int) (string, error) {
	a, err := passwordAlphabet(alphabet)
	if err != nil {
		return "", err
	}
	if n == 0 {
		n = DefaultPasswordLength
	}
	if n < MinPasswordLength || n > MaxPasswordLength {
		return "", fmt.Errorf("pki: lunghezza delle password %d: ammessa da %d a %d", n, MinPasswordLength, MaxPasswordLength)
	}
	out := make([]byte, n)
	size := big.NewInt(int64(len(a)))
	for i := range out {
		k, err := rand.Int(rand.Reader, size)
		if err != nil {
			return "", err
		}
		out[i] = a[k.Int64()]
	}
	return string(out), nil
}
