package jobs

import (
	"context"
	"errors"
	"time"

	"anprsec/domain"
	"anprsec/export/audit"
	"anprsec/store"
)

// exportJob writes the audit exports (docs/rules.md#audit), weekly: every comune's user/authorization and workstation lists in
// comuni/<ISTAT>/report/, and the national workbook with the monthly CSVs
// of the period (the previous month and the current one to date) in
// sicurezza/report/. A comune that fails does not stop the others. The
// drop must first take files in every one of those folders (checkWayOut).
var exportJob = Job{
	Name:        "export-audit",
	Description: "scrive per ogni comune l'elenco di utenze e abilitazioni e il report nazionale di sicurezza (xlsx con grafici, csv)",
	Run:         runExport,
}

// NewExporter returns an exporter writing to target, in the drop layout
// unless flat (every file at the target's root).
func NewExporter(env *Env, target audit.Target, flat bool) *audit.Exporter {
	late, _ := LateRule(env) // cards.holidays is checked with the config
	return &audit.Exporter{Store: env.Store, Target: target, Flat: flat, Location: env.Loc, Table: env.Comuni, Late: late}
}

func runExport(ctx context.Context, env *Env, run *Run) error {
	dirs := []string{audit.NationalDir}
	if err := env.Store.View(func(tx *store.Tx) error {
		return tx.Comuni(func(c *domain.Comune) error {
			dirs = append(dirs, audit.ComuneDir(c.ISTAT))
			return nil
		})
	}); err != nil {
		return err
	}
	if err := checkWayOut(ctx, env, "export-audit", dirs...); err != nil {
		return err
	}
	e := NewExporter(env, env.Drop, false)
	res, err := e.Comuni(ctx)
	run.Add("comuni", res.Comuni)
	run.Add("comuni_failed", res.Failed)
	if err != nil {
		return err
	}
	nat, nerr := e.National(ctx, audit.DefaultPeriod(time.Now(), env.Loc))
	// The national figures describe the store (all utenze, the open
	// anomalies, a period's history): values, not events to add up.
	run.Set("utenze", nat.Utenze)
	run.Set("anomalie", nat.Anomalie)
	run.Set("storico", nat.Storico)
	return errors.Join(res.Err, nerr)
}
