package main

import (
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"anprsec/jobs"
	"anprsec/pki"
	"anprsec/pki/hsm"
	"anprsec/schedules"
	"anprsec/store"
)

func init() {
	extraCommands = append(extraCommands, (*app).caCmd)
}

// caCmd is `anprsec ca`: the CAs of anprsec and their rollover
// (docs/rules.md#ca-rollover).
func (a *app) caCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Le CA di anprsec: elenco e rinnovo (rollover)",
		Long: `ca mostra le CA di anprsec e ne fa il rinnovo.

  elenco   le CA, dalla prima all'ultima: identificativo della chiave,
           impronta SHA-256, scadenza, file della CRL, stato (corrente,
           precedente: pubblica ancora CRL e risponde OCSP; ritirata)
  rinnova  una nuova chiave e un nuovo certificato della CA, con lo stesso
           nome, e il certificato incrociato (la nuova chiave certificata
           dalla CA corrente); poi la nuova CA diventa la corrente: i nuovi
           certificati li emette lei. La CA precedente continua a firmare la
           sua CRL e a rispondere OCSP finché non le resta alcun certificato
           valido.`,
	}
	cmd.AddCommand(a.caRinnovaCmd(), a.caElencoCmd())
	return cmd
}

func (a *app) caRinnovaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rinnova",
		Short: "Rinnova la CA: nuova chiave, certificato e certificato incrociato, poi la nuova CA diventa la corrente",
		Long: `rinnova fa una nuova CA accanto a quella corrente, a demone fermo (il comando
apre l'archivio; il demone, riavviato, serve le CRL e l'OCSP di ogni CA):

  1. la chiave: un file accanto a pki.ca_key (ca-AAAAMMGG.key, mode 0600), o,
     con pki.ca_key un URI PKCS#11, una chiave nello stesso token con
     etichetta <object>-AAAAMMGG; una chiave esistente non è mai
     sovrascritta;
  2. il certificato della nuova CA (ca-AAAAMMGG.crt accanto a pki.ca_cert),
     con lo stesso nome della CA corrente, valido 10 anni;
  3. il certificato incrociato (ca-AAAAMMGG.cross.crt): la nuova chiave
     certificata dalla CA corrente, per chi si fida solo di quella;
  4. in un solo passo, la nuova CA diventa la corrente (voce ca.rinnovo
     nello storico, con le impronte) e la CRL è firmata subito.

Un'interruzione prima del passo 4 lascia corrente la CA di prima; rilanciato,
il comando riprende lo stesso rinnovo (stessa chiave, stessi file). I file
delle CA precedenti restano dove sono. La CRL della nuova CA è
crl/anprsec-AAAAMMGG.crl, e i suoi certificati ne portano l'URL (con
pki.crl_url e pki.ca_issuers_url impostati).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.cfg.CAKeyInHSM() {
				if err := a.checkHSM(); err != nil {
					return err
				}
			}
			bits := pki.DevCAKeyBits
			if v := os.Getenv(devCABitsEnv); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("%s=%q: want 2048, 3072 or 4096", devCABitsEnv, v)
				}
				bits = n
			}
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			res, err := jobs.RollOverCA(r.Env(), store.Source{Actor: a.actor()}, time.Now(), bits)
			if err != nil {
				return fmt.Errorf("rinnovo della CA: %w", err)
			}
			out := cmd.OutOrStdout()
			if res.Resumed {
				fmt.Fprintln(out, "ripreso un rinnovo interrotto")
			}
			for _, m := range res.Made {
				fmt.Fprintf(out, "creato %s\n", m)
			}
			der, _ := res.New.CRLFiles()
			fmt.Fprintf(out, "CA precedente: %s (SHA-256 %s), scade %s\n", res.Old.KeyID, pki.Fingerprint(res.Old.Cert), a.whenDay(res.Old.Cert.NotAfter))
			fmt.Fprintf(out, "CA corrente:   %s (SHA-256 %s), scade %s\n", res.New.KeyID, pki.Fingerprint(res.New.Cert), a.whenDay(res.New.Cert.NotAfter))
			fmt.Fprintf(out, "certificato della nuova CA: %s\n", res.New.CertPath)
			fmt.Fprintf(out, "certificato incrociato:     %s (SHA-256 %s)\n", res.CrossPath, pki.Fingerprint(res.New.Cross))
			if hsm.IsURI(res.New.KeyRef) {
				fmt.Fprintf(out, "chiave (HSM):               %s\n", res.New.KeyRef)
			} else {
				fmt.Fprintf(out, "chiave:                     %s\n", res.New.KeyRef)
			}
			fmt.Fprintf(out, "CRL della nuova CA:         %s\n", der)
			if u := res.New.Discovery(a.cfg).CRL; u != "" {
				fmt.Fprintf(out, "URL della CRL:              %s\n", u)
			}
			fmt.Fprintln(out, "distribuire alle parti che verificano il certificato della nuova CA (o il certificato incrociato)")
			return a.runCRLNow(cmd, r)
		},
	}
}

// runCRLNow runs the crl job, as the postazioni operations do, and prints
// its outcome.
func (a *app) runCRLNow(cmd *cobra.Command, r *schedules.Runner) error {
	rec, err := r.RunManual(cmd.Context(), "crl", a.actor())
	if rec != nil {
		line := fmt.Sprintf("crl: %s in %s", rec.Outcome, rec.End.Sub(rec.Start).Round(time.Millisecond))
		if c := formatCounts(rec.Counts, rec.Values); c != "" {
			line += " " + c
		}
		fmt.Fprintln(cmd.OutOrStdout(), line)
	}
	if err != nil {
		return fmt.Errorf("la CRL non è stata firmata ora (lo sarà al prossimo giro orario, o con `anprsec jobs run crl`): %w", err)
	}
	return nil
}

func (a *app) caElencoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "elenco",
		Short: "Elenca le CA: chiave, impronta, scadenza, CRL, stato",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			var cas []*jobs.IssuerCA
			if err := st.View(func(tx *store.Tx) error {
				cas, err = jobs.CAs(a.cfg, tx)
				return err
			}); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "CHIAVE\tSHA-256\tSCADENZA\tCRL\tSTATO")
			for _, c := range cas {
				state := "precedente"
				switch {
				case c.Current:
					state = "corrente"
				case !c.Retired.IsZero():
					state = "ritirata il " + a.whenDay(c.Retired)
				}
				der, _ := c.CRLFiles()
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.KeyID, pki.Fingerprint(c.Cert), a.whenDay(c.Cert.NotAfter), der, state)
			}
			return w.Flush()
		},
	}
}
