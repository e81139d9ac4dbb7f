package jobs

import (
	"context"
	"fmt"

	"anprsec/drop"
)

// checkWayOut checks, before a job that publishes generates or commits
// anything, that the drop answers and takes files in every folder dirs
// the job is about to write to (docs/rules.md#drops-and-receipts). When
// it does not, the run fails at once with one error naming the drop and
// the folder, having changed nothing; the next run tries again.
func checkWayOut(ctx context.Context, env *Env, job string, dirs ...string) error {
	fail := func(err error) error {
		return fmt.Errorf("%s: niente generato né registrato: il drop %s non accetta i file in uscita: %w", job, env.Drop, err)
	}
	if err := drop.CheckBase(ctx, env.Drop); err != nil {
		return fail(err)
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if _, err := drop.CheckWritable(ctx, env.Drop, dir); err != nil {
			return fail(fmt.Errorf("%s/: %w", dir, err))
		}
	}
	return nil
}
