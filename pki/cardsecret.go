package pki

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
)

// CardSecrets are the secrets of a smart card (docs/rules.md#card-secrets): an
// 8-digit PIN, an 8-digit PUK and a 10-character access password. Each is
// split in two halves: the first travels in the sealed envelope printed by
// the card producer, the second goes to the holder by e-mail once the card
// is delivered.
type CardSecrets struct {
	PIN, PUK, Password string
}

// CardHalf is one half of every secret of a card.
type CardHalf struct {
	PIN      string `json:"pin"`
	PUK      string `json:"puk"`
	Password string `json:"password"`
}

// Lengths of the card secrets.
const (
	CardPINLength      = 8
	CardPUKLength      = 8
	CardPasswordLength = 10
)

// PasswordAlphabet is the alphabet of card passwords: letters and digits
// without the look-alikes 0/O/o, 1/l/I/i, 5/S/s, 2/Z/z, 8/B, 6/G, u/v/U/V.
const PasswordAlphabet = "ACDEFHJKLMNPQRTWXYabcdefghjkmnpqrtwxy3479"

// NewCardSecrets draws a card's secrets from crypto/rand.
func NewCardSecrets() (CardSecrets, error) {
	var s CardSecrets
	var err error
	if s.PIN, err = randomString("0123456789", CardPINLength); err != nil {
		return s, err
	}
	if s.PUK, err = randomString("0123456789", CardPUKLength); err != nil {
		return s, err
	}
	if s.Password, err = randomString(PasswordAlphabet, CardPasswordLength); err != nil {
		return s, err
	}
	return s, nil
}

// Split returns the first and second halves: the first half of each
// secret is its first len/2 characters.
func (s CardSecrets) Split() (first, second CardHalf) {
	cut := func(v string) (string, string) { return v[:len(v)/2], v[len(v)/2:] }
	first.PIN, second.PIN = cut(s.PIN)
	first.PUK, second.PUK = cut(s.PUK)
	first.Password, second.Password = cut(s.Password)
	return first, second
}

// Marshal encodes a half for sealing.
func (h CardHalf) Marshal() []byte {
	b, _ := json.Marshal(h)
	return b
}

// UnmarshalCardHalf decodes a sealed half once opened.
func UnmarshalCardHalf(b []byte) (CardHalf, error) {
	var h CardHalf
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("pki: metà del segreto della smart card: %w", err)
	}
	if h.PIN == "" || h.PUK == "" || h.Password == "" {
		return h, fmt.Errorf("pki: la metà del segreto della smart card è incompleta")
	}
	return h, nil
}

// randomString returns n characters of alphabet (at most 256), each drawn
// uniformly: random bytes read in blocks, a byte kept only below the
// largest multiple of len(alphabet) (rejection sampling, no modulo bias).
func randomString(alphabet string, n int) (string, error) {
	if len(alphabet) == 0 || len(alphabet) > 256 {
		return "", fmt.Errorf("pki: alfabeto di %d caratteri", len(alphabet))
	}
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	defer clear(buf)
	defer clear(out[:n])
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
