package richieste

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"anprsec/codfisc"
	"anprsec/domain"
	"anprsec/drop"
	"anprsec/ingest"
	"anprsec/ingest/table"
	"anprsec/internal/clip"
	"anprsec/lifecycle"
	"anprsec/store"
	"anprsec/trust/cades"
)

// A console request file is signed by the operator it names, with his
// smart card (docs/rules.md#console-requests): either <file>.p7m, a CAdES
// envelope holding the file, or <file> with a detached <file>.p7s beside
// it. The signature is valid over the content, its certificate chains to
// trust.card_ca, is valid now and is not in the card CA's CRL; the signer's
// codice fiscale comes from the certificate. The signer's card is ATTIVA in
// the store, and every row's Operatore is the signer (an empty Operatore is
// the signer). The store does not know which certificate is on which card:
// the link is the codice fiscale.

// Suffixes of signed request files.
const (
	EnvelopeExt = ".p7m" // CAdES enveloping the file
	DetachedExt = ".p7s" // CAdES detached, beside the file
)

// Whole-file refusal codes of the signature of a request file, beside the
// codes of cades.Verify (FIRMA_NON_VALIDA, CERTIFICATO_NON_FIDATO,
// CERTIFICATO_SCADUTO, CERTIFICATO_REVOCATO, FIRMATARIO_SENZA_CF).
const (
	CodeSignatureMissing  = "FIRMA_ASSENTE"
	CodeSignerNotOperator = "FIRMATARIO_NON_OPERATORE"
	CodeSignerCard        = "FIRMATARIO_SMART_CARD_NON_ATTIVA"
	CodeEnvelopeName      = "NOME_FILE_FIRMATO"
)

// maxDetached bounds a .p7s read from the drop.
const maxDetached = 1 << 20

// signed is the verified signature of a file: the signer and the content.
type signed struct {
	name    string // the name of the signed file (without .p7m)
	content []byte
	signer  *cades.Signer
}

// refusal is a whole-file refusal of the signature.
type refusal struct{ code, message string }

// verify returns the signed content of the request file f (data: its
// bytes) and its signer, or a refusal; signer is nil when signatures are
// not required and the file comes without one.
func (p *Processor) verify(ctx context.Context, f *ingest.File, data []byte) (*signed, *refusal, error) {
	if strings.HasSuffix(strings.ToLower(f.Name), EnvelopeExt) {
		name := f.Name[:len(f.Name)-len(EnvelopeExt)]
		low := strings.ToLower(name)
		if !strings.HasSuffix(low, ".csv") && !strings.HasSuffix(low, ".xlsx") {
			return nil, &refusal{CodeEnvelopeName, fmt.Sprintf("%s: una richiesta firmata si chiama <file>.csv.p7m o <file>.xlsx.p7m", f.Name)}, nil
		}
		s, ref := p.check(nil, data, false, f.Name)
		if ref != nil {
			return nil, ref, nil
		}
		return &signed{name: name, content: s.Content, signer: s}, nil, nil
	}
	sig, err := p.detached(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	if sig == nil {
		if !p.RequireSignature {
			return &signed{name: f.Name, content: data}, nil, nil
		}
		return nil, &refusal{CodeSignatureMissing, fmt.Sprintf("%s non è firmato: una richiesta si firma con la smart card dell'operatore (%s%s, oppure %s%s accanto al file)",
			f.Name, f.Name, EnvelopeExt, f.Name, DetachedExt)}, nil
	}
	s, ref := p.check(data, sig, true, f.Name+DetachedExt)
	if ref != nil {
		return nil, ref, nil
	}
	return &signed{name: f.Name, content: data, signer: s}, nil, nil
}

// check verifies a signature against the card CA.
func (p *Processor) check(content, sig []byte, detached bool, name string) (*cades.Signer, *refusal) {
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	s, err := cades.Verify(content, sig, detached, p.Anchors, now)
	if err != nil {
		var ce *cades.Error
		if errors.As(err, &ce) {
			return nil, &refusal{ce.Code, name + ": " + ce.Message}
		}
		return nil, &refusal{cades.FirmaNonValida, name + ": " + err.Error()}
	}
	return s, nil
}

// detached reads the <file>.p7s beside f, or returns nil when there is none.
func (p *Processor) detached(ctx context.Context, f *ingest.File) ([]byte, error) {
	if p.CompanionOf == nil || p.Drop == nil {
		return nil, nil
	}
	c, err := p.CompanionOf(ctx, f.Path)
	if err != nil || c == "" {
		return nil, err
	}
	rc, err := p.Drop.Open(ctx, c)
	if errors.Is(err, drop.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sig, err := io.ReadAll(io.LimitReader(rc, maxDetached+1))
	if err != nil {
		return nil, err
	}
	if len(sig) == 0 {
		return []byte{}, nil // an empty signature is refused by Verify as FIRMA_ASSENTE
	}
	return sig, nil
}

// checkSigner refuses the whole file when the signer's card is not ATTIVA
// or a row names another operator: nothing of it is applied.
func (p *Processor) checkSigner(s *cades.Signer, t *table.Table) (*refusal, error) {
	cf := s.CF
	for _, r := range t.Rows {
		if op := codfisc.Normalize(r.Get(ColOperatore)); op != "" && op != cf {
			return &refusal{CodeSignerNotOperator, fmt.Sprintf("la riga %d indica l'operatore %s, ma il file è firmato da %s: ogni operatore firma le proprie richieste", r.Line, clip.String(op, maxShown), cf)}, nil
		}
	}
	var active bool
	var state domain.CardState
	err := p.Store.View(func(tx *store.Tx) error {
		var err error
		active, state, err = lifecycle.ActiveCard(tx, cf)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !active {
		what := "non ha una smart card"
		if state != "" {
			what = "ha la smart card " + string(state)
		}
		return &refusal{CodeSignerCard, fmt.Sprintf("il firmatario %s %s: si firma con la propria smart card attiva", cf, what)}, nil
	}
	return nil, nil
}
