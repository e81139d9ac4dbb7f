package jobs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"anprsec/drop"
)

// checkWayOut checks, before a job that publishes generates or commits
// anything, that the drop answers and takes files in every folder dirs
// the job is about to write to (docs/rules.md#drops-and-receipts). When
// it does not, the run fails at once with one error naming the drop and
// the folder, having changed nothing; the next run tries again. The
// folders are looked up and probed wayOutParallel at a time, and folders
// not yet made whose probe would be the same one (drop.WritableProbe) share
// it: the error is that of the first folder of dirs that fails.
func checkWayOut(ctx context.Context, env *Env, job string, dirs ...string) error {
	fail := func(err error) error {
		return fmt.Errorf("%s: niente generato né registrato: il drop %s non accetta i file in uscita: %w", job, env.Drop, err)
	}
	if err := drop.CheckBase(ctx, env.Drop); err != nil {
		return fail(err)
	}
	var list []string
	seen := map[string]bool{}
	for _, dir := range dirs {
		if !seen[dir] {
			seen[dir] = true
			list = append(list, dir)
		}
	}
	ats, probes := make([]string, len(list)), make([]string, len(list))
	errs := make([]error, len(list))
	inParallel(len(list), wayOutParallel, func(i int) {
		ats[i], probes[i], errs[i] = drop.WritableProbe(ctx, env.Drop, list[i])
	})
	owner := make([]int, len(list)) // the folder whose probe checks folder i
	first := map[string]int{}       // probe -> the first folder that needs it
	var todo []int
	for i := range list {
		owner[i] = i
		if errs[i] != nil {
			continue
		}
		if j, ok := first[probes[i]]; ok {
			owner[i] = j
			continue
		}
		first[probes[i]] = i
		todo = append(todo, i)
	}
	inParallel(len(todo), wayOutParallel, func(k int) {
		i := todo[k]
		errs[i] = drop.Probe(ctx, env.Drop, ats[i], probes[i])
	})
	for i, dir := range list {
		if err := errs[owner[i]]; err != nil {
			return fail(fmt.Errorf("%s/: %w", dir, err))
		}
	}
	return nil
}

// wayOutParallel is the most folders checkWayOut looks up or probes at
// once: the drop's round trips overlap (a probe is a write, a sync and a
// removal).
const wayOutParallel = 8

// inParallel calls f(0) … f(n-1), width at a time.
func inParallel(n, width int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(n, width); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}
