package ingest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"anprsec/drop"
	"anprsec/drop/sftpdrop"
	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/istat"
	"anprsec/secret"
	"anprsec/store"
)

// The census inbox over a real OpenSSH server, with drop.settle 20s: the
// partner's uploads are written straight to their final name, with pauses
// shorter than drop.settle and longer than the interval between looks.

const settleOverSSH = 20 * time.Second

// offsetClock is the real clock moved forward by a settable offset: the
// server's mtimes are real, and a test skips drop.settle by advancing it.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

type sshCensus struct {
	t     *testing.T
	srv   *sftptest.OpenSSH
	cl    *sftptest.Client
	kh    string // known_hosts of the server
	disk  string // the drop root on the server's disk
	in    *ingest.Inbox
	ing   *census.Ingester
	clock *offsetClock
	calls int // processor calls
}

func newSSHCensus(t *testing.T) *sshCensus {
	t.Helper()
	cl := sftptest.NewClient(t)
	srv := sftptest.StartOpenSSH(t, cl.PublicKey())
	disk := filepath.Join(srv.SFTPRoot, "drop")
	if err := os.MkdirAll(filepath.Join(disk, "censimento"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{9}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kh := sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKeys...)
	cfg := sftpdrop.Config{Address: srv.Addr, User: srv.User, KeyFile: cl.KeyFile, KnownHosts: kh, BasePath: "drop", Timeout: 10 * time.Second}
	d := &drop.Lazy{Name: "sftp", Dial: func(ctx context.Context) (drop.Drop, error) { return sftpdrop.Dial(ctx, cfg) }}
	t.Cleanup(func() { d.Close() })
	c := &sshCensus{t: t, srv: srv, cl: cl, kh: kh, disk: disk, clock: &offsetClock{}}
	c.in = &ingest.Inbox{Drop: d, Store: st, Kind: "ingest-censimento", Dir: "censimento", Exts: []string{".xlsx"},
		MaxSize: 4 << 20, Settle: settleOverSSH, SpoolDir: t.TempDir(), Now: c.clock.now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c.ing = &census.Ingester{Store: st, Comuni: istat.Default(), ChunkRows: 5, MaxRows: 100, CardPrefix: "SC"}
	return c
}

// look runs the inbox once.
func (c *sshCensus) look() ingest.Stats {
	c.t.Helper()
	st, err := c.in.Run(context.Background(), func(ctx context.Context, f *ingest.File) (ingest.Result, error) {
		c.calls++
		return c.ing.Process(ctx, f)
	})
	if err != nil {
		c.t.Fatalf("look: %v", err)
	}
	return st
}

// untouched fails the test if the inbox read name or wrote any receipt.
func (c *sshCensus) untouched(name, when string) {
	c.t.Helper()
	if c.calls != 0 {
		c.t.Fatalf("%s: %s was read (%d processor calls)", when, name, c.calls)
	}
	if _, err := os.Stat(filepath.Join(c.disk, "censimento", name)); err != nil {
		c.t.Fatalf("%s: %s left the input folder: %v", when, name, err)
	}
	if es, _ := os.ReadDir(filepath.Join(c.disk, "censimento", "esiti")); len(es) > 0 {
		c.t.Fatalf("%s: a receipt was written: %v", when, es)
	}
}

// sftpClient is a plain SFTP client of the server (pkg/sftp over
// x/crypto/ssh), as a partner's program would be.
func (c *sshCensus) sftpClient() *sftp.Client {
	c.t.Helper()
	signer, err := ssh.ParsePrivateKey(mustRead(c.t, c.cl.KeyFile))
	if err != nil {
		c.t.Fatal(err)
	}
	known := map[string]bool{}
	for _, k := range c.srv.HostKeys {
		known[string(k.Marshal())] = true
	}
	conn, err := ssh.Dial("tcp", c.srv.Addr, &ssh.ClientConfig{
		User: c.srv.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if !known[string(key.Marshal())] {
				return fmt.Errorf("unknown host key")
			}
			return nil
		},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	cl, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close(); conn.Close() })
	return cl
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pausedUpload writes data to the drop path name in parts, and during
// the pause after each part looks at the folder three times.
func (c *sshCensus) pausedUpload(name string, data []byte, parts int) {
	c.t.Helper()
	f, err := c.sftpClient().OpenFile("drop/censimento/"+name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		c.t.Fatal(err)
	}
	step := (len(data) + parts - 1) / parts
	for off := 0; off < len(data); off += step {
		if _, err := f.Write(data[off:min(off+step, len(data))]); err != nil {
			c.t.Fatal(err)
		}
		for range 3 {
			time.Sleep(400 * time.Millisecond)
			c.look()
			c.untouched(name, fmt.Sprintf("after %d of %d bytes", min(off+step, len(data)), len(data)))
		}
	}
	if err := f.Close(); err != nil {
		c.t.Fatal(err)
	}
}

func casiWorkbook(t *testing.T) []byte {
	t.Helper()
	return mustRead(t, "census/testdata/casi.xlsx")
}

func TestPausedDirectUploadOverOpenSSHIsReadOnlyWhole(t *testing.T) {
	c := newSSHCensus(t)
	casi := casiWorkbook(t)
	c.pausedUpload("casi.xlsx", casi, 4)
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		c.look()
		c.untouched("casi.xlsx", "just after the upload")
	}
	c.clock.advance(settleOverSSH + 5*time.Second)
	st := c.look()
	if c.calls != 1 || st.Files != 1 || st.RowsOK != 5 || st.RowsRefused != 13 {
		t.Fatalf("the whole workbook, still for drop.settle, was not read as such: calls %d, stats %+v", c.calls, st)
	}
	if got := mustRead(t, filepath.Join(c.disk, "censimento", "elaborati", "casi.xlsx")); !bytes.Equal(got, casi) {
		t.Errorf("elaborati/casi.xlsx is %d bytes, the upload %d", len(got), len(casi))
	}
}

func TestCutUploadOverOpenSSHIsRefusedOnceStillForSettle(t *testing.T) {
	c := newSSHCensus(t)
	casi := casiWorkbook(t)
	c.pausedUpload("tronco.xlsx", casi[:len(casi)/2], 2) // and the client goes away
	c.clock.advance(settleOverSSH / 2)
	c.look()
	c.untouched("tronco.xlsx", "half of drop.settle after the cut")
	c.clock.advance(settleOverSSH)
	st := c.look()
	if c.calls != 1 || st.Refused != 1 {
		t.Fatalf("the cut workbook, still for drop.settle, was not read: calls %d, stats %+v", c.calls, st)
	}
	recs := (&env{t: t, dir: filepath.Join(c.disk, "censimento")}).receipt("tronco.xlsx")
	if len(recs) != 1 || recs[0][3] != "FILE_ILLEGGIBILE" {
		t.Errorf("receipt %q, want one FILE_ILLEGGIBILE line", recs)
	}
	if _, err := os.Stat(filepath.Join(c.disk, "censimento", "scartati", "tronco.xlsx")); err != nil {
		t.Errorf("not moved to scartati/: %v", err)
	}
}

// paddedWorkbook is casi.xlsx with an incompressible part of n bytes
// added, so that a throttled upload takes seconds.
func paddedWorkbook(t *testing.T, n int) []byte {
	t.Helper()
	base := casiWorkbook(t)
	zr, err := zip.NewReader(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, zf := range zr.File {
		if err := zw.Copy(zf); err != nil {
			t.Fatal(err)
		}
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "customXml/pad.bin", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	pad := make([]byte, n)
	rand.Read(pad)
	w.Write(pad)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// The OpenSSH sftp client, throttled (-l), putting the workbook straight
// to its final name, while the inbox looks every 300ms.
func TestThrottledOpenSSHClientUploadIsReadOnlyWhole(t *testing.T) {
	sftpBin, err := exec.LookPath("sftp")
	if err != nil {
		t.Skip("OpenSSH sftp client not installed")
	}
	c := newSSHCensus(t)
	big := paddedWorkbook(t, 512<<10)
	local := filepath.Join(t.TempDir(), "big.xlsx")
	if err := os.WriteFile(local, big, 0o644); err != nil {
		t.Fatal(err)
	}
	batch := filepath.Join(t.TempDir(), "batch")
	os.WriteFile(batch, []byte("put "+local+" drop/censimento/big.xlsx\n"), 0o644)
	port := ""
	_, port, _ = net.SplitHostPort(c.srv.Addr)
	cmd := exec.Command(sftpBin, "-F", "/dev/null", "-b", batch, "-l", "800", "-P", port, "-i", c.cl.KeyFile,
		"-o", "UserKnownHostsFile="+c.kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		c.srv.User+"@127.0.0.1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	looks := 0
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("sftp: %v\n%s", err, out.String())
			}
			break wait
		case <-time.After(300 * time.Millisecond):
		}
		if _, err := os.Stat(filepath.Join(c.disk, "censimento", "big.xlsx")); err != nil {
			continue // not started yet
		}
		c.look()
		c.untouched("big.xlsx", "during the upload")
		looks++
	}
	t.Logf("%d looks during the upload", looks)
	c.look()
	c.untouched("big.xlsx", "just after the upload")
	c.clock.advance(settleOverSSH + 5*time.Second)
	st := c.look()
	if c.calls != 1 || st.Files != 1 || st.RowsOK != 5 {
		t.Fatalf("the whole workbook was not read: calls %d, stats %+v", c.calls, st)
	}
	if got := mustRead(t, filepath.Join(c.disk, "censimento", "elaborati", "big.xlsx")); !bytes.Equal(got, big) {
		t.Errorf("elaborati/big.xlsx is %d bytes, the upload %d", len(got), len(big))
	}
}
