package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"anprsec/pki/pgp"
)

// pgpdecrypt SECKEY SIGNERPUB GLOB OUT
//
// decrypts every file matching GLOB (a card order, or a PGP/MIME .eml:
// the armored block is found in the file) with the secret key SECKEY,
// checks that each is signed by the key in SIGNERPUB, and writes the
// plaintexts, one after the other, to OUT. A plaintext that is a MIME
// entity in quoted-printable (the inner part of a PGP/MIME e-mail) is
// decoded (and its CRLF made LF), so the script can grep its Italian text.
func cmdPGPDecrypt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: pgpdecrypt SECKEY SIGNERPUB GLOB OUT")
	}
	sec, err := pgp.ReadSecretFile(ts.MkAbs(args[0]))
	ts.Check(err)
	signer, err := pgp.ReadPublicFile(ts.MkAbs(args[1]))
	ts.Check(err)
	files, err := filepath.Glob(ts.MkAbs(args[2]))
	ts.Check(err)
	if len(files) == 0 {
		ts.Fatalf("no file matches %s", args[2])
	}
	sort.Strings(files)
	var out bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		ts.Check(err)
		start := bytes.Index(data, []byte("-----BEGIN PGP MESSAGE-----"))
		end := bytes.Index(data, []byte("-----END PGP MESSAGE-----"))
		if start < 0 || end < start {
			ts.Fatalf("%s: no armored OpenPGP message", f)
		}
		plain, by, err := pgp.Decrypt(data[start:end+len("-----END PGP MESSAGE-----")], append(signer, sec))
		if err != nil {
			ts.Fatalf("%s: %v", f, err)
		}
		if pgp.Fingerprint(by) != pgp.Fingerprint(signer[0]) {
			ts.Fatalf("%s: signed by %s, not by %s", f, pgp.Fingerprint(by), args[1])
		}
		if m, err := netmail.ReadMessage(bytes.NewReader(plain)); err == nil && strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			text, err := io.ReadAll(quotedprintable.NewReader(m.Body))
			ts.Check(err)
			plain = bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n"))
		} else if err == nil {
			if mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type")); err == nil && mt == "multipart/mixed" {
				plain = mixedText(ts, m.Body, params["boundary"])
			}
		}
		out.Write(plain)
		out.WriteString("\n")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), out.Bytes(), 0o600))
}

// mixedText is a multipart/mixed entity as a script greps it: the text
// part decoded, then a line "allegato: NAME (N byte)" per attachment.
func mixedText(ts *testscript.TestScript, body io.Reader, boundary string) []byte {
	var out bytes.Buffer
	mr := multipart.NewReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out.Bytes()
		}
		ts.Check(err)
		if p.FileName() == "" {
			text, err := io.ReadAll(quotedprintable.NewReader(p))
			ts.Check(err)
			out.Write(bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n")))
			continue
		}
		data, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		ts.Check(err)
		fmt.Fprintf(&out, "allegato: %s (%d byte)\n", p.FileName(), len(data))
	}
}

// globcp GLOB DEST
//
// copies the one file matching GLOB to DEST (names that hold a date or a
// hash); it fails when GLOB matches no file or more than one.
func cmdGlobCp(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: globcp GLOB DEST")
	}
	m, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(m) != 1 {
		ts.Fatalf("%s matches %d files, want 1: %v", args[0], len(m), m)
	}
	data, err := os.ReadFile(m[0])
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), data, 0o600))
}

// pgpsign SECKEY FILE
//
// writes FILE.asc, an armored detached signature of FILE (type binary) by
// the secret key SECKEY, as a prefettura signs its manifest.
func cmdPGPSign(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: pgpsign SECKEY FILE")
	}
	sec, err := pgp.ReadSecretFile(ts.MkAbs(args[0]))
	ts.Check(err)
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	sig, err := pgp.SignDetached(data, sec)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1])+".asc", sig, 0o644))
}

// lineends lf|crlf SRC DST
//
// writes SRC to DST with its line ends made LF or CRLF, as another program
// saves the same text.
func cmdLineEnds(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 || (args[0] != "lf" && args[0] != "crlf") {
		ts.Fatalf("usage: lineends lf|crlf SRC DST")
	}
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	if args[0] == "crlf" {
		data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), data, 0o644))
}
