// Package softhsmtest makes SoftHSM2 tokens for tests: a SoftHSM2
// configuration of its own (SOFTHSM2_CONF, set for the whole process), a
// fresh token a test, and the PKCS#11 URI of a key in it with its PIN in a
// 0600 file. The module reads its configuration and finds its tokens when
// it is first loaded, so the tokens of the whole process (Tokens of them)
// are made at the first call. Tests skip, with the reason, when SoftHSM2
// (Debian softhsm2) is not installed.
package softhsmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// Modules are where Debian, Fedora and others install the SoftHSM2 module.
var Modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// PIN is the user PIN of every token made here.
const PIN = "246813"

// Tokens is how many tokens one process can have.
const Tokens = 8

var (
	once     sync.Once
	dir      string
	setupErr error
	seq      atomic.Int32
)

// Module returns the path of the SoftHSM2 module, or "".
func Module() string {
	for _, m := range Modules {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	return ""
}

// Token is a fresh SoftHSM2 token.
type Token struct {
	Label   string
	Module  string
	PinFile string
	Conf    string // the SOFTHSM2_CONF of the process
}

// URI is the PKCS#11 URI of the key labelled object in the token.
func (t Token) URI(object string) string {
	return fmt.Sprintf("pkcs11:token=%s;object=%s?module-path=%s&pin-source=file:%s", t.Label, object, t.Module, t.PinFile)
}

// New makes a fresh token (skipping the test when SoftHSM2 or its tool is
// missing). The tokens and the configuration live in one temporary folder
// for the whole process; Cleanup removes it.
func New(tb testing.TB) Token {
	tb.Helper()
	mod := Module()
	util, err := exec.LookPath("softhsm2-util")
	if mod == "" || err != nil {
		tb.Skip("SoftHSM2 is not installed (Debian: apt-get install softhsm2 opensc): skipping the test against a PKCS#11 token")
	}
	once.Do(func() {
		if dir, setupErr = os.MkdirTemp("", "softhsm-"); setupErr != nil {
			return
		}
		tokens := filepath.Join(dir, "tokens")
		if setupErr = os.Mkdir(tokens, 0o700); setupErr != nil {
			return
		}
		conf := filepath.Join(dir, "softhsm2.conf")
		setupErr = os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
		if setupErr == nil {
			setupErr = os.Setenv("SOFTHSM2_CONF", conf)
		}
		for i := 1; i <= Tokens && setupErr == nil; i++ {
			label := fmt.Sprintf("anprsec-test-%d", i)
			out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "13579246").CombinedOutput()
			if err != nil {
				setupErr = fmt.Errorf("softhsm2-util --init-token: %v\n%s", err, out)
				break
			}
			setupErr = os.WriteFile(filepath.Join(dir, label+".pin"), []byte(PIN+"\n"), 0o600)
		}
	})
	if setupErr != nil {
		tb.Fatal(setupErr)
	}
	n := seq.Add(1)
	if n > Tokens {
		tb.Fatalf("softhsmtest: more than %d tokens in one test process", Tokens)
	}
	label := fmt.Sprintf("anprsec-test-%d", n)
	return Token{Label: label, Module: mod, PinFile: filepath.Join(dir, label+".pin"), Conf: os.Getenv("SOFTHSM2_CONF")}
}

// Cleanup removes the folder of the tokens (from TestMain, after the tests).
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
