package lifecycle

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMotivo is returned by every operation that needs a motivo (block,
// unblock, revoke, replace, resend) when it is empty: the motivo is what
// the history and the security reviews read (docs/rules.md#history).
var ErrMotivo = errors.New("il motivo è obbligatorio")

// checkMotivo returns the motivo as one trimmed line (oneLine: a motivo
// written in a comune's request is shown on the back-office's terminal),
// or ErrMotivo when it is empty.
func checkMotivo(motivo string) (string, error) {
	m := oneLine(motivo)
	if m == "" {
		return "", ErrMotivo
	}
	return m, nil
}

// Item names the kind of thing a StateError is about.
type Item string

// The items with a state machine.
const (
	ItemCard       Item = "smart card"
	ItemPostazione Item = "postazione"
)

// StateError says that an item (a smart card, a postazione) is not in a
// state the operation may start from; it changes nothing. Action is the
// operation as an operator reads it: a noun for a card ("il blocco"), a
// participle for a postazione ("bloccata").
type StateError struct {
	Item    Item
	ID      string
	State   string
	Action  string
	Allowed []string
}

func (e *StateError) Error() string {
	allowed := strings.Join(e.Allowed, " o ")
	if e.Item == ItemPostazione {
		return fmt.Sprintf("la postazione %s è nello stato %s: non può essere %s (serve lo stato %s)", e.ID, e.State, e.Action, allowed)
	}
	return fmt.Sprintf("%s %s è %s: %s è possibile solo da %s", e.Item, e.ID, e.State, e.Action, allowed)
}

// states turns a list of states into their names.
func states[S ~string](ss []S) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// Refusal is why a request row, or a change asked by an operator, is not
// applied: a receipt code and a message the operator understands. Authz
// marks a refusal of the operator's authorization (the security review
// lists those; history action richiesta.rifiutata).
type Refusal struct {
	Code, Message string
	Authz         bool
}

func (r *Refusal) Error() string { return r.Message }

// Refuse makes a Refusal that is not about authorization.
func Refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// deny makes a Refusal of the operator's authorization.
func deny(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...), Authz: true}
}
