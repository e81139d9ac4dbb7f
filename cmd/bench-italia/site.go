package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"anprsec/config"
	"anprsec/secret"
	"anprsec/store"
)

// site is the run's copy of the cached site, with an SMTP server on
// loopback that takes every message and keeps none.
type site struct {
	anprsec
	cache *cache
	cfg   *config.Config
	smtp  *sink
	o     options
	runs  int // jobs run so far
}

func newSite(ctx context.Context, o options, c *cache, dir string) (*site, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", c.site(), dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cp -a %s: %w: %s", c.site(), err, out)
	}
	snk, err := startSink()
	if err != nil {
		return nil, err
	}
	s := &site{anprsec: anprsec{bin: o.bin, dir: dir}, cache: c, smtp: snk, o: o}
	// As the daemon runs, with the defaults; the mail goes to the server
	// on loopback.
	// The cached site's configuration was written by the `anprsec init`
	// of its day: the memory limit is the default of the code measured.
	if err := editConfig(filepath.Join(dir, "anprsec.yaml"), map[string]string{
		"memory_limit: ": defaultMemoryLimit(),
		"    tls: ":      "none",
	}); err != nil {
		snk.close()
		return nil, err
	}
	if err := setSMTPAddress(filepath.Join(dir, "anprsec.yaml"), snk.addr); err != nil {
		snk.close()
		return nil, err
	}
	if s.cfg, err = config.Load(filepath.Join(dir, "anprsec.yaml"), true); err != nil {
		snk.close()
		return nil, err
	}
	return s, nil
}

// defaultMemoryLimit is memory_limit in the embedded default
// configuration.
func defaultMemoryLimit() string {
	for _, l := range strings.Split(string(config.DefaultYAML), "\n") {
		if v, ok := strings.CutPrefix(l, "memory_limit: "); ok {
			if i := strings.Index(v, " #"); i >= 0 {
				v = v[:i]
			}
			return strings.TrimSpace(v)
		}
	}
	return "0"
}

// setSMTPAddress points mail.smtp.address at addr.
func setSMTPAddress(p, addr string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	in := false
	for i, l := range lines {
		switch {
		case l == "  smtp:":
			in = true
		case in && strings.HasPrefix(l, "    address:"):
			lines[i] = "    address: \"" + addr + "\""
			return os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o600)
		}
	}
	return fmt.Errorf("%s: no mail.smtp.address line", p)
}

func (s *site) close() { s.smtp.close() }

// openStore opens the site's store in this process (no job runs then).
func (s *site) openStore() (*store.Store, error) {
	key, err := secret.ReadKey(s.cfg.Path(s.cfg.Keys.Store))
	if err != nil {
		return nil, err
	}
	return store.Open(store.Options{Dir: s.cfg.Path(s.cfg.DataDir), Key: key})
}

// drop is the path of a folder of the local drop.
func (s *site) drop(parts ...string) string {
	return filepath.Join(append([]string{s.cfg.Path(s.cfg.Drop.Local)}, parts...)...)
}

// stageRun is one job run as its own process.
type stageRun struct {
	wall   time.Duration
	peakKB int64
	counts map[string]int
	line   string
}

// runJob runs `anprsec jobs run job` and measures it.
func (s *site) runJob(ctx context.Context, job string) (stageRun, error) {
	cmd := s.command(ctx, "jobs", "run", job)
	// Through a small process of our own: a child's peak RSS (ru_maxrss)
	// starts from its parent's at the fork, and this one holds the floors'
	// data.
	self, err := os.Executable()
	if err != nil {
		return stageRun{}, err
	}
	cmd.Args = append([]string{self, spawnFlag}, cmd.Args...)
	cmd.Path = self
	s.runs++
	if s.o.profiles != "" {
		if err := os.MkdirAll(s.o.profiles, 0o755); err != nil {
			return stageRun{}, err
		}
		cmd.Env = append(cmd.Env, "ANPRSEC_CPUPROFILE="+filepath.Join(s.o.profiles, fmt.Sprintf("%d-%s.prof", s.runs, job)))
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	r := stageRun{wall: time.Since(start), counts: map[string]int{}}
	text := out.String()
	if i := strings.LastIndex(text, peakPrefix); i >= 0 {
		fmt.Fscan(strings.NewReader(text[i+len(peakPrefix):]), &r.peakKB)
		text = text[:i]
	}
	r.line = strings.TrimSpace(text)
	if err != nil {
		return r, fmt.Errorf("anprsec jobs run %s: %w\n%s%s", job, err, r.line, tail(errb.String(), 3000))
	}
	// "job: riuscito in 3,2 s a=1 b=2"
	for _, f := range strings.Fields(r.line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				r.counts[k] = n
			}
		}
	}
	return r, nil
}

// spawnFlag makes bench-italia run the rest of its command line as a child
// and print the child's peak RSS (spawn).
const spawnFlag = "-spawn"

const peakPrefix = "\nbench-italia-peak-rss-kB "

// spawn runs args as a child, passing its output through, and prints its
// peak RSS after it (peakPrefix); it exits with the child's status.
func spawn(args []string) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			fmt.Printf("%s%d\n", peakPrefix, ru.Maxrss) // kilobytes on Linux
		}
		os.Exit(cmd.ProcessState.ExitCode())
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// sink is an SMTP server on loopback that counts the messages it takes.
type sink struct {
	addr     string
	srv      *smtp.Server
	ln       net.Listener
	messages atomic.Int64
}

func startSink() (*sink, error) {
	s := &sink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 32 << 20
	srv.MaxRecipients = 100
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr, s.srv, s.ln = ln.Addr().String(), srv, ln
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

func (s *sink) close() { s.srv.Close() }

type sinkSession struct{ s *sink }

func (x *sinkSession) Reset()                               {}
func (x *sinkSession) Logout() error                        { return nil }
func (x *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (x *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	x.s.messages.Add(1)
	return nil
}
