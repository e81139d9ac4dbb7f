package sftpdrop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"anprsec/drop/sftpdrop/sftptest"
)

const sshdPath = "/usr/sbin/sshd"

// syncBuffer collects sshd's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// openSSH is a Debian OpenSSH sshd on a loopback port serving only
// internal-sftp, started from Dir/sshd_config.
type openSSH struct {
	Addr     string
	User     string
	Dir      string // temp folder with config and keys
	SFTPRoot string // start folder of internal-sftp (-d)
	HostKeys []ssh.PublicKey
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeHostKey(t testing.TB, file string, priv any) ssh.PublicKey {
	t.Helper()
	blk, err := ssh.MarshalPrivateKey(priv, "anprsec test host")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey()
}

// startOpenSSH starts sshd authorizing clientKey, or skips the test when
// OpenSSH is not installed.
func startOpenSSH(t *testing.T, clientKey ssh.PublicKey) *openSSH {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("OpenSSH server not installed (%s missing): apt-get install openssh-server to run the tests against a real sshd", sshdPath)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// privilege separation folder, normally made by the service unit
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	s := &openSSH{User: u.Username, Dir: dir, SFTPRoot: filepath.Join(dir, "srv")}
	if err := os.Mkdir(s.SFTPRoot, 0o755); err != nil {
		t.Fatal(err)
	}

	// Two host keys: x/crypto/ssh prefers ECDSA to Ed25519, so a client
	// that does not restrict its host key algorithms to those in
	// known_hosts fails against this server when known_hosts lists only
	// the Ed25519 key.
	edKey := sftptest.NewKey(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.HostKeys = []ssh.PublicKey{
		writeHostKey(t, filepath.Join(dir, "ssh_host_ed25519_key"), edKey.Private),
		writeHostKey(t, filepath.Join(dir, "ssh_host_ecdsa_key"), ecKey),
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientKey), 0o644); err != nil {
		t.Fatal(err)
	}

	// The port is picked free and then handed to sshd: another process may
	// take it meanwhile, so a failed start is retried on a new port.
	for attempt := 1; ; attempt++ {
		err := s.launch(t, u.Username)
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("sshd start %d: %v; retrying", attempt, err)
	}
}

// launch writes the config for a free port and starts sshd; it returns
// once sshd greets on that port.
func (s *openSSH) launch(t *testing.T, login string) error {
	dir := s.Dir
	port := freePort(t)
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := strings.Join([]string{
		"ListenAddress 127.0.0.1",
		fmt.Sprintf("Port %d", port),
		"HostKey " + filepath.Join(dir, "ssh_host_ed25519_key"),
		"HostKey " + filepath.Join(dir, "ssh_host_ecdsa_key"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"StrictModes no",
		"UsePAM no",
		"AllowUsers " + login,
		"Subsystem sftp internal-sftp",
		"ForceCommand internal-sftp -d " + s.SFTPRoot,
		"",
	}, "\n")
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sshdPath, "-t", "-f", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s\nconfig:\n%s", err, out, conf)
	}

	log := &syncBuffer{}
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its session children too
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the group this sshd leads
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}

	// Ready when it greets with its version.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-2.0-OpenSSH") {
				break
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("sshd exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("sshd does not answer on %s:\n%s", s.Addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	return nil
}

func TestOpenSSH(t *testing.T) {
	cl := sftptest.NewClient(t)
	srv := startOpenSSH(t, cl.PublicKey())
	disk := filepath.Join(srv.SFTPRoot, "drop")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Address:    srv.Addr,
		User:       srv.User,
		KeyFile:    cl.KeyFile,
		KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKeys[0]), // Ed25519 only
		BasePath:   "drop",                                                                                       // relative to internal-sftp -d
		Timeout:    5 * time.Second,
	}
	d := dial(t, cfg)
	if !d.posix {
		t.Fatal("OpenSSH does not advertise posix-rename@openssh.com?")
	}
	if got, want := d.String(), "sftp://"+srv.User+"@"+srv.Addr+"/~/drop"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	t.Run("round trip", func(t *testing.T) { runRoundTrip(t, d, disk) })

	t.Run("posix-rename replaces an existing file; plain rename does not", func(t *testing.T) {
		ctx := context.Background()
		mustWrite(t, d, "pr/a.csv", []byte("A"))
		mustWrite(t, d, "pr/b.csv", []byte("B"))
		if err := d.client.Rename("drop/pr/a.csv", "drop/pr/b.csv"); err == nil {
			t.Error("OpenSSH's plain SFTP rename replaced an existing file")
		}
		if err := d.Rename(ctx, "pr/a.csv", "pr/b.csv"); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, d, "pr/b.csv"); string(got) != "A" {
			t.Fatalf("got %q", got)
		}
		es, err := d.List(ctx, "pr")
		if err != nil || len(es) != 1 {
			t.Fatalf("List = %v, %v", names(es), err)
		}
	})

	t.Run("known_hosts with only the ECDSA key", func(t *testing.T) {
		c := cfg
		c.KnownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "kh"), srv.Addr, srv.HostKeys[1])
		d2 := dial(t, c)
		if _, err := d2.Stat(context.Background(), "."); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("host key mismatch refused", func(t *testing.T) {
		c := cfg
		c.KnownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "kh"), srv.Addr, sftptest.NewKey(t).PublicKey())
		_, err := Dial(context.Background(), c)
		if !errors.Is(err, ErrHostKeyMismatch) || !strings.Contains(err.Error(), "possible man-in-the-middle") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("unauthorized key refused", func(t *testing.T) {
		c := cfg
		c.KeyFile = sftptest.NewKey(t).WritePrivate(t, filepath.Join(t.TempDir(), "k"), 0o600)
		_, err := Dial(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("err = %v", err)
		}
	})

	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
