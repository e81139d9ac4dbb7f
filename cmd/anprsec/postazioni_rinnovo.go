package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"anprsec/domain"
	"anprsec/lifecycle"
	"anprsec/pki"
	"anprsec/store"
)

// postazioniRinnovaCmd is `anprsec postazioni rinnova CODICE --motivo`.
func (a *app) postazioniRinnovaCmd() *cobra.Command {
	var motivo string
	cmd := &cobra.Command{
		Use:   "rinnova CODICE --motivo TESTO",
		Short: "Chiede un nuovo certificato per la postazione, che sostituisce quello attuale",
		Long: `rinnova chiede un nuovo certificato per la postazione CODICE (ATTIVO), con lo
stesso codice: lo emette il prossimo batch certificati, che lo pubblica nello
ZIP del comune. Il certificato attuale resta valido per pki.renew_overlap
(30 giorni, se non configurato) dopo l'emissione del nuovo, o fino a quando un
ALP registra l'installazione del nuovo (REGISTRA_INSTALLAZIONE), se avviene
prima; poi è revocato con motivo CRL superseded. "postazioni show CODICE"
mostra il certificato attuale e i precedenti.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			p, err := lifecycle.RequestRenewal(st, store.Source{Actor: a.actor()}, args[0], motivo)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: rinnovo del certificato %s in lavorazione (lo emette il prossimo batch certificati)\n", p.Code, p.Serial)
			return nil
		},
	}
	cmd.Flags().StringVar(&motivo, "motivo", "", "il motivo, registrato nella storia (obbligatorio)")
	cmd.MarkFlagRequired("motivo")
	return cmd
}

// postazioniShowCmd is `anprsec postazioni show CODICE`.
func (a *app) postazioniShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show CODICE",
		Short: "Mostra una postazione: il certificato attuale, il rinnovo in corso e i certificati precedenti",
		Long: `show mostra la postazione CODICE: stato, certificato attuale (seriale,
emissione, scadenza), il rinnovo in lavorazione se c'è, i certificati che il
rinnovo ha sostituito (con la fine della sovrapposizione e il loro stato ora)
e le installazioni registrate.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			code := strings.ToUpper(strings.TrimSpace(args[0]))
			var p *domain.Postazione
			var ins []*store.Installation
			var now time.Time
			if err := st.View(func(tx *store.Tx) error {
				var err error
				now = tx.Now
				p, err = tx.Postazione(code)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("%w: %s", lifecycle.ErrUnknownPostazione, code)
				}
				if err != nil {
					return err
				}
				return tx.InstallationsOfPostazione(p.Code, func(in *store.Installation) error {
					ins = append(ins, in)
					return nil
				})
			}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "postazione: %s (%s)\ncomune: %s\nstato: %s\n", p.Code, dash(p.Label), p.ISTAT, p.State)
			issued := "-"
			if c, err := x509.ParseCertificate(p.CertDER); err == nil {
				issued = a.whenDay(c.NotBefore)
			}
			fmt.Fprintf(out, "certificato attuale: %s, emesso il %s, scade il %s\n", dash(p.Serial), issued, a.whenDay(p.NotAfter))
			if p.PrevSerial != "" {
				fmt.Fprintf(out, "sostituisce: %s\n", p.PrevSerial)
			}
			if r := p.Renewal; r != nil {
				who := r.By
				if r.Auto {
					who += " (automatico)"
				}
				fmt.Fprintf(out, "rinnovo in lavorazione: chiesto il %s da %s: %s\n", a.when(r.Requested), who, r.Motivo)
			}
			if len(p.Predecessors) > 0 {
				fmt.Fprintln(out, "certificati precedenti:")
				w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "SERIALE\tEMESSO\tSCADENZA\tSOSTITUITO DA\tRINNOVATO IL\tVALIDO FINO AL\tSTATO")
				for i := len(p.Predecessors) - 1; i >= 0; i-- {
					pc := &p.Predecessors[i]
					r, _ := lifecycle.PredecessorRevocation(p, pc, now)
					state := "valido (sovrapposizione)"
					switch {
					case r.Revoked && r.Reason == pki.ReasonCertificateHold:
						state = "sospeso con la postazione"
					case r.Revoked:
						state = "revocato (" + pki.ReasonName(r.Reason) + ") il " + a.when(r.At)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", pc.Serial, a.whenDay(pc.NotBefore), a.whenDay(pc.NotAfter),
						pc.SupersededBy, a.when(pc.Replaced), a.when(pc.SupersededAt()), state)
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			if len(ins) > 0 {
				fmt.Fprintln(out, "installazioni registrate:")
				for _, in := range ins {
					fmt.Fprintf(out, "  %s su %s (%s, %s), registrata il %s da %s\n", in.Serial, in.Host, dash(in.Address), dash(in.Office), a.when(in.Updated), in.By)
				}
			}
			return nil
		},
	}
}

// postazioniRegistroCmd is `anprsec postazioni registro --comune ISTAT`.
func (a *app) postazioniRegistroCmd() *cobra.Command {
	var comune string
	cmd := &cobra.Command{
		Use:   "registro --comune ISTAT",
		Short: "Mostra il registro delle installazioni di un comune: quale PC o server ha quale certificato",
		Long: `registro mostra il registro delle installazioni del comune, come lo tengono i
suoi ALP con le richieste REGISTRA_INSTALLAZIONE: per ogni certificato il
nome host, l'indirizzo, l'ufficio, le note, chi l'ha registrato e quando.
Ogni modifica è nella storia (history list --kind installazione) e
"anprsec history verify" controlla che ogni riga del registro sia uguale a
quanto dice la sua ultima voce di storia.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			comune, err := istatFlag(comune)
			if err != nil {
				return err
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			var ins []*store.Installation
			if err := st.View(func(tx *store.Tx) error {
				ins, err = lifecycle.InstallationsOf(tx, comune)
				return err
			}); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "CODICE\tSERIALE\tHOST\tINDIRIZZO\tUFFICIO\tNOTE\tREGISTRATA DA\tAGGIORNATA IL")
			for _, in := range ins {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Code, in.Serial, in.Host, dash(in.Address), dash(in.Office),
					dash(in.Note), in.By, a.when(in.Updated))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d installazioni\n", len(ins))
			return nil
		},
	}
	cmd.Flags().StringVar(&comune, "comune", "", "codice ISTAT del comune (obbligatorio)")
	cmd.MarkFlagRequired("comune")
	return cmd
}
