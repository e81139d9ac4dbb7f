// Command bench-italia is the national benchmark (`make bench-italia`;
// README, "Performance"). It builds an Italy-scale site from generated data
// and runs the national onboarding end to end as the jobs run it, each
// stage as its own `anprsec jobs run` process: census, certificates from the
// key pool, card orders, the prefetture's delivery manifests, the comuni's
// signed delivery registrations (the sindaco's, then the ALS's), the PIN
// halves by e-mail to an SMTP server on loopback, and the audit export.
//
// For every stage it prints the wall time, the rate, the stage's floor
// measured in the same run (a bare loop of the work the stage cannot avoid:
// see floors.go) and the ratio, and the process's peak resident memory.
// The site with its key pool and the census workbook are built once and
// kept in a cache (-cache), since generating 40,000 RSA keys takes longer
// than the whole onboarding; their generation is reported apart.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"time"
)

type options struct {
	bin        string // the anprsec executable
	cache      string // where the site with its key pool is kept
	work       string // where the run's site is made ("" = a temporary folder)
	keep       bool   // keep the run's site
	comuni     int    // comuni of the census (0 = all)
	postazioni int    // "Numero postazioni" of every comune
	pool       int    // keys in the cached pool
	sample     int    // certificates of the certificati floor's sample
	out        string // also write the table here
	profiles   string // write each stage's CPU profile in this folder
	skip       string // stages left out, comma-separated
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == spawnFlag {
		spawn(os.Args[2:])
	}
	var o options
	home, _ := os.UserCacheDir()
	flag.StringVar(&o.bin, "bin", "bin/anprsec", "the anprsec executable to measure")
	flag.StringVar(&o.cache, "cache", filepath.Join(home, "anprsec-bench-italia"), "cache of the site with its key pool and of the workbook")
	flag.StringVar(&o.work, "work", "", "folder of the run's site (default: a temporary folder, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's site")
	flag.IntVar(&o.comuni, "comuni", 0, "comuni of the census (0: all 7,904)")
	flag.IntVar(&o.postazioni, "postazioni", 4, "\"Numero postazioni\" of every comune (4: about 39,000 certificates with the servers)")
	flag.IntVar(&o.pool, "pool", 40000, "keys in the cached key pool")
	flag.IntVar(&o.sample, "sample", 3000, "certificates signed by the certificati floor's sample")
	flag.StringVar(&o.out, "out", "", "also write the result table (Markdown) to this file")
	flag.StringVar(&o.skip, "skip", "", "stages left out, comma-separated job names (for trials: the table is then not the whole onboarding)")
	flag.StringVar(&o.profiles, "profiles", "", "write each stage's CPU profile (<n>-<job>.prof) in this folder")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: bench-italia [flags]\n\nThe national end-to-end benchmark of anprsec (README, \"Performance\").\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-italia:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, w io.Writer) error {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (make build first)", err)
	}
	o.bin = bin
	c, err := ensureCache(ctx, o, w)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "anprsec-bench-italia-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintf(w, "site kept in %s\n", work)
	}
	s, err := newSite(ctx, o, c, filepath.Join(work, "site"))
	if err != nil {
		return err
	}
	defer s.close()
	start := time.Now()
	results, err := onboard(ctx, s, w)
	rep := report{
		when:    start,
		machine: fmt.Sprintf("%s/%s, %d cores, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
		cache:   c,
		results: results,
	}
	rep.write(w)
	if o.out != "" {
		f, ferr := os.Create(o.out)
		if ferr == nil {
			rep.write(f)
			ferr = f.Close()
		}
		err = errors.Join(err, ferr)
	}
	return err
}
