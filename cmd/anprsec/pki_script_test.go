package main

import (
	"archive/zip"
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"software.sslmate.com/src/go-pkcs12"

	"anprsec/pki/hsm/softhsmtest"
)

// TestPKIScripts runs the stories of testdata/pki/*.txt: a relying party
// finds the CRL and the OCSP responder from a certificate alone and asks
// them with OpenSSL (freeport, waitport, p12cert); the CA key lives in a
// SoftHSM2 token (softhsm).
func TestPKIScripts(t *testing.T) {
	p := scriptParams("testdata/pki")
	p.Cmds["freeport"] = cmdFreePort
	p.Cmds["waitport"] = cmdWaitPort
	p.Cmds["p12cert"] = cmdP12Cert
	p.Cmds["softhsm"] = cmdSoftHSM
	p.Cmds["p12file"] = cmdP12File
	p.Cmds["certserial"] = cmdCertSerial
	p.Condition = func(cond string) (bool, error) {
		if cond != "softhsm" {
			return false, fmt.Errorf("unknown condition %q", cond)
		}
		_, err := exec.LookPath("softhsm2-util")
		return softhsmtest.Module() != "" && err == nil, nil
	}
	testscript.Run(t, p)
}

// softhsm LABEL
//
// makes a SoftHSM2 token LABEL in $WORK/softhsm (its own SOFTHSM2_CONF, set
// for the commands that follow), its user PIN in $WORK/hsm.pin (0600), and
// sets MODULE (the SoftHSM2 library) and PIN. A script that uses it starts
// with "[!softhsm] skip": the condition softhsm holds when SoftHSM2 is
// installed.
func cmdSoftHSM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: softhsm LABEL")
	}
	mod := softhsmtest.Module()
	util, err := exec.LookPath("softhsm2-util")
	if mod == "" || err != nil {
		ts.Fatalf("SoftHSM2 is not installed (Debian: apt-get install softhsm2 opensc); guard the script with [!softhsm] skip")
	}
	dir := ts.MkAbs("softhsm")
	ts.Check(os.MkdirAll(filepath.Join(dir, "tokens"), 0o700))
	conf := filepath.Join(dir, "softhsm2.conf")
	ts.Check(os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600))
	cmd := exec.Command(util, "--init-token", "--free", "--label", args[0], "--pin", softhsmtest.PIN, "--so-pin", "13579246")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		ts.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	ts.Check(os.WriteFile(ts.MkAbs("hsm.pin"), []byte(softhsmtest.PIN+"\n"), 0o600))
	ts.Setenv("SOFTHSM2_CONF", conf)
	ts.Setenv("MODULE", mod)
	ts.Setenv("PIN", softhsmtest.PIN)
}

// A build without cgo cannot load a PKCS#11 module: `init --hsm` and every
// command that runs jobs say so, naming the remedy, instead of failing on
// a missing key.
func TestBuildWithoutCgoSaysItCannotUseTheHSM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds anprsec with CGO_ENABLED=0 (about 40 s the first time)")
	}
	bin := filepath.Join(t.TempDir(), "anprsec-nocgo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build with CGO_ENABLED=0: %v\n%s", err, out)
	}
	dir := t.TempDir()
	pin := filepath.Join(dir, "hsm.pin")
	os.WriteFile(pin, []byte("1234\n"), 0o600)
	uri := "pkcs11:token=anprsec;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:" + pin
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), devCABitsEnv+"=2048")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("anprsec %s succeeded:\n%s", strings.Join(args, " "), out)
		}
		return string(out)
	}
	const want = "compilato senza cgo (CGO_ENABLED=0) e non può caricare un modulo PKCS#11: compilarlo con cgo"
	if out := run("init", "--hsm", uri); !strings.Contains(out, want) {
		t.Errorf("init --hsm:\n%s", out)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "anprsec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "anprsec.yaml"), []byte(strings.Replace(string(cfg), "  ca_key: var/pki/ca.key", "  ca_key: \""+uri+"\"", 1)), 0o640)
	if out := run("jobs", "run", "crl"); !strings.Contains(out, want) || !strings.Contains(out, "pki.ca_key è un URI PKCS#11") {
		t.Errorf("jobs run crl with pki.ca_key a PKCS#11 URI:\n%s", out)
	}
}

// freeport VAR
//
// sets VAR to a TCP port of 127.0.0.1 that is free now.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ts.Check(ln.Close())
	ts.Setenv(args[0], strconv.Itoa(port))
}

// waitport HOST:PORT
//
// waits (up to 10 s) until something listens on HOST:PORT.
func cmdWaitPort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitport HOST:PORT")
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", args[0], time.Second); err == nil {
			c.Close()
			return
		}
	}
	ts.Fatalf("waitport %s: nobody listening after 10s", args[0])
}

// p12cert ZIP CODE OUT
//
// opens <CODE>.p12 of a certificate bundle with its password from
// password.txt and writes its certificate to OUT (PEM), as a comune's
// technician would with the P12 and its password.
func cmdP12Cert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: p12cert ZIP CODE OUT")
	}
	zr, err := zip.OpenReader(ts.MkAbs(args[0]))
	ts.Check(err)
	defer zr.Close()
	read := func(name string) []byte {
		f, err := zr.Open(name)
		ts.Check(err)
		defer f.Close()
		b, err := io.ReadAll(f)
		ts.Check(err)
		return b
	}
	var password string
	sc := bufio.NewScanner(strings.NewReader(string(read("password.txt"))))
	for sc.Scan() {
		if code, pw, ok := strings.Cut(sc.Text(), ";"); ok && code == args[1] {
			password = pw
		}
	}
	if password == "" {
		ts.Fatalf("p12cert: %s not in password.txt", args[1])
	}
	_, cert, _, err := pkcs12.DecodeChain(read(args[1]+".p12"), password)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644))
}

// p12file ZIP CODE OUT VAR
//
// writes <CODE>.p12 of a certificate bundle to OUT and sets VAR to its
// password from password.txt, for `openssl pkcs12 -passin env:VAR`.
func cmdP12File(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: p12file ZIP CODE OUT VAR")
	}
	zr, err := zip.OpenReader(ts.MkAbs(args[0]))
	ts.Check(err)
	defer zr.Close()
	read := func(name string) []byte {
		f, err := zr.Open(name)
		ts.Check(err)
		defer f.Close()
		b, err := io.ReadAll(f)
		ts.Check(err)
		return b
	}
	sc := bufio.NewScanner(strings.NewReader(string(read("password.txt"))))
	for sc.Scan() {
		if code, pw, ok := strings.Cut(sc.Text(), ";"); ok && code == args[1] {
			ts.Setenv(args[3], pw)
		}
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), read(args[1]+".p12"), 0o600))
}

// certserial PEM VAR
//
// sets VAR to the serial of the certificate in PEM, in hexadecimal as
// `openssl crl -text` prints it (`openssl ocsp -serial 0x$VAR`).
func cmdCertSerial(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: certserial PEM VAR")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	b, _ := pem.Decode(data)
	if b == nil {
		ts.Fatalf("certserial: no PEM in %s", args[0])
	}
	c, err := x509.ParseCertificate(b.Bytes)
	ts.Check(err)
	ts.Setenv(args[1], fmt.Sprintf("%X", c.SerialNumber))
}
