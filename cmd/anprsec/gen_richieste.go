package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"anprsec/domain"
	"anprsec/ingest/census/censusgen"
	"anprsec/ingest/richieste"
	"anprsec/lifecycle"
	"anprsec/store"
	"anprsec/trust/cades"
)

// genSubcommands are the gen subcommands beside `gen censimento`.
var genSubcommands = []func(a *app) *cobra.Command{(*app).genFirmaCmd, (*app).genRichiesteCmd}

// devCardCA loads the development card CA that init made beside
// trust.card_ca; in production the anchor has no key here, and files are
// signed with the operators' own cards.
func (a *app) devCardCA() (*cades.DevCA, error) {
	anchor := a.cfg.Path(a.cfg.Trust.CardCA)
	if anchor == "" {
		return nil, errors.New("trust.card_ca è vuoto: nessuna CA delle smart card")
	}
	ca, err := cades.LoadDevCA(filepath.Dir(anchor))
	if err != nil {
		return nil, fmt.Errorf("trust.card_ca (%s) non è la CA di sviluppo creata da `anprsec init`: le richieste si firmano con la smart card dell'operatore (%w)", anchor, err)
	}
	return ca, nil
}

// signAs signs data with a development card certificate of cf and writes
// the envelope to out (or a detached signature, with detached).
func signAs(ca *cades.DevCA, cf string, data []byte, out string, detached bool) error {
	return signAsTo(writeNew, ca, cf, data, out, detached)
}

// signAsTo is signAs writing the envelope with write (writeNew, or
// writeNewFor a folder of the caller).
func signAsTo(write func(string, []byte, os.FileMode) error, ca *cades.DevCA, cf string, data []byte, out string, detached bool) error {
	card, err := cades.IssueCard(ca, cf, "carta di sviluppo "+cf, time.Now().AddDate(1, 0, 0))
	if err != nil {
		return err
	}
	sig, err := cades.Sign(data, card.Cert, card.Key, detached)
	if err != nil {
		return err
	}
	return write(out, sig, 0o644)
}

func (a *app) genFirmaCmd() *cobra.Command {
	var cf string
	var detached bool
	cmd := &cobra.Command{
		Use:   "firma --cf CF FILE...",
		Short: "Firma file come farebbe la smart card di CF, con la CA di sviluppo delle smart card (solo per prove)",
		Long: `firma firma ogni FILE (una richiesta da console) con un certificato di smart
card di sviluppo emesso per il codice fiscale CF dalla CA di sviluppo delle
smart card creata da init (trust.card_ca): FILE.p7m (CAdES, imbustato), o con
--staccata FILE.p7s accanto. In produzione le richieste si firmano con la
smart card dell'operatore e il suo software di firma; questo comando si
rifiuta di funzionare se trust.card_ca non è la CA di sviluppo.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ca, err := a.devCardCA()
			if err != nil {
				return err
			}
			cf = strings.ToUpper(strings.TrimSpace(cf))
			for _, f := range args {
				data, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				out := f + richieste.EnvelopeExt
				if detached {
					out = f + richieste.DetachedExt
				}
				if err := signAs(ca, cf, data, out, detached); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: firmato da %s\n", out, cf)
				if !detached {
					if err := os.Remove(f); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cf, "cf", "", "codice fiscale `CF` del firmatario (obbligatoria)")
	cmd.Flags().BoolVar(&detached, "staccata", false, "scrive una firma staccata FILE.p7s e lascia FILE (se assente: FILE.p7m, FILE rimosso)")
	cmd.MarkFlagRequired("cf")
	return cmd
}

func (a *app) genRichiesteCmd() *cobra.Command {
	var comune, out string
	var errori int
	var scarica, stato, rinnova, registra, conferma, consegne, tutti bool
	cmd := &cobra.Command{
		Use:   "richieste (--comune ISTAT | --consegne --tutti) [--out DIR] [--errori N] [--scarica] [--stato] [--rinnova] [--registra] [--conferma] [--consegne]",
		Short: "Scrive richieste da console di esempio di un comune, firmate dal suo ALS e dal suo ALP (CA di sviluppo)",
		Long: `richieste scrive due file di richieste di esempio del comune ISTAT da ciò che
contiene l'archivio, ciascuno firmato (CAdES .p7m) con un certificato di
smart card di sviluppo del suo operatore: <ISTAT>-als-esempio.csv.p7m da un
ALS con smart card attiva (INSERISCI_UTENTE di una persona di esempio) e
<ISTAT>-alp-esempio.csv.p7m da un ALP con smart card attiva
(REGISTRA_POSTAZIONE). --errori N aggiunge al file dell'ALS N righe con
errori voluti, per vedere i codici delle ricevute. I file vanno nella
cartella delle richieste del comune nel drop locale, o in --out.

--scarica aggiunge al file dell'ALP una riga SCARICA_CERTIFICATI (lo ZIP dei
certificati ATTIVO del comune con password.txt in certificati/); --stato
aggiunge a entrambi i file una riga STATO (il report di utenze e smart card
per l'ALS, di postazioni per l'ALP, in report/).

--rinnova aggiunge al file dell'ALP una riga RINNOVA_POSTAZIONE della prima
postazione con certificato ATTIVO senza rinnovo in lavorazione; --registra
una riga REGISTRA_INSTALLAZIONE della prima postazione con certificato
ATTIVO (il suo seriale, un nome host di esempio). --conferma scrive un terzo
file, <ISTAT>-conferma-esempio.csv.p7m, firmato dall'ALS: CONFERMA_VERIFICA
della campagna di avvisi di sicurezza aperta più recente che ha avvisato il
comune e che il comune non ha ancora confermato (errore se non ce n'è).

--consegne scrive soltanto <ISTAT>-consegne-esempio.csv.p7m: una riga
REGISTRA_CONSEGNA_SC per ogni smart card del comune CONSEGNATA DALLA
PREFETTURA, firmato da un ALS con smart card attiva; finché il comune non ne
ha, il file è del sindaco (ASC) con smart card attiva e registra le sole
smart card degli ALS. Così si attivano le prime smart card di un comune
senza scrivere file a mano: prima quella dell'ALS dal sindaco, poi le altre
dall'ALS, con un secondo --consegne. --consegne --tutti scrive il file di
ogni comune che ne ha uno da scrivere, in una sola esecuzione (con --out, in
<cartella>/<ISTAT>/), e conta quelli che non ne hanno.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tutti {
				if !consegne || comune != "" {
					return errors.New("--tutti va con --consegne e senza --comune")
				}
				return a.genAllDeliveries(cmd, out)
			}
			if comune == "" {
				return errors.New("manca --comune (o --consegne --tutti)")
			}
			istat, err := istatFlag(comune)
			if err != nil {
				return err
			}
			ca, err := a.devCardCA()
			if err != nil {
				return err
			}
			var files []sampleFile
			if consegne {
				f, err := a.sampleDeliveries(istat)
				if err != nil {
					return err
				}
				files = []sampleFile{f}
			}
			var als, alp string
			if !consegne {
				if als, alp, err = a.sampleOperators(istat); err != nil {
					return err
				}
			}
			var codes sampleCodes
			if rinnova || registra || conferma {
				if codes, err = a.sampleStoreCodes(istat, rinnova, registra, conferma); err != nil {
					return err
				}
			}
			// A folder named with --out is the caller's: through the control
			// socket the CLI writes there; the drop is the daemon's.
			toCaller := out != ""
			if out == "" {
				if a.cfg.Drop.Type != "local" {
					return errors.New("con un drop SFTP --out è obbligatoria")
				}
				out = filepath.Join(a.cfg.Path(a.cfg.Drop.Local), "comuni", istat, "richieste")
			}
			mkdir := os.MkdirAll
			if toCaller {
				mkdir = a.callerFS().MkdirAll
			}
			if err := mkdir(out, 0o755); err != nil {
				return err
			}
			if !consegne {
				files = sampleRequests(istat, als, alp, errori, sampleSelfService{scarica, stato}, codes)
			}
			for _, f := range files {
				p := filepath.Join(out, f.name+richieste.EnvelopeExt)
				if err := signAsTo(a.writeNewFor(toCaller), ca, f.signer, []byte(f.text), p, false); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: firmato da %s, righe di richiesta: %d\n", p, f.signer, strings.Count(f.text, "\n")-1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&comune, "comune", "", "codice `ISTAT` del comune (obbligatoria)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "`cartella` in cui scrivere (se assente: richieste/ del comune nel drop locale)")
	cmd.Flags().IntVar(&errori, "errori", 0, "`numero` di righe con errori voluti da aggiungere al file dell'ALS")
	cmd.Flags().BoolVar(&scarica, "scarica", false, "aggiunge SCARICA_CERTIFICATI al file dell'ALP")
	cmd.Flags().BoolVar(&stato, "stato", false, "aggiunge STATO ai file dell'ALS e dell'ALP")
	cmd.Flags().BoolVar(&rinnova, "rinnova", false, "aggiunge RINNOVA_POSTAZIONE di una postazione ATTIVO al file dell'ALP")
	cmd.Flags().BoolVar(&registra, "registra", false, "aggiunge REGISTRA_INSTALLAZIONE del certificato di una postazione ATTIVO al file dell'ALP")
	cmd.Flags().BoolVar(&conferma, "conferma", false, "scrive il file dell'ALS con CONFERMA_VERIFICA della campagna di avvisi aperta del comune")
	cmd.Flags().BoolVar(&consegne, "consegne", false, "scrive soltanto REGISTRA_CONSEGNA_SC delle smart card del comune consegnate dalla prefettura, firmato dall'ALS o, finché non ce n'è uno attivo, dal sindaco (per le sole smart card degli ALS)")
	cmd.Flags().BoolVar(&tutti, "tutti", false, "con --consegne: scrive il file di ogni comune che ha smart card da registrare (al posto di --comune)")
	return cmd
}

// sampleOperators finds an ALS and an ALP of comune istat with an ATTIVA
// utenza and an ATTIVA card.
func (a *app) sampleOperators(istat string) (als, alp string, err error) {
	st, err := a.openStore()
	if err != nil {
		return "", "", err
	}
	defer st.Close()
	err = st.View(func(tx *store.Tx) error {
		cands, err := activeUtenze(tx, istat)
		if err != nil {
			return err
		}
		for _, u := range cands {
			ok, _, err := lifecycle.ActiveCard(tx, u.CF)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if als == "" && u.Has(domain.ALS) {
				als = u.CF
			}
			if alp == "" && u.Has(domain.ALP) {
				alp = u.CF
			}
		}
		return nil
	})
	if err == nil && (als == "" || alp == "") {
		err = fmt.Errorf("il comune %s non ha un ALS e un ALP con utenza e smart card attive: registrare prima la consegna delle loro smart card", istat)
	}
	return als, alp, err
}

type sampleFile struct{ name, signer, text string }

// sampleSelfService says which self-service rows the samples add
// (docs/rules.md#self-service).
type sampleSelfService struct{ scarica, stato bool }

// sampleRequests writes the sample request files: header and rows, ';'
// separated, the Operatore column left empty (the signer).
func sampleRequests(istat, als, alp string, errori int, self sampleSelfService, codes sampleCodes) []sampleFile {
	person := censusgen.MakeCF("Esempio", "Prova", false, 1990, 5, 15, "H501", 0)
	var b strings.Builder
	b.WriteString("Operazione;Operatore;Codice Fiscale;Cognome;Nome;Sesso;Data di nascita;Email;Profili;Smart Card;Ambiente;Motivo\n")
	fmt.Fprintf(&b, "INSERISCI_UTENTE;;%s;Esempio;Prova;M;15/05/1990;prova.esempio@example.it;OPERATORE;NO;PRODUZIONE;\n", person)
	wrong := []string{
		"OPERAZIONE_INESISTENTE;;;;;;;;;;;",
		"BLOCCA_UTENTE;;;;;;;;;;;manca il codice fiscale",
		fmt.Sprintf("INSERISCI_UTENTE;;%s;Esempio;Prova;M;15/05/1990;prova.esempio@example.it;OPERATORE;NO;PRODUZIONE;", person),
		"NUOVA_SC;;RSSMRA80A01H501U;;;;;;;;;smarrimento",
	}
	for i := 0; i < errori; i++ {
		b.WriteString(wrong[i%len(wrong)] + "\n")
	}
	if self.stato {
		b.WriteString("STATO;;;;;;;;;;;\n")
	}
	alp1 := "Operazione;Operatore;Nome postazione\n"
	row := func(cells ...string) string { return strings.Join(cells, ";") + "\n" }
	pad := func(op, label string) string { return row(op, "", label) }
	if codes.renew != "" || codes.install != "" {
		alp1 = "Operazione;Operatore;Nome postazione;Codice postazione;Motivo;Nome host;Seriale;Indirizzo;Ufficio;Nota\n"
		pad = func(op, label string) string { return row(op, "", label, "", "", "", "", "", "", "") }
	}
	alpText := alp1 + pad("REGISTRA_POSTAZIONE", "Sportello esempio")
	if self.scarica {
		alpText += pad("SCARICA_CERTIFICATI", "")
	}
	if self.stato {
		alpText += pad("STATO", "")
	}
	if codes.install != "" {
		alpText += row("REGISTRA_INSTALLAZIONE", "", "", codes.install, "", "pc-anagrafe-01", codes.serial, "Via Roma 1", "Ufficio anagrafe", "installato dal tecnico comunale")
	}
	if codes.renew != "" {
		alpText += row("RINNOVA_POSTAZIONE", "", "", codes.renew, "certificato in scadenza", "", "", "", "", "")
	}
	files := []sampleFile{
		{istat + "-als-esempio.csv", als, b.String()},
		{istat + "-alp-esempio.csv", alp, alpText},
	}
	if codes.campaign != "" {
		files = append(files, sampleFile{istat + "-conferma-esempio.csv", als,
			"Operazione;Operatore;Campagna;Nota\n" + row("CONFERMA_VERIFICA", "", codes.campaign, "elenco degli utenti verificato")})
	}
	return files
}

// sampleCodes are the store's codes the samples name: the postazione to
// renew, the postazione whose current certificate (serial) is declared
// installed, the security notice campaign to confirm.
type sampleCodes struct{ renew, install, serial, campaign string }

// sampleStoreCodes takes from the store the real codes the rows asked
// need: an ATTIVO postazione of comune istat without a pending renewal
// (docs/rules.md#renewal), an ATTIVO postazione with its certificate's
// serial (docs/rules.md#installation-register), the newest open campaign
// that notified the comune and has no confirmation from it
// (docs/rules.md#security-notice-campaign).
func (a *app) sampleStoreCodes(istat string, renew, install, confirm bool) (sampleCodes, error) {
	var c sampleCodes
	st, err := a.openStore()
	if err != nil {
		return c, err
	}
	defer st.Close()
	attivi := 0
	err = st.View(func(tx *store.Tx) error {
		if err := tx.PostazioniOfComune(istat, func(p *domain.Postazione) error {
			if p.State != domain.CertAttivo || p.Serial == "" {
				return nil
			}
			attivi++
			if install && c.install == "" {
				c.install, c.serial = p.Code, p.Serial
			}
			if renew && c.renew == "" && p.Renewal == nil {
				c.renew = p.Code
			}
			return nil
		}); err != nil {
			return err
		}
		if !confirm {
			return nil
		}
		id, err := campaignToConfirm(tx, istat)
		c.campaign = id
		return err
	})
	switch {
	case err != nil:
		return c, err
	case (renew || install) && attivi == 0:
		return c, fmt.Errorf("il comune %s non ha postazioni con certificato ATTIVO: --rinnova e --registra ne richiedono una (il certificato si emette con il job certificati)", istat)
	case renew && c.renew == "":
		return c, fmt.Errorf("tutte le postazioni ATTIVO del comune %s hanno già un rinnovo in lavorazione: --rinnova non ha una postazione da rinnovare", istat)
	case confirm && c.campaign == "":
		return c, fmt.Errorf("nessuna campagna di avvisi di sicurezza aperta da confermare per il comune %s (anprsec avvisi stato): --conferma non ha una campagna", istat)
	}
	return c, nil
}

// campaignToConfirm returns the newest open campaign that notified comune
// istat and has no confirmation from it, or "".
func campaignToConfirm(tx *store.Tx, istat string) (string, error) {
	ids, err := tx.OpenCampaigns()
	if err != nil {
		return "", err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		cc, err := tx.CampaignComune(ids[i], istat)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if cc.Confirmed.IsZero() {
			return ids[i], nil
		}
	}
	return "", nil
}

// sampleDeliveries writes the request that registers the delivery to their
// holders of the cards of comune istat CONSEGNATA DALLA PREFETTURA, signed
// by an ALS with an active card or, while the comune has none, by the ASC
// with an active card, for the ALS's cards only (docs/rules.md#console-requests:
// the sindaco registers the first ALS's card, the ALS the others).
func (a *app) sampleDeliveries(istat string) (sampleFile, error) {
	st, err := a.openStore()
	if err != nil {
		return sampleFile{}, err
	}
	defer st.Close()
	var f sampleFile
	err = st.View(func(tx *store.Tx) error {
		f, err = sampleDeliveriesIn(tx, istat)
		return err
	})
	return f, err
}

// sampleDeliveriesIn is sampleDeliveries reading tx.
func sampleDeliveriesIn(tx *store.Tx, istat string) (sampleFile, error) {
	f := sampleFile{name: istat + "-consegne-esempio.csv"}
	var asc string
	var rows, alsRows []string
	cands, err := activeUtenze(tx, istat)
	if err != nil {
		return f, err
	}
	for _, u := range cands {
		p, err := tx.Person(u.CF)
		if err != nil {
			return f, err
		}
		var c *domain.SmartCard
		if p.Card != "" {
			if c, err = tx.Card(p.Card); err != nil {
				return f, err
			}
		}
		// lifecycle.ActiveCard's rule, on the card just read.
		ok := c != nil && !lifecycle.CardExpired(c, tx.Now) && lifecycle.CardUsable(c, tx.Now)
		switch {
		case ok && u.Has(domain.ALS) && f.signer == "":
			f.signer = u.CF
		case ok && u.Has(domain.ASC) && asc == "":
			asc = u.CF
		}
		if c != nil && c.State == domain.CardConsegnata && c.ISTAT == istat {
			rows = append(rows, "REGISTRA_CONSEGNA_SC;;"+u.CF+";"+c.Serial+"\n")
			if u.Has(domain.ALS) {
				alsRows = append(alsRows, rows[len(rows)-1])
			}
		}
	}
	if f.signer == "" {
		// The sindaco registers the first ALS's card only: once an ALS
		// card is active, the rest is the ALS's.
		f.signer, rows = asc, alsRows
	}
	switch {
	case f.signer == "":
		return f, noSampleError("il comune %s non ha un ALS né un sindaco (ASC) con smart card attiva: la smart card del sindaco si attiva con la consegna della prefettura (anprsec gen consegne)", istat)
	case len(rows) == 0:
		return f, noSampleError("il comune %s non ha smart card CONSEGNATA DALLA PREFETTURA da registrare", istat)
	}
	f.text = "Operazione;Operatore;Codice Fiscale;Seriale\n" + strings.Join(rows, "")
	return f, nil
}

// errNoSample marks a comune that has nothing for a sample file: gen
// richieste --consegne --tutti passes over it.
var errNoSample = errors.New("nessun file di esempio")

func noSampleError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errNoSample}, args...)...)
}

// activeUtenze returns the ATTIVA utenze of comune istat in codice fiscale
// order: the samples' candidate operators.
func activeUtenze(tx *store.Tx, istat string) ([]*domain.Utenza, error) {
	var out []*domain.Utenza
	err := tx.UtenzeOfComune(istat, func(u *domain.Utenza) error {
		if u.State == domain.UtenzaAttiva {
			out = append(out, u)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CF < out[j].CF })
	return out, err
}
