package sftptest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
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
)

// SSHDPath is where the OpenSSH server is looked for.
const SSHDPath = "/usr/sbin/sshd"

// OpenSSH is a real OpenSSH sshd on a loopback port, serving only
// internal-sftp to the current user, started from Dir/sshd_config.
type OpenSSH struct {
	Addr     string
	User     string
	Dir      string // temporary folder with the config and the keys
	SFTPRoot string // start folder of internal-sftp (-d): relative paths resolve here
	HostKeys []ssh.PublicKey

	t    testing.TB
	mu   sync.Mutex
	stop func() // stops the running sshd; nil when stopped
}

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

// StartOpenSSH starts sshd authorizing clientKey, or skips the test when
// OpenSSH is not installed. It is stopped in t.Cleanup.
func StartOpenSSH(t testing.TB, clientKey ssh.PublicKey) *OpenSSH {
	t.Helper()
	if _, err := os.Stat(SSHDPath); err != nil {
		t.Skipf("OpenSSH server not installed (%s missing): apt-get install openssh-server to run the tests against a real sshd", SSHDPath)
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
	s := &OpenSSH{User: u.Username, Dir: dir, SFTPRoot: filepath.Join(dir, "srv"), t: t}
	if err := os.Mkdir(s.SFTPRoot, 0o755); err != nil {
		t.Fatal(err)
	}

	// Two host keys: x/crypto/ssh prefers ECDSA to Ed25519, so a client
	// that does not restrict its host key algorithms to those in
	// known_hosts fails against this server when known_hosts lists only
	// the Ed25519 key.
	edKey := NewKey(t)
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
		s.Addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		err := s.launch()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("sshd start %d: %v; retrying", attempt, err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the server and every session it runs: its port then refuses
// connections, as a server that went down. Stopping a stopped server does
// nothing.
func (s *OpenSSH) Stop() {
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Restart starts a stopped server again on the same address, with the
// same keys.
func (s *OpenSSH) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	s.t.Fatal(err)
}

// launch writes the config for s.Addr and starts sshd; it returns once
// sshd greets there.
func (s *OpenSSH) launch() error {
	dir := s.Dir
	_, port, _ := net.SplitHostPort(s.Addr)
	conf := strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"Port " + port,
		"HostKey " + filepath.Join(dir, "ssh_host_ed25519_key"),
		"HostKey " + filepath.Join(dir, "ssh_host_ecdsa_key"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"StrictModes no",
		"UsePAM no",
		"AllowUsers " + s.User,
		"Subsystem sftp internal-sftp",
		"ForceCommand internal-sftp -d " + s.SFTPRoot,
		"",
	}, "\n")
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(conf), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(SSHDPath, "-t", "-f", cfgFile).CombinedOutput(); err != nil {
		return fmt.Errorf("sshd -t: %v\n%s\nconfig:\n%s", err, out, conf)
	}

	log := &syncBuffer{}
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its session children too
	if err := cmd.Start(); err != nil {
		return err
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
		if s.t.Failed() {
			s.t.Logf("sshd log:\n%s", log.String())
		}
	}

	// Ready when it greets with its version.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
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
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
	return nil
}
