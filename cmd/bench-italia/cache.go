package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"anprsec/istat"
)

// cache is the site made once: `anprsec init`, a development key for every
// prefettura, the key pool filled, and the census workbook beside it.
type cache struct {
	dir        string
	Made       time.Time     `json:"made"`
	PoolKeys   int           `json:"pool_keys"`
	PoolTime   time.Duration `json:"pool_time"`
	Prefetture []string      `json:"prefetture"`
}

func (c *cache) site() string     { return filepath.Join(c.dir, "site") }
func (c *cache) workbook() string { return filepath.Join(c.dir, "censimento.xlsx") }

// ensureCache returns the cache of o's scale, making it when missing.
func ensureCache(ctx context.Context, o options, w io.Writer) (*cache, error) {
	dir := filepath.Join(o.cache, fmt.Sprintf("v1-comuni%d-postazioni%d-pool%d", o.comuni, o.postazioni, o.pool))
	c := &cache{dir: dir}
	if data, err := os.ReadFile(filepath.Join(dir, "cache.json")); err == nil {
		if err := json.Unmarshal(data, c); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		fmt.Fprintf(w, "cache %s (made %s: %d keys in %s)\n", dir, c.Made.Format(time.DateTime), c.PoolKeys, c.PoolTime.Round(time.Second))
		return c, nil
	}
	fmt.Fprintf(w, "making the cache %s (once: the key pool takes minutes)\n", dir)
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "site"), 0o700); err != nil {
		return nil, err
	}
	t := &cache{dir: tmp}
	cli := anprsec{bin: o.bin, dir: t.site()}
	if _, err := cli.run(ctx, "init"); err != nil {
		return nil, err
	}
	args := []string{"gen", "censimento", "--out", t.workbook(), "--postazioni", strconv.Itoa(o.postazioni)}
	if o.comuni > 0 {
		// A part of Italy with Italy's utenze per comune.
		args = append(args, "--comuni", strconv.Itoa(o.comuni), "--users", strconv.Itoa(max(1, 100000*o.comuni/7904)))
	}
	if _, err := cli.run(ctx, args...); err != nil {
		return nil, err
	}
	for _, ppp := range prefetture() {
		if _, err := cli.run(ctx, "init", "--prefettura", ppp); err != nil {
			return nil, err
		}
		t.Prefetture = append(t.Prefetture, ppp)
	}
	if err := editConfig(filepath.Join(t.site(), "anprsec.yaml"), map[string]string{
		"  key_pool: ": strconv.Itoa(o.pool),
	}); err != nil {
		return nil, err
	}
	start := time.Now()
	if o.pool > 0 {
		if err := cli.fillPool(ctx, o.pool, w); err != nil {
			return nil, err
		}
	}
	t.PoolTime, t.PoolKeys, t.Made = time.Since(start), o.pool, time.Now()
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "cache.json"), data, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	t.dir = dir
	return t, nil
}

// prefetture lists the prefetture of the embedded table of comuni.
func prefetture() []string {
	t := istat.Default()
	var out []string
	for _, c := range t.All() {
		if p, ok := t.Prefettura(c.ISTAT); ok && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// editConfig sets, in the config file p, the value of each line that
// starts with a key of set (its indentation and name, "  key_pool: "),
// keeping any comment after the value; a key not found is an error.
func editConfig(p string, set map[string]string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	for prefix, v := range set {
		found := false
		for i, l := range lines {
			if !strings.HasPrefix(l, prefix) {
				continue
			}
			comment := ""
			if j := strings.Index(l, " #"); j > 0 {
				comment = "  " + strings.TrimSpace(l[j:])
			}
			lines[i] = prefix + v + comment
			found = true
			break
		}
		if !found {
			return fmt.Errorf("%s: no line %q", p, prefix)
		}
	}
	return os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o600)
}

// anprsec runs the executable in a site's folder (its anprsec.yaml).
type anprsec struct{ bin, dir string }

func (a anprsec) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, a.bin, append([]string{"--config", filepath.Join(a.dir, "anprsec.yaml")}, args...)...)
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "ANPRSEC_CONFIG=")
	return cmd
}

// run runs a command for the set-up and returns its standard output.
func (a anprsec) run(ctx context.Context, args ...string) (string, error) {
	cmd := a.command(ctx, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("anprsec %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), tail(errb.String(), 2000))
	}
	return out.String(), nil
}

// fillPool runs pool-chiavi until the pool holds n keys, printing its
// progress.
func (a anprsec) fillPool(ctx context.Context, n int, w io.Writer) error {
	cmd := a.command(ctx, "jobs", "run", "pool-chiavi")
	stderr, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(stderr)
	last := time.Now()
	for sc.Scan() {
		var l struct {
			Msg  string `json:"msg"`
			Pool int    `json:"pool"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Pool > 0 && time.Since(last) > 30*time.Second {
			fmt.Fprintf(w, "  key pool: %d of %d\n", l.Pool, n)
			last = time.Now()
		}
	}
	return cmd.Wait()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
