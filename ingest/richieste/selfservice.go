package richieste

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/store"
)

// Receipt codes of the self-service requests (docs/rules.md#self-service).
const (
	// CodePublishing answers an accepted SCARICA_CERTIFICATI or STATO: the
	// file is committed and is written to the comune's folder by the same
	// run of ingest-richieste, right after the receipt.
	CodePublishing = "IN_PUBBLICAZIONE"
	// CodeNoCertificate refuses a SCARICA_CERTIFICATI when the comune has
	// no ATTIVO certificate to download.
	CodeNoCertificate = "NESSUN_CERTIFICATO"
)

// bundlePath is the drop path of a certificate bundle of comune istat
// stamped stamp, as export/bundle.Path names it (ingest does not import
// export; a test of the job holds the two together).
func bundlePath(istat, stamp string) string {
	return path.Join("comuni", istat, "certificati", istat+"-certificati-"+stamp+".zip")
}

// scaricaCertificati ("Scarica tutti", "Scarica certificato") commits a
// pending bundle of the comune's ATTIVO certificates, or of the one named
// by code, for the job to publish in comuni/<ISTAT>/certificati/. Only the
// folder's comune's certificates: a code of another comune is ALTRO_COMUNE.
func (p *Processor) scaricaCertificati(tx *store.Tx, src store.Source, code string) (string, string, *lifecycle.Refusal, error) {
	var codes []string
	if code != "" {
		ref, err := p.oneCertificate(tx, code)
		if ref != nil || err != nil {
			return "", "", ref, err
		}
		codes = []string{code}
	} else {
		ps, err := lifecycle.PostazioniOf(tx, p.ISTAT, domain.CertAttivo)
		if err != nil {
			return "", "", nil, err
		}
		for _, w := range ps {
			if len(w.P12Sealed) > 0 {
				codes = append(codes, w.Code)
			}
		}
		if len(codes) == 0 {
			return "", "", lifecycle.Refuse(CodeNoCertificate, "il comune %s non ha certificati ATTIVO da scaricare", p.ISTAT), nil
		}
	}
	b, err := tx.NewBundle(p.ISTAT, tx.Now, p.Loc, codes)
	if err != nil {
		return "", "", nil, err
	}
	name := bundlePath(p.ISTAT, b.Stamp)
	if err := tx.Record(src, "bundle.richiesto", "bundle", b.ID(),
		fmt.Sprintf("SCARICA_CERTIFICATI: %d certificati con le password in %s: %s", len(codes), name, strings.Join(codes, ", "))); err != nil {
		return "", "", nil, err
	}
	return CodePublishing, fmt.Sprintf("%d certificati con password.txt in %s", len(codes), name), nil, nil
}

// oneCertificate checks that code is an ATTIVO certificate of the
// folder's comune, issued: a refusal when it is not.
func (p *Processor) oneCertificate(tx *store.Tx, code string) (*lifecycle.Refusal, error) {
	if ok, err := codedUnder(tx, p.ISTAT, code); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return lifecycle.Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, p.ISTAT), nil
	}
	w, err := tx.Postazione(code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return lifecycle.Refuse("POSTAZIONE_SCONOSCIUTA", "la postazione %s non esiste", code), nil
	case err != nil:
		return nil, err
	case w.ISTAT != p.ISTAT:
		return lifecycle.Refuse("ALTRO_COMUNE", "la postazione %s non è del comune %s", code, p.ISTAT), nil
	case w.State != domain.CertAttivo:
		return lifecycle.Refuse("STATO", "il certificato della postazione %s è %s: si scaricano solo i certificati ATTIVO", code, w.State), nil
	case len(w.P12Sealed) == 0:
		return lifecycle.Refuse(CodeNoCertificate, "la postazione %s non ha un certificato da scaricare", code), nil
	}
	return nil, nil
}

// stato commits a pending STATO report of the comune with what the
// operator's profiles show (lifecycle.StatusViewOf), for the job to
// publish in comuni/<ISTAT>/report/.
func (p *Processor) stato(tx *store.Tx, src store.Source, operator string) (string, string, *lifecycle.Refusal, error) {
	u, err := tx.Utenza(p.ISTAT, operator)
	if err != nil {
		return "", "", nil, err // authorized: the utenza exists
	}
	v := lifecycle.StatusViewOf(u.Profiles)
	if !v.Any() {
		return "", "", lifecycle.Refuse("NON_AUTORIZZATO", "STATO richiede il profilo ALS, ALP o ASC"), nil
	}
	r := &store.StatusReport{ISTAT: p.ISTAT, Operator: operator, Utenze: v.Utenze, Postazioni: v.Postazioni}
	if err := tx.NewStatusReport(r, tx.Now, p.Loc); err != nil {
		return "", "", nil, err
	}
	var what []string
	if v.Utenze {
		what = append(what, "utenze e smart card")
	}
	if v.Postazioni {
		what = append(what, "postazioni")
	}
	name := path.Join("comuni", p.ISTAT, "report", "stato-"+p.ISTAT+"-"+r.Stamp)
	if err := tx.Record(src, "stato.richiesto", "report", r.ID(),
		fmt.Sprintf("STATO: %s in %s.xlsx e .csv", strings.Join(what, " e "), name)); err != nil {
		return "", "", nil, err
	}
	return CodePublishing, fmt.Sprintf("stato di %s in %s.xlsx (e CSV)", strings.Join(what, " e "), name), nil, nil
}
