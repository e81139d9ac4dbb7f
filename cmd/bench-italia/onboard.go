package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"anprsec/ingest/consegne"
	"anprsec/ingest/richieste"
	"anprsec/jobs"
)

// result is one stage's figures.
type result struct {
	stage, job string
	items      int
	unit       string
	wall       time.Duration
	peakKB     int64
	floor      time.Duration  // 0: not measured
	floorParts string         // what the floor is made of, with their times
	setup      time.Duration  // preparing the stage's input, not timed
	note       string         // the job's own line
	counts     map[string]int // the job's counts
	runs       int            // runs of the job
}

func (r result) ratio() float64 {
	if r.floor <= 0 {
		return 0
	}
	return r.wall.Seconds() / r.floor.Seconds()
}

// onboard runs the national onboarding, stage after stage, and returns
// the figures of the stages done (also on error).
func onboard(ctx context.Context, s *site, w io.Writer) ([]result, error) {
	var out []result
	steps := []struct {
		job string
		run func(*site, context.Context) (result, error)
	}{
		{"ingest-censimento", (*site).census},
		{"certificati", (*site).certificati},
		{"ordini-sc", (*site).ordini},
		{"ingest-consegne", (*site).manifests},
		{"ingest-richieste", func(s *site, ctx context.Context) (result, error) { return s.deliveries(ctx, "sindaco") }},
		{"ingest-richieste", func(s *site, ctx context.Context) (result, error) { return s.deliveries(ctx, "ALS") }},
		{"invio-pin", (*site).pins},
		{"export-audit", (*site).export},
	}
	skip := map[string]bool{}
	for _, j := range strings.Split(s.o.skip, ",") {
		skip[strings.TrimSpace(j)] = true
	}
	for _, step := range steps {
		if skip[step.job] {
			continue
		}
		r, err := step.run(s, ctx)
		if r.stage != "" {
			fmt.Fprintf(w, "%-24s %8d %-12s %7.1f s  floor %6.1f s  %5.2f×  %4d MB  %s\n    %s\n", r.stage, r.items, r.unit, r.wall.Seconds(), r.floor.Seconds(), r.ratio(), r.peakKB/1024, r.floorParts, r.note)
			out = append(out, r)
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", r.stage, err)
		}
	}
	return out, nil
}

// stage runs job measuring it, and the write floor of what it committed.
// The drop's files are first made older than drop.settle, as if their
// upload had ended a while ago: the wait for a file to settle is a policy,
// not work.
func (s *site) stage(ctx context.Context, r *result) (writes time.Duration, err error) {
	if err := settle(s.drop()); err != nil {
		return 0, err
	}
	return s.stageRuns(ctx, r, func(map[string]int) bool { return false })
}

// stageRuns is stage running the job again while again says so after a
// run: the figures are the runs' total wall time, highest peak and summed
// counts.
func (s *site) stageRuns(ctx context.Context, r *result, again func(counts map[string]int) bool) (writes time.Duration, err error) {
	v, err := s.version()
	if err != nil {
		return 0, err
	}
	r.counts = map[string]int{}
	for {
		run, err := s.runJob(ctx, r.job)
		r.runs++
		r.wall += run.wall
		r.peakKB = max(r.peakKB, run.peakKB)
		if err != nil {
			return 0, err
		}
		r.note = run.line
		for k, n := range run.counts {
			r.counts[k] += n
		}
		if !again(run.counts) {
			break
		}
	}
	wf, n, size, err := s.writeFloor(v)
	r.floorParts = fmt.Sprintf("writes %.1f s (%d keys, %d MB)", wf.Seconds(), n, size>>20)
	return wf, err
}

func (s *site) census(ctx context.Context) (result, error) {
	r := result{stage: "census", job: "ingest-censimento", unit: "rows"}
	dst := s.drop("censimento", "censimento.xlsx")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return r, err
	}
	if out, err := exec.CommandContext(ctx, "cp", s.cache.workbook(), dst).CombinedOutput(); err != nil {
		return r, fmt.Errorf("cp: %w: %s", err, out)
	}
	wf, err := s.stage(ctx, &r)
	if err != nil {
		return r, err
	}
	scan, rows, err := scanWorkbook(s.cache.workbook())
	if err != nil {
		return r, err
	}
	ex, err := excelizeRows(s.cache.workbook())
	if err != nil {
		return r, err
	}
	r.items, r.floor = rows, scan+wf
	r.floorParts = fmt.Sprintf("scan %.1f s + %s; excelize's bare Rows %.1f s: %.2f×", scan.Seconds(), r.floorParts, ex.Seconds(), r.wall.Seconds()/ex.Seconds())
	return r, nil
}

func (s *site) certificati(ctx context.Context) (result, error) {
	r := result{stage: "certificati (key pool)", job: "certificati", unit: "certificates"}
	// As the schedule runs it: pki.batch_max certificates a run, until a
	// run issues fewer.
	if _, err := s.stageRuns(ctx, &r, func(c map[string]int) bool { return c["issued"] >= s.cfg.PKI.BatchMax }); err != nil {
		return r, err
	}
	r.items = r.countAny("issued")
	per, err := s.certFloor(min(s.o.sample, max(r.items, 1)))
	if err != nil {
		return r, err
	}
	r.floor = per * time.Duration(r.items)
	r.floorParts = fmt.Sprintf("%d runs of pki.batch_max %d; sign+P12 %.0f/s on %d cores (sample %d); %s not in the floor", r.runs, s.cfg.PKI.BatchMax, float64(time.Second)/float64(per), runtime.NumCPU(), min(s.o.sample, max(r.items, 1)), r.floorParts)
	return r, nil
}

func (s *site) ordini(ctx context.Context) (result, error) {
	r := result{stage: "ordini-sc", job: "ordini-sc", unit: "cards"}
	before, err := listFiles(s.drop(jobs.OrdiniDir), "")
	if err != nil {
		return r, err
	}
	wf, err := s.stage(ctx, &r)
	if err != nil {
		return r, err
	}
	after, err := listFiles(s.drop(jobs.OrdiniDir), "")
	if err != nil {
		return r, err
	}
	orders := newFiles(before, after)
	r.items = r.countAny("cards_ordered")
	enc, err := s.orderFloor(orders)
	if err != nil {
		return r, err
	}
	r.floor = enc + wf
	r.floorParts = fmt.Sprintf("encrypt+sign %.1f s (%d orders) + %s", enc.Seconds(), len(orders), r.floorParts)
	return r, nil
}

func (s *site) manifests(ctx context.Context) (result, error) {
	r := result{stage: "manifests", job: "ingest-consegne", unit: "rows"}
	start := time.Now()
	if _, err := s.run(ctx, "gen", "consegne", "--tutte"); err != nil {
		return r, err
	}
	r.setup = time.Since(start)
	var ms []manifest
	files, err := listFiles(s.drop("prefetture"), ".csv")
	if err != nil {
		return r, err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return r, err
		}
		sig, err := os.ReadFile(f + consegne.SignatureSuffix)
		if err != nil {
			return r, err
		}
		ppp := filepath.Base(filepath.Dir(filepath.Dir(f)))
		ms = append(ms, manifest{ppp: ppp, name: filepath.Base(f), data: data, sig: sig})
		r.items += strings.Count(strings.TrimRight(string(data), "\r\n"), "\n")
	}
	wf, err := s.stage(ctx, &r)
	if err != nil {
		return r, err
	}
	read, err := s.manifestFloor(ms)
	if err != nil {
		return r, err
	}
	r.floor = read + wf
	r.floorParts = fmt.Sprintf("read+verify %.1f s (%d files) + %s", read.Seconds(), len(ms), r.floorParts)
	return r, nil
}

func (s *site) deliveries(ctx context.Context, by string) (result, error) {
	r := result{stage: "deliveries (" + by + ")", job: "ingest-richieste", unit: "rows"}
	start := time.Now()
	if _, err := s.run(ctx, "gen", "richieste", "--consegne", "--tutti"); err != nil {
		return r, err
	}
	r.setup = time.Since(start)
	files, err := listFiles(s.drop("comuni"), richieste.EnvelopeExt)
	if err != nil {
		return r, err
	}
	var rs []request
	for _, f := range files {
		if filepath.Base(filepath.Dir(f)) != "richieste" {
			continue
		}
		sig, err := os.ReadFile(f)
		if err != nil {
			return r, err
		}
		rs = append(rs, request{name: filepath.Base(f), sig: sig})
	}
	wf, err := s.stage(ctx, &r)
	if err != nil {
		return r, err
	}
	read, err := s.requestFloor(rs)
	if err != nil {
		return r, err
	}
	r.items = r.countAny("rows_ok")
	r.floor = read + wf
	r.floorParts = fmt.Sprintf("verify+read %.1f s (%d files) + %s", read.Seconds(), len(rs), r.floorParts)
	return r, nil
}

func (s *site) pins(ctx context.Context) (result, error) {
	r := result{stage: "invio-pin", job: "invio-pin", unit: "messages"}
	before := s.smtp.messages.Load()
	wf, err := s.stage(ctx, &r)
	if err != nil {
		return r, err
	}
	r.items = int(s.smtp.messages.Load() - before)
	mf, err := s.mailFloor(ctx, r.items)
	if err != nil {
		return r, err
	}
	r.floor = mf + wf
	r.floorParts = fmt.Sprintf("encrypt+sign+SMTP %.1f s + %s", mf.Seconds(), r.floorParts)
	return r, nil
}

func (s *site) export(ctx context.Context) (result, error) {
	r := result{stage: "export-audit", job: "export-audit", unit: "files"}
	wf, err := s.stage(ctx, &r)
	if err != nil {
		return r, err
	}
	nat, err := listFiles(s.drop("sicurezza", "report"), ".xlsx")
	if err != nil || len(nat) == 0 {
		return r, fmt.Errorf("no national workbook in sicurezza/report: %v", err)
	}
	all, err := listFiles(s.drop("comuni"), "")
	if err != nil {
		return r, err
	}
	var lists []string
	for _, f := range all {
		if filepath.Base(filepath.Dir(f)) == "report" {
			lists = append(lists, f)
		}
	}
	r.items = len(lists) + 1
	ef, err := s.exportFloor(nat[len(nat)-1], lists)
	if err != nil {
		return r, err
	}
	r.floor = ef + wf
	r.floorParts = fmt.Sprintf("StreamWriter+files %.1f s (%d files) + %s", ef.Seconds(), len(lists)+1, r.floorParts)
	return r, nil
}

// settle sets the modification time of every file under dir an hour
// back.
func settle(dir string) error {
	old := time.Now().Add(-time.Hour)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
}

// countAny returns the first of the run's counts named.
func (r result) countAny(names ...string) int {
	for _, n := range names {
		if v, ok := r.counts[n]; ok {
			return v
		}
	}
	return 0
}

// listFiles lists the regular files under dir ending in ext, sorted.
func listFiles(dir, ext string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ext) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// newFiles returns the paths of after not in before.
func newFiles(before, after []string) []string {
	seen := map[string]bool{}
	for _, p := range before {
		seen[p] = true
	}
	var out []string
	for _, p := range after {
		if !seen[p] {
			out = append(out, p)
		}
	}
	return out
}
