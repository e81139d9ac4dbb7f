package jobs

import (
	"context"
	"fmt"

	"anprsec/lifecycle"
	"anprsec/store"
)

// PuliziaPersoneActor is the history actor of the pulizia-persone job.
const PuliziaPersoneActor = "pulizia-persone"

// puliziaPersoneBatch bounds the persons (or utenze) erased in one transaction.
const puliziaPersoneBatch = 200

// puliziaPersoneJob erases personal data past its retention (daily by default;
// docs/personal-data.md):
//
//  1. it pseudonymises the history of a store made before pseudonyms, once
//     (store.MigrateHistory);
//  2. it removes the utenze an older anprsec kept as CANCELLATA
//     (utenza.rimossa);
//  3. it erases the persons with no utenza and no card but REVOCATA ones
//     whose last change is older than retention.persona_days
//     (lifecycle.ErasablePersons, persona.cancellata), in transactions of
//     at most 200;
//  4. it purges the store (store.Purge), when anything holding personal
//     data was deleted since the last purge: the old versions of what was
//     deleted, the cancelled utenze included (cancellation deletes them at
//     once), are physically removed.
//
// Each step is a transaction or is idempotent: after a crash anywhere the
// next run finishes the work.
var puliziaPersoneJob = Job{
	Name:        "pulizia-persone",
	Description: "erases the persons past retention.persona_days and the old versions of deleted records (docs/personal-data.md)",
	Run:         runPuliziaPersone,
}

func runPuliziaPersone(ctx context.Context, env *Env, run *Run) error {
	src := store.Source{Actor: PuliziaPersoneActor}
	mig, err := env.Store.MigrateHistory()
	if err != nil {
		return fmt.Errorf("pulizia-persone: %w", err)
	}
	run.Add("voci_pseudonimizzate", int(mig.Entries))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := 0
		err := env.Store.Update(func(tx *store.Tx) error {
			var err error
			n, err = lifecycle.RemoveCancelledUtenze(tx, src, puliziaPersoneBatch)
			return err
		})
		if err != nil {
			return fmt.Errorf("pulizia-persone: %w", err)
		}
		run.Add("utenze_rimosse", n)
		if n < puliziaPersoneBatch {
			break
		}
	}
	days := env.Config.Retention.PersonaDays
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var cfs []string
		err := env.Store.Update(func(tx *store.Tx) error {
			var err error
			cfs, err = lifecycle.ErasablePersons(tx, tx.Now, days, puliziaPersoneBatch)
			if err != nil || len(cfs) == 0 {
				return err
			}
			_, err = lifecycle.ErasePersons(tx, src, days, cfs)
			return err
		})
		if err != nil {
			return fmt.Errorf("pulizia-persone: %w", err)
		}
		run.Add("persone_cancellate", len(cfs))
		if len(cfs) < puliziaPersoneBatch {
			break
		}
	}
	res, err := env.Store.Purge()
	if err != nil {
		return fmt.Errorf("pulizia-persone: %w", err)
	}
	if !res.Done {
		return nil // nothing deleted since the last purge
	}
	run.Set("versioni_residue", res.Left)
	if res.Left > 0 {
		run.Log.Warn("old versions left after the purge (a reader was open); the next run removes them", "left", res.Left)
	}
	return nil
}
