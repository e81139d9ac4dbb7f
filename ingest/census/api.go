package census

import (
	"anprsec/store"
)

// UserFields validates a user given as column values (the census column
// names, e.g. ColCF, ColProfili, to their values), with the same rules as a
// row of the Utenti sheet: used by the console requests (INSERISCI_UTENTE,
// MODIFICA_UTENTE). row names the source row in messages. A refusal is
// returned as its receipt code and message.
func (v *Validator) UserFields(fields map[string]string, row int) (r *UserRow, code, message string) {
	h := &header{index: map[string]int{}}
	cells := make([]string, 0, len(fields))
	for _, name := range UserColumns {
		if val, ok := fields[name]; ok {
			h.index[name] = len(cells)
			cells = append(cells, val)
		}
	}
	u, e := v.User(h, cells, row)
	if e != nil {
		return nil, e.Code, e.Message
	}
	return u, "", ""
}

// ApplyUser creates or updates the utenza of a validated user and requests
// a card when one is needed, inside the caller's transaction, exactly as a
// census row does; it returns the receipt code (CREATA, AGGIORNATA,
// INVARIATA) and a message.
func (g *Ingester) ApplyUser(tx *store.Tx, src store.Source, r *UserRow) (code, msg string, err error) {
	if g.known == nil {
		g.known = map[string]bool{}
	}
	return g.applyUser(tx, src, r)
}
