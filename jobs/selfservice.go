package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"anprsec/lifecycle"
	"anprsec/store"
)

// RichiesteActor is the history actor of what ingest-richieste publishes
// on its own (the files of the self-service requests).
const RichiesteActor = "ingest-richieste"

// publishSelfService publishes what the self-service requests of the run
// (or of a run a crash stopped) committed (docs/rules.md#self-service):
// every pending certificate bundle (SCARICA_CERTIFICATI; certificati's own
// pending bundles too, the same way it would) and every pending STATO
// report. A file that cannot be written stays pending for the next run.
func publishSelfService(ctx context.Context, env *Env, run *Run) error {
	var bundles, reports []string
	if err := env.Store.View(func(tx *store.Tx) error {
		var err error
		if bundles, err = tx.PendingBundles(); err != nil {
			return err
		}
		reports, err = tx.PendingStatusReports()
		return err
	}); err != nil {
		return err
	}
	var errs []error
	if len(bundles) > 0 {
		if env.Sealer == nil {
			errs = append(errs, errors.New("ingest-richieste: manca la chiave di sigillo (keys.seal): i certificati richiesti non si possono aprire"))
		} else {
			if err := publishBundles(ctx, env, run, bundles, RichiesteActor, "ingest-richieste"); err != nil {
				errs = append(errs, err)
				if ctx.Err() != nil {
					return errors.Join(errs...) // the cancellation is in err
				}
			}
		}
	}
	for _, id := range reports {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := publishStatusReport(ctx, env, id); err != nil {
			errs = append(errs, fmt.Errorf("ingest-richieste: report %s: %w", id, err))
			continue
		}
		run.Add("reports", 1)
	}
	return errors.Join(errs...)
}

// publishStatusReport builds pending STATO report id from the store, writes
// it to the comune's report folder and marks it published. Written again
// after a crash, it has the same names.
func publishStatusReport(ctx context.Context, env *Env, id string) error {
	var r *store.StatusReport
	if err := env.Store.View(func(tx *store.Tx) error {
		var err error
		r, err = tx.StatusReport(id)
		return err
	}); err != nil {
		return err
	}
	if r.State != store.BundlePending {
		return nil
	}
	if err := env.Store.Sync(); err != nil {
		return err
	}
	files, err := NewExporter(env, env.Drop, false).Status(ctx, r.ISTAT, r.Stamp, lifecycle.StatusView{Utenze: r.Utenze, Postazioni: r.Postazioni})
	if err != nil {
		return err
	}
	var names []string
	for _, n := range []string{files.XLSX, files.UsersCSV, files.StationCSV} {
		if n != "" {
			names = append(names, n)
		}
	}
	return env.Store.Update(func(tx *store.Tx) error {
		cur, err := tx.StatusReport(id)
		if err != nil {
			return err
		}
		if cur.State != store.BundlePending {
			return nil
		}
		cur.State, cur.Published, cur.Files = store.BundlePublished, tx.Now, names
		if err := tx.PutStatusReport(cur); err != nil {
			return err
		}
		return tx.Record(store.Source{Actor: RichiesteActor, File: files.XLSX}, "stato.pubblicato", "report", id,
			fmt.Sprintf("stato chiesto da %s: %d utenze, %d postazioni in %s", cur.Operator, files.Utenze, files.Postazioni, strings.Join(names, ", ")))
	})
}
