package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"anprsec/drop"
	"anprsec/jobs"
)

func init() { extraCommands = append(extraCommands, (*app).dropCmd) }

// dropRecheck is how often the daemon checks the drop again.
const dropRecheck = time.Hour

func (a *app) dropCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drop",
		Short: "Verifica e prepara il drop (cartella locale o server SFTP)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verifica",
		Short: "Verifica il drop: connessione, chiave del server, percorso base, ogni cartella che i job leggono o scrivono",
		Long: `verifica si collega al drop (per SFTP: il server, la sua chiave confrontata con
known_hosts, l'accesso), controlla che il percorso base sia una cartella in
cui si possono scrivere file, e poi ogni cartella che i job leggono o
scrivono: le cartelle di ingresso (censimento/, prefetture/<PPP>/consegne/ di
ogni prefettura, dove PPP è il codice a 3 cifre della provincia,
comuni/<ISTAT>/richieste/ di ogni comune censito) devono esistere, e si deve
poter scrivere in esse e nelle cartelle di uscita (crl/, produttore/ordini/,
sicurezza/report/, comuni/<ISTAT>/certificati/ e report/; una cartella di
uscita mancante è creata dal suo job, quindi quella che la contiene deve
accettare file). In ciascuna è scritto e poi rimosso un file di prova
(.anprsec-prova-*).

Stampa ciò che manca o non è scrivibile, registra l'esito nell'archivio
(mostrato da "anprsec status" e da /healthz) ed esce con stato 1 se qualcosa
non va. "anprsec run" fa la stessa verifica all'avvio e non parte se il
percorso base è sbagliato.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			rep, err := jobs.VerifyDrop(cmd.Context(), r.Env())
			if err != nil {
				return err
			}
			printDropReport(cmd.OutOrStdout(), rep, true)
			if !rep.OK() {
				return fmt.Errorf("il drop %s non è pronto: %s", rep.Drop, dropVerdict(rep))
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "prepara",
		Short: "Crea le cartelle di ingresso in cui depositano i partner (ripetibile)",
		Long: `prepara crea, sul drop (cartella locale o server SFTP), le cartelle di
ingresso in cui il ministero, le prefetture e i comuni depositano i loro file
e che non esistono ancora: censimento/, prefetture/<PPP>/consegne/ di ogni
prefettura (PPP: il codice a 3 cifre della provincia), comuni/<ISTAT>/richieste/
di ogni comune censito (rieseguirlo dopo un censimento che aggiunge comuni).
Non crea mai il percorso base: un percorso base sbagliato è un errore.
Rieseguito, non crea nulla. Poi verifica il drop come "anprsec drop verifica".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := a.openRunner(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			out := cmd.OutOrStdout()
			created, err := jobs.PrepareDrop(cmd.Context(), r.Env())
			for _, c := range created {
				fmt.Fprintf(out, "creata %s\n", c)
			}
			if err != nil {
				return fmt.Errorf("drop %s: %w", r.Env().Drop, err)
			}
			if len(created) == 0 {
				fmt.Fprintln(out, "tutte le cartelle di ingresso esistono: nulla da creare")
			}
			rep, err := jobs.VerifyDrop(cmd.Context(), r.Env())
			if err != nil {
				return err
			}
			printDropReport(out, rep, false)
			if !rep.OK() {
				return fmt.Errorf("il drop %s non è pronto: %s", rep.Drop, dropVerdict(rep))
			}
			return nil
		},
	})
	return cmd
}

// dropVerdict sums up a report in a few words.
func dropVerdict(r *drop.Report) string {
	switch {
	case r.Error != "":
		return "non si può verificare: " + r.Error
	case r.Base != "":
		return "percorso base sbagliato: " + r.Base
	case r.OK():
		return fmt.Sprintf("ok, %d cartelle verificate", r.Folders)
	}
	return fmt.Sprintf("%d cartelle verificate: %d non scrivibili, %d cartelle di ingresso mancanti", r.Folders, len(r.NotWritable), len(r.Missing))
}

// printDropReport prints a report: its verdict, then every folder not
// writable and every input folder missing (all of them when full, else
// at most drop.MaxListed of each).
func printDropReport(w io.Writer, r *drop.Report, full bool) {
	fmt.Fprintf(w, "drop %s: %s\n", r.Drop, dropVerdict(r))
	if full {
		for _, f := range r.NotWritable {
			fmt.Fprintf(w, "NON SCRIVIBILE  %s\n", f)
		}
		for _, f := range r.Missing {
			fmt.Fprintf(w, "MANCANTE        %s (cartella di ingresso: la crea anprsec drop prepara)\n", f)
		}
		return
	}
	for _, p := range r.Problems() {
		fmt.Fprintln(w, p)
	}
}

// verifyDropAtStart checks the drop before the daemon starts its jobs
// (jobs.VerifyDrop): a wrong base path refuses the start; a drop that
// cannot be reached now, folders that are missing or not writable are
// logged as warnings (the jobs try again at each run, and the publishing
// ones check their folders first).
func (a *app) verifyDropAtStart(ctx context.Context, env *jobs.Env) error {
	rep, err := jobs.VerifyDrop(ctx, env)
	if err != nil {
		return err
	}
	if rep.Base != "" {
		return fmt.Errorf("drop %s: percorso base sbagliato (drop.sftp.base_path, o drop.local): %s; \"anprsec drop verifica\" lo verifica di nuovo", rep.Drop, rep.Base)
	}
	a.logDropReport(rep)
	return nil
}

// logDropReport logs what a check of the drop found.
func (a *app) logDropReport(rep *drop.Report) {
	if rep.OK() {
		a.log.Info("drop checked", "drop", rep.Drop, "folders", rep.Folders)
		return
	}
	for _, p := range rep.Problems() {
		a.log.Warn(p)
	}
}

// watchDrop checks the drop again every dropRecheck until ctx is done, so
// that status and /healthz tell what the drop is now.
func (a *app) watchDrop(ctx context.Context, env *jobs.Env, bg *sync.WaitGroup) {
	bg.Add(1)
	go func() {
		defer bg.Done()
		t := time.NewTicker(dropRecheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rep, err := jobs.VerifyDrop(ctx, env)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("drop check not recorded", "err", err)
				}
				continue
			}
			a.logDropReport(rep)
		}
	}()
}
