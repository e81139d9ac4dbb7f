package main

import (
	"archive/zip"
	"bufio"
	"encoding/pem"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"software.sslmate.com/src/go-pkcs12"
)

// TestPKIScripts runs the stories of testdata/pki/*.txt: a relying party
// finds the CRL and the OCSP responder from a certificate alone and asks
// them with OpenSSL (freeport, waitport, p12cert).
func TestPKIScripts(t *testing.T) {
	p := scriptParams("testdata/pki")
	p.Cmds["freeport"] = cmdFreePort
	p.Cmds["waitport"] = cmdWaitPort
	p.Cmds["p12cert"] = cmdP12Cert
	testscript.Run(t, p)
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
