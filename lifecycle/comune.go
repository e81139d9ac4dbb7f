package lifecycle

import (
	"fmt"
	"slices"
	"strings"

	"anprsec/domain"
	"anprsec/store"
)

// The comune invariant (docs/rules.md#comune-invariant): a comune has
// exactly one ASC, at least one ALS and at least one ALP. It has two phases:
//
//   - at the census (CensusBreaches), the comune's utenze in the store that
//     are not cancelled, together with the workbook's rows, must meet it, or
//     all the comune's rows are refused;
//   - afterwards (ChangeBreach), a change to an utenza may not leave the
//     comune without an active ASC, ALS or ALP that it had, nor give it a
//     second ASC; a comune already short of a profile may still change other
//     things.
//
// The audit (AuditBreaches) reports the comuni that do not meet it counting
// only active utenze whose card is usable (CardUsable: ATTIVA and not past
// its expiry, so an expired card never counts; the job scadenze warns the
// comune before its last usable ASC, ALS or ALP card expires).

// Mandatory lists the profiles every comune must have.
var Mandatory = []domain.Profile{domain.ASC, domain.ALS, domain.ALP}

// Staff counts, for one comune, the utenze holding each profile.
type Staff map[domain.Profile]int

// Add counts one utenza with profiles ps.
func (s Staff) Add(ps []domain.Profile) {
	for _, p := range ps {
		s[p]++
	}
}

// Breach is one way a comune fails the invariant: Have utenze hold Profile,
// none (a missing profile) or, for the ASC, more than one.
type Breach struct {
	Profile domain.Profile
	Have    int
}

// Missing reports whether the breach is a missing profile.
func (b Breach) Missing() bool { return b.Have == 0 }

// Breaches returns how s fails the invariant, in the order of Mandatory;
// none when it holds.
func (s Staff) Breaches() []Breach {
	var out []Breach
	for _, p := range Mandatory {
		n := s[p]
		if n == 0 || (p == domain.ASC && n > 1) {
			out = append(out, Breach{Profile: p, Have: n})
		}
	}
	return out
}

// CensusBreaches describes, in Italian, what a comune's utenze (the store's
// ones not cancelled together with the workbook's rows: profiles by CF)
// lack to meet the invariant; "" when they meet it. stored names the CFs
// among them that only the store holds (no row of the workbook): a second
// ASC says how many of the ASC are already in the store.
func CensusBreaches(utenze map[string][]domain.Profile, stored map[string]bool) string {
	s := Staff{}
	ascStored := 0
	for cf, ps := range utenze {
		s.Add(ps)
		if stored[cf] && slices.Contains(ps, domain.ASC) {
			ascStored++
		}
	}
	var probs []string
	for _, b := range s.Breaches() {
		switch {
		case b.Profile == domain.ASC && b.Missing():
			probs = append(probs, "manca l'ASC (sindaco o commissario)")
		case b.Profile == domain.ASC && ascStored > 0:
			probs = append(probs, fmt.Sprintf("%d utenti con profilo ASC (%d già in archivio da un censimento precedente, %d in questo file), ne è ammesso uno solo",
				b.Have, ascStored, b.Have-ascStored))
		case b.Profile == domain.ASC:
			probs = append(probs, fmt.Sprintf("%d utenti con profilo ASC, ne è ammesso uno solo", b.Have))
		default:
			probs = append(probs, "manca un "+string(b.Profile))
		}
	}
	return strings.Join(probs, ", ")
}

// ChangeBreach checks that giving the utenza of cf in comune istat the
// profiles after (nil: the utenza is no longer active) keeps the invariant
// among the comune's ATTIVA utenze. Only a change for the worse is refused.
// It returns a Refusal naming the profile, or nil.
func ChangeBreach(tx *store.Tx, istat, cf string, after []domain.Profile) (*Refusal, error) {
	before, now := Staff{}, Staff{}
	err := tx.UtenzeOfComune(istat, func(u *domain.Utenza) error {
		if u.State != domain.UtenzaAttiva {
			return nil
		}
		before.Add(u.Profiles)
		if u.CF != cf {
			now.Add(u.Profiles)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	now.Add(after)
	for _, b := range now.Breaches() {
		was := before[b.Profile]
		switch {
		case b.Missing() && was > 0:
			return Refuse("COMUNE_SENZA_"+string(b.Profile), "il comune %s resterebbe senza %s (%s) attivo: prima va nominato un altro %s",
				istat, b.Profile, profileDescription(b.Profile), b.Profile), nil
		case !b.Missing() && b.Have > was:
			return Refuse("ASC_DOPPIO", "il comune %s ha già un sindaco (ASC) attivo: l'ASC è uno solo", istat), nil
		}
	}
	return nil, nil
}

// AuditBreaches describes the breaches of an audit's count of a comune
// (active utenze with an active card), for the security review: "nessun
// ALS, ALP con utenza attiva e smart card attiva"; "" when none.
func AuditBreaches(s Staff) string {
	var missing, extra []string
	for _, b := range s.Breaches() {
		if b.Missing() {
			missing = append(missing, string(b.Profile))
		} else {
			extra = append(extra, fmt.Sprintf("%d %s", b.Have, b.Profile))
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "nessun "+strings.Join(missing, ", ")+" con utenza attiva e smart card attiva")
	}
	if len(extra) > 0 {
		parts = append(parts, strings.Join(extra, ", ")+" con utenza attiva e smart card attiva: l'ASC è uno solo")
	}
	return strings.Join(parts, "; ")
}

func profileDescription(p domain.Profile) string {
	if info, ok := domain.LookupProfile(string(p)); ok {
		return info.Description
	}
	return string(p)
}
