package main

import (
	"fmt"
	"io"
	"time"
)

// report is the result table (Markdown, as the README carries it).
type report struct {
	when    time.Time
	machine string
	cache   *cache
	results []result
}

func (r report) write(w io.Writer) {
	fmt.Fprintf(w, "\nNational onboarding, %s, %s.\n\n", r.when.Format("2006-01-02 15:04"), r.machine)
	fmt.Fprintln(w, "| stage | job | items | wall | rate | floor | ratio | peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	var total time.Duration
	worst := 0.0
	var peak int64
	for _, s := range r.results {
		total += s.wall
		worst = max(worst, s.ratio())
		peak = max(peak, s.peakKB)
		rate := "—"
		if s.wall > 0 && s.items > 0 {
			rate = fmt.Sprintf("%.0f/s", float64(s.items)/s.wall.Seconds())
		}
		floor, ratio := "—", "—"
		if s.floor > 0 {
			floor, ratio = fmt.Sprintf("%.1f s", s.floor.Seconds()), fmt.Sprintf("%.2f×", s.ratio())
		}
		fmt.Fprintf(w, "| %s | `%s` | %d %s | %.1f s | %s | %s | %s | %d MB |\n", s.stage, s.job, s.items, s.unit, s.wall.Seconds(), rate, floor, ratio, s.peakKB/1024)
	}
	fmt.Fprintf(w, "| **onboarding** | | | **%.1f s** (%.1f min) | | | worst %.2f× | most %d MB |\n", total.Seconds(), total.Minutes(), worst, peak/1024)
	if r.cache != nil {
		fmt.Fprintf(w, "\nKey pool (cached, made apart on %s): %d RSA-2048 keys in %.1f min.\n", r.cache.Made.Format("2006-01-02"), r.cache.PoolKeys, r.cache.PoolTime.Minutes())
	}
	fmt.Fprintln(w, "\nWhat each floor is made of:")
	for _, s := range r.results {
		setup := ""
		if s.setup > 0 {
			setup = fmt.Sprintf(" (input made beforehand in %.1f s)", s.setup.Seconds())
		}
		fmt.Fprintf(w, "- %s%s: %s\n", s.stage, setup, s.floorParts)
	}
}
