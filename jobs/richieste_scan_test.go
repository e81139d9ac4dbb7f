package jobs

import (
	"context"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"anprsec/config"
	"anprsec/drop"
	"anprsec/drop/sftpdrop"
	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/ingest"
	"anprsec/ingest/richieste"
	"anprsec/secret"
	"anprsec/store"
)

// sftpDrop serves the folder root over a real SSH/SFTP server on loopback
// (sftptest) and returns a connected drop on it. The server's jail (an
// os.Root: no symlink leads out of it) gets the folder, and root becomes a
// symlink to it, so a test still reaches the files by their old path.
func sftpDrop(t testing.TB, root string) drop.Drop {
	t.Helper()
	cl := sftptest.NewClient(t)
	srv := sftptest.Start(t, cl.PublicKey())
	base := filepath.Join(srv.Dir, "base")
	if err := os.Rename(root, base); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, root); err != nil {
		t.Fatal(err)
	}
	d, err := sftpdrop.Dial(context.Background(), sftpdrop.Config{Address: srv.Addr, User: srv.User, KeyFile: cl.KeyFile,
		KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "kh"), srv.Addr, srv.HostKey),
		BasePath:   "/base", Timeout: 10 * time.Second, Keepalive: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestScanRichieste: the comuni whose richieste/ folder holds a file (a
// request, or anything the inbox must refuse) are visited, in ISTAT order,
// plus those with a file whose publication a stop interrupted; a comune
// with only the inbox's own subfolders, or with no richieste/ folder, is
// not. The same on the local drop and over SFTP.
func TestScanRichieste(t *testing.T) {
	for _, over := range []string{"local", "sftp"} {
		t.Run(over, func(t *testing.T) {
			c := newCertEnv(t)
			mk := func(p string, file bool) {
				t.Helper()
				full := filepath.Join(c.root, filepath.FromSlash(p))
				if !file {
					if err := os.MkdirAll(full, 0o755); err != nil {
						t.Fatal(err)
					}
					return
				}
				os.MkdirAll(filepath.Dir(full), 0o755)
				if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			mk("comuni/001001/richieste/esiti", false)          // only the inbox's folders
			mk("comuni/001002/richieste/r.csv", true)           // a request
			mk("comuni/001003/altro", false)                    // no richieste/
			mk("comuni/001004/richieste/note.txt", true)        // to be refused by the inbox
			mk("comuni/001005/richieste/elaborati/x.csv", true) // done
			mk("comuni/001006/richieste", false)                // empty
			mk("comuni/README.txt", true)                       // not a comune
			mk("comuni/.tmp", false)                            // skipped
			// 001007: a file moved to elaborati/ by a run that stopped
			// before recording it: the inbox must finish its publication.
			mk("comuni/001007/richieste/elaborati/y.csv", true)
			if err := c.env.Store.Update(func(tx *store.Tx) error {
				return tx.PutFile(&store.InputFile{SHA256: "ab", Path: "comuni/001007/richieste/y.csv", Kind: richieste.Kind,
					State: store.FileCommitted, Moved: "comuni/001007/richieste/elaborati/y.csv"})
			}); err != nil {
				t.Fatal(err)
			}
			if over == "sftp" {
				c.env.Drop = sftpDrop(t, c.root)
			}
			got, _, errs := scanRichieste(context.Background(), c.env, false)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if want := []string{"001002", "001004", "001007"}; !slices.Equal(got, want) {
				t.Errorf("visited %v, want %v", got, want)
			}
		})
	}
}

// BenchmarkRichiesteScan: finding the comuni with requests among 2,000
// comuni folders (each with richieste/esiti/, as after a first request),
// over a real SFTP server on loopback. Baseline: the listing of earlier
// versions, two listings per comune one after the other (comuni/<ISTAT>,
// then the inbox's own listing of richieste/). On a link with latency the
// gap widens: the baseline pays every round trip in turn.
func BenchmarkRichiesteScan(b *testing.B) {
	const comuni = 2000
	root := b.TempDir()
	for i := range comuni {
		if err := os.MkdirAll(filepath.Join(root, "comuni", fmt.Sprintf("%06d", i), "richieste", "esiti"), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	d := sftpDrop(b, root)
	st, err := store.Open(store.Options{InMemory: true, Key: make([]byte, secret.KeySize)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	env := &Env{Drop: d, Store: st, Config: config.Default(b.TempDir())}
	ctx := context.Background()
	b.Run("baseline=sequential-listings", func(b *testing.B) {
		for b.Loop() {
			entries, err := d.List(ctx, "comuni")
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range entries {
				if !e.Dir || ingest.Skipped(e.Name) {
					continue
				}
				if _, err := d.List(ctx, path.Join("comuni", e.Name)); err != nil {
					b.Fatal(err)
				}
				if _, err := d.List(ctx, path.Join("comuni", e.Name, "richieste")); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			if got, _, errs := scanRichieste(ctx, env, true); len(got) != 0 || len(errs) != 0 {
				b.Fatal(got, errs)
			}
		}
	})
}

// BenchmarkRichiesteScanOpenSSH: an idle run of ingest-richieste (no file
// anywhere) over 7,904 comuni folders, each with richieste/esiti/ and all
// quiet, served by a real OpenSSH sshd on loopback, directly and through
// a proxy that delays every chunk 10 ms each way. full lists every
// comune's richieste/ (a run asked by hand, and every run of earlier
// versions); bounded is a scheduled run with richieste.scan_per_run 800.
// It reports the listings (of comuni/ and of the richieste/ folders) and
// the seconds of one run.
func BenchmarkRichiesteScanOpenSSH(b *testing.B) {
	const comuni, perRun = 7904, 800
	cl := sftptest.NewClient(b)
	srv := sftptest.StartOpenSSH(b, cl.PublicKey())
	root := filepath.Join(srv.SFTPRoot, "drop")
	for i := range comuni {
		if err := os.MkdirAll(filepath.Join(root, "comuni", fmt.Sprintf("%06d", i+1), "richieste", "esiti"), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	proxy := delayProxy(b, srv.Addr, 10*time.Millisecond)
	for _, link := range []struct{ name, addr string }{{"direct", srv.Addr}, {"delay=10ms", proxy}} {
		kh := sftptest.WriteKnownHosts(b, filepath.Join(cl.Dir, "known_hosts_"+strings.NewReplacer("=", "", ".", "").Replace(link.name)), link.addr, srv.HostKeys[0])
		d, err := sftpdrop.Dial(context.Background(), sftpdrop.Config{Address: link.addr, User: srv.User, KeyFile: cl.KeyFile,
			KnownHosts: kh, BasePath: "drop", Timeout: 30 * time.Second, Keepalive: -1})
		if err != nil {
			b.Fatal(err)
		}
		// The store's clock runs three days ahead: every comune folder,
		// made just now, is quiet.
		st, err := store.Open(store.Options{InMemory: true, Key: make([]byte, secret.KeySize),
			Now: func() time.Time { return time.Now().Add(72 * time.Hour) }})
		if err != nil {
			b.Fatal(err)
		}
		cfg := config.Default(b.TempDir())
		cfg.Richieste.ScanPerRun = perRun
		env := &Env{Drop: d, Store: st, Config: cfg}
		for _, mode := range []struct {
			name string
			full bool
		}{{"full", true}, {"bounded", false}} {
			b.Run(link.name+"/"+mode.name, func(b *testing.B) {
				listings := 0
				start := time.Now()
				for b.Loop() {
					got, n, errs := scanRichieste(context.Background(), env, mode.full)
					if len(got) != 0 || len(errs) != 0 {
						b.Fatal(got, errs)
					}
					listings += 1 + n
				}
				b.ReportMetric(float64(listings)/float64(b.N), "listings/run")
				b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/run")
			})
		}
		st.Close()
		d.Close()
	}
}

// delayProxy forwards TCP connections to target, delivering every chunk
// read in either direction delay after it was read (a link with that
// one-way latency, without netem), and returns its address.
func delayProxy(b *testing.B, target string, delay time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	pipe := func(dst, src net.Conn) {
		type chunk struct {
			at   time.Time
			data []byte
		}
		q := make(chan chunk, 4096)
		go func() {
			defer close(q)
			for {
				buf := make([]byte, 32<<10)
				n, err := src.Read(buf)
				if n > 0 {
					q <- chunk{time.Now().Add(delay), buf[:n]}
				}
				if err != nil {
					return
				}
			}
		}()
		for c := range q {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.data); err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(t, c)
			go pipe(c, t)
		}
	}()
	return ln.Addr().String()
}
