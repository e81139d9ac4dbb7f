package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/secret"
)

// runCLI runs `anprsec args...` in this process, through a new cobra root
// (the root's app struct holds flags and the loaded config, so a root is
// never reused). It returns stdout, stderr, the error main would print
// before exiting 1, and how long the command took.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, took time.Duration, err error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("anprsec %s panicked: %v", strings.Join(args, " "), r)
			}
		}()
		err = root.ExecuteContext(ctx)
	}()
	return out.String(), errOut.String(), time.Since(start), err
}

// mustCLI runs `anprsec args...` and fails the test if it fails.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, _, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("anprsec %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// sftpSettings are the drop.sftp keys of a config; paths may be relative
// to the config's folder.
type sftpSettings struct {
	address, user, keyFile, knownHosts, basePath, timeout string
}

// writeSFTPConfig writes to file the config template (what `anprsec init`
// wrote) with drop.type sftp, drop.settle 0s and the drop.sftp keys of s,
// as an operator would edit it.
func writeSFTPConfig(t *testing.T, file string, template []byte, s sftpSettings) {
	t.Helper()
	// Only the drop: section is edited (other sections have keys of the
	// same names, e.g. mail.smtp.address and timeout).
	all := string(template)
	start := strings.Index(all, "\ndrop:\n")
	if start < 0 {
		t.Fatal("config template: no drop: section")
	}
	end := start + 1 + regexp.MustCompile(`(?m)^\S`).FindAllStringIndex(all[start+1:], 2)[1][0]
	y := all[start:end]
	for _, kv := range [][2]string{
		{"type", "sftp"}, {"settle", "0s"},
		{"address", fmt.Sprintf("%q", s.address)}, {"user", fmt.Sprintf("%q", s.user)},
		{"key_file", fmt.Sprintf("%q", s.keyFile)}, {"known_hosts", fmt.Sprintf("%q", s.knownHosts)},
		{"base_path", fmt.Sprintf("%q", s.basePath)}, {"timeout", s.timeout},
	} {
		re := regexp.MustCompile(`(?m)^(\s+)` + kv[0] + `:.*$`)
		if n := len(re.FindAllString(y, -1)); n != 1 {
			t.Fatalf("config template: key %s occurs %d times, want 1", kv[0], n)
		}
		y = re.ReplaceAllString(y, "${1}"+kv[0]+": "+kv[1])
	}
	y = all[:start] + y + all[end:]
	if err := os.WriteFile(file, []byte(y), 0o640); err != nil {
		t.Fatal(err)
	}
}

// readReceipt parses a receipt and checks its header.
func readReceipt(t *testing.T, file string) [][]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = ';'
	r.FieldsPerRecord = 5
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s is not a receipt: %v\n%s", file, err, data)
	}
	if len(recs) == 0 || strings.Join(recs[0], ";") != "foglio;riga;esito;codice;messaggio" {
		t.Fatalf("%s: bad header:\n%s", file, data)
	}
	if n := strings.Count(string(data), "\n"); n != len(recs) {
		t.Fatalf("%s: %d lines for %d records", file, n, len(recs))
	}
	return recs
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestSFTPDrop runs the CLI against an in-process SFTP server (package
// sftptest): init, a config switched to drop.type sftp, a census workbook
// dropped on the server and `jobs run ingest-censimento`; then the
// configuration mistakes and network failures an operator meets, each of
// which must fail at once with an error that says what to fix.
func TestSFTPDrop(t *testing.T) {
	casi, err := os.ReadFile("../../ingest/census/testdata/casi.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	site := t.TempDir()
	cfgFile := filepath.Join(site, "anprsec.yaml")
	// Work from elsewhere: the relative paths of the config resolve
	// against its folder, and nothing lands in the source tree.
	t.Chdir(t.TempDir())

	mustCLI(t, "--config", cfgFile, "init")
	template, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}

	cl := sftptest.NewClient(t)
	srv := sftptest.Start(t, cl.PublicKey())
	if err := os.Mkdir(filepath.Join(srv.Dir, "censimento"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The key and known_hosts live by the config, named relative to it.
	if err := os.Mkdir(filepath.Join(site, "sftp"), 0o700); err != nil {
		t.Fatal(err)
	}
	keyFile := cl.Key.WritePrivate(t, filepath.Join(site, "sftp", "id_ed25519"), 0o600)
	sftptest.WriteKnownHosts(t, filepath.Join(site, "sftp", "known_hosts"), srv.Addr, srv.HostKey)
	good := sftpSettings{
		address: srv.Addr, user: srv.User, keyFile: "sftp/id_ed25519", knownHosts: "sftp/known_hosts",
		basePath: "/", timeout: "2s",
	}
	writeSFTPConfig(t, cfgFile, template, good)
	inbox := filepath.Join(srv.Dir, "censimento")
	localInbox := filepath.Join(site, "var", "drop", "censimento") // made by init, before the switch to sftp

	t.Run("census workbook over SFTP", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(inbox, "casi.xlsx"), casi, 0o644); err != nil {
			t.Fatal(err)
		}
		out := mustCLI(t, "--config", cfgFile, "jobs", "run", "ingest-censimento")
		if !regexp.MustCompile(`(?m)^ingest-censimento: ok in \S+ files=1 rows_ok=5 rows_refused=13$`).MatchString(out) {
			t.Errorf("jobs run printed:\n%s", out)
		}
		recs := readReceipt(t, filepath.Join(inbox, "esiti", "casi.xlsx.esito.csv"))
		if len(recs) != 19 {
			t.Errorf("receipt has %d lines, want 19 (header + 16 users + 2 postazioni)", len(recs))
		}
		ok := 0
		for _, r := range recs[1:] {
			if r[2] == "OK" {
				ok++
			}
		}
		if ok != 5 {
			t.Errorf("%d OK lines, want 5", ok)
		}
		moved, err := os.ReadFile(filepath.Join(inbox, "elaborati", "casi.xlsx"))
		if err != nil || !bytes.Equal(moved, casi) {
			t.Errorf("elaborati/casi.xlsx: %v (equal: %v)", err, bytes.Equal(moved, casi))
		}
		if exists(filepath.Join(inbox, "casi.xlsx")) {
			t.Error("casi.xlsx is still in the inbox")
		}
		if es, err := os.ReadDir(localInbox); err != nil || len(es) != 0 {
			t.Errorf("the local drop was touched: %v, %v", es, err)
		}
	})

	t.Run("the same content again is a duplicate", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(inbox, "casi-copia.xlsx"), casi, 0o644); err != nil {
			t.Fatal(err)
		}
		out := mustCLI(t, "--config", cfgFile, "jobs", "run", "ingest-censimento")
		if !strings.Contains(out, "duplicates=1") {
			t.Errorf("jobs run printed:\n%s", out)
		}
		recs := readReceipt(t, filepath.Join(inbox, "esiti", "casi-copia.xlsx.esito.csv"))
		if len(recs) != 2 || recs[1][1] != "0" || recs[1][2] != "SCARTATO" || recs[1][3] != "DUPLICATO" {
			t.Errorf("receipt: %q", recs)
		}
		if !exists(filepath.Join(inbox, "scartati", "casi-copia.xlsx")) || exists(filepath.Join(inbox, "casi-copia.xlsx")) {
			t.Error("casi-copia.xlsx not moved to scartati/")
		}
		mustCLI(t, "--config", cfgFile, "history", "verify")
		hist := mustCLI(t, "--config", cfgFile, "jobs", "history", "ingest-censimento")
		if n := strings.Count(hist, " ok "); n != 2 {
			t.Errorf("jobs history shows %d ok runs, want 2:\n%s", n, hist)
		}
		if n := strings.Count(hist, " manuale  "+operatorActor()+" "); n != 2 {
			t.Errorf("jobs history names the operator %s in %d runs, want 2:\n%s", operatorActor(), n, hist)
		}
	})

	// A port that refuses connections: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	// A server that accepts TCP and never says a word.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	held.Add(1)
	var heldConns []net.Conn
	go func() {
		defer held.Done()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			heldConns = append(heldConns, c)
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		held.Wait()
		for _, c := range heldConns {
			c.Close()
		}
	})
	silentAddr := silent.Addr().String()

	otherHost := sftptest.NewKey(t).PublicKey()
	stranger := sftptest.NewKey(t)
	failures := []struct {
		name string
		// setup adjusts the settings and the files; undo, if set, restores the files.
		setup func(t *testing.T, s *sftpSettings)
		is    error    // errors.Is target of the returned error, when the command fails before any job runs
		msg   []string // substrings of the error or of the failed run's report on stderr
		max   time.Duration
	}{
		{"host key changed", func(t *testing.T, s *sftpSettings) {
			s.knownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "known_hosts"), srv.Addr, otherHost)
		}, nil, []string{"chiave del server", "non corrisponde a known_hosts", "man-in-the-middle", srv.Addr}, time.Second},
		{"host not in known_hosts", func(t *testing.T, s *sftpSettings) {
			s.knownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "known_hosts"), "127.0.0.1:1", srv.HostKey)
		}, nil, []string{"non è in known_hosts", srv.Addr}, time.Second},
		{"no known_hosts file", func(t *testing.T, s *sftpSettings) {
			s.knownHosts = filepath.Join(t.TempDir(), "missing")
		}, nil, []string{"known_hosts", "no such file"}, time.Second},
		{"key file readable by others", func(t *testing.T, s *sftpSettings) {
			if err := os.Chmod(keyFile, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(keyFile, 0o600) })
		}, secret.ErrPermissions, []string{"chmod 600", keyFile}, time.Second},
		{"key not authorized", func(t *testing.T, s *sftpSettings) {
			s.keyFile = stranger.WritePrivate(t, filepath.Join(t.TempDir(), "id_ed25519"), 0o600)
		}, nil, []string{`accesso come "anpr" con la chiave`, "rifiutato"}, time.Second},
		{"wrong user", func(t *testing.T, s *sftpSettings) {
			s.user = "root"
		}, nil, []string{`accesso come "root"`, "rifiutato"}, time.Second},
		{"unreachable address", func(t *testing.T, s *sftpSettings) {
			s.address = closedAddr
			s.knownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "known_hosts"), closedAddr, srv.HostKey)
		}, nil, []string{"drop sftp " + closedAddr, "connection refused"}, time.Second},
		{"server never answers", func(t *testing.T, s *sftpSettings) {
			s.address = silentAddr
			s.knownHosts = sftptest.WriteKnownHosts(t, filepath.Join(t.TempDir(), "known_hosts"), silentAddr, srv.HostKey)
		}, nil, []string{"drop sftp " + silentAddr, "non ha risposto entro 2s"}, 4 * time.Second},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.setup(t, &s)
			writeSFTPConfig(t, cfgFile, template, s)
			t.Cleanup(func() { writeSFTPConfig(t, cfgFile, template, good) })
			stdout, stderr, took, err := runCLI(t, "--config", cfgFile, "jobs", "run", "ingest-censimento")
			t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
			if err == nil {
				t.Fatalf("jobs run succeeded:\n%s", stdout)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			// The SFTP connection is opened by the job (drop.Lazy): a
			// connection failure is a failed run, reported on stderr.
			text := err.Error() + "\n" + stderr
			for _, m := range tc.msg {
				if !strings.Contains(text, m) {
					t.Errorf("error and stderr %q\nlack %q", text, m)
				}
			}
			if took > tc.max {
				t.Errorf("took %v, want at most %v (drop.sftp.timeout is 2s)", took, tc.max)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
				t.Errorf("stderr:\n%s", stderr)
			}
		})
	}

	t.Run("jobs list works while the server is down", func(t *testing.T) {
		s := good
		s.address = closedAddr
		writeSFTPConfig(t, cfgFile, template, s)
		defer writeSFTPConfig(t, cfgFile, template, good)
		out := mustCLI(t, "--config", cfgFile, "jobs", "list")
		if !strings.Contains(out, "ingest-censimento") {
			t.Errorf("jobs list printed:\n%s", out)
		}
	})

	t.Run("after the failures the store and the drop still work", func(t *testing.T) {
		// A failed dial must release the store: otherwise this in-process
		// run would find it "in use by another anprsec process".
		out := mustCLI(t, "--config", cfgFile, "jobs", "run", "ingest-censimento")
		if !regexp.MustCompile(`(?m)^ingest-censimento: ok in \S+$`).MatchString(out) {
			t.Errorf("jobs run printed:\n%s", out)
		}
		// Each connection failure is a recorded run with its reason; the
		// key-permission refusal stops the command before any run.
		hist := mustCLI(t, "--config", cfgFile, "jobs", "history", "ingest-censimento")
		ok := regexp.MustCompile(`(?m) manuale +\S+ +ok `).FindAllString(hist, -1)
		failed := regexp.MustCompile(`(?m) manuale +\S+ +errore .*lettura della cartella censimento: .*sftp`).FindAllString(hist, -1)
		if len(ok) != 3 || len(failed) != len(failures)-1 {
			t.Errorf("jobs history shows %d ok and %d failed runs, want 3 and %d:\n%s", len(ok), len(failed), len(failures)-1, hist)
		}
	})
}
