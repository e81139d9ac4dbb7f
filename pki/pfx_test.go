package pki

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Known answers of the PKCS#12 KDF (RFC 7292 B.2), from the test suite of
// golang.org/x/crypto/pkcs12 (kept by go-pkcs12): the second makes an
// intermediate block start with a zero byte.
func TestPKCS12KDF(t *testing.T) {
	sesame, _ := bmpString("sesame")
	tests := []struct {
		name           string
		salt, password []byte
		want           string
	}{
		{"3DES key for sesame", bytes.Repeat([]byte{0xff}, 8), append(sesame, 0, 0), "7cd9fd3e2b3be7691a44e3bef0f9ea0fb9b897d4e325d9d1"},
		{"leading zeros", []byte("\xf3\x7e\x05\xb5\x18\x32\x4b\x4b"), []byte{0, 0}, "00f759ff47d14dd03665d5943cb3c4a39a2555c02aed66e1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := hex.EncodeToString(pkcs12KDF(sha1.New, 64, tc.password, tc.salt, 2048, 1, 24))
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	// Output lengths that are not a multiple of the hash size, and SHA-256.
	k := pkcs12KDF(sha256.New, 64, []byte{0, 'a', 0, 0}, []byte("salt"), 3, 3, 70)
	if len(k) != 70 || !bytes.Equal(k[:32], pkcs12KDF(sha256.New, 64, []byte{0, 'a', 0, 0}, []byte("salt"), 3, 3, 32)) {
		t.Fatal("KDF prefix property broken")
	}
}

// p12 makes a workstation P12 with go-pkcs12 alone (no friendlyName) and
// returns it with its certificate.
func libP12(t testing.TB, enc *pkcs12.Encoder, password string) ([]byte, *x509.Certificate, *CA) {
	t.Helper()
	ca := ecCA(t)
	key, cert := issue(t, ca, KeyECDSAP256, testCode)
	der, err := enc.Encode(key, cert, []*x509.Certificate{ca.Cert}, password)
	if err != nil {
		t.Fatal(err)
	}
	return der, cert, ca
}

func TestSetFriendlyName(t *testing.T) {
	const pw = "653B739E"
	for _, enc := range []struct {
		name string
		enc  *pkcs12.Encoder
	}{{"LegacyDES", pkcs12.LegacyDES}, {"Modern2023", pkcs12.Modern2023}} {
		t.Run(enc.name, func(t *testing.T) {
			raw, cert, _ := libP12(t, enc.enc, pw)
			if v := inspectPFX(t, raw, pw); len(v.keyAttrs["friendlyName"]) != 0 {
				t.Fatal("go-pkcs12 now writes a friendlyName: the rewriter may be obsolete")
			}
			once, err := SetFriendlyName(raw, pw, cert.Raw, "first")
			if err != nil {
				t.Fatal(err)
			}
			// Applied again with another name: replaced, not added.
			twice, err := SetFriendlyName(once, pw, cert.Raw, testCode)
			if err != nil {
				t.Fatal(err)
			}
			v := inspectPFX(t, twice, pw)
			want := [][]byte{bmp(t, testCode)}
			if !eqVals(v.keyAttrs["friendlyName"], want) || !eqVals(v.certs[0].attrs["friendlyName"], want) {
				t.Fatalf("friendlyName key %q cert %q, want one %q each", v.keyAttrs["friendlyName"], v.certs[0].attrs["friendlyName"], testCode)
			}
			if len(v.keyAttrs["localKeyId"]) != 1 || len(v.certs[0].attrs["localKeyId"]) != 1 {
				t.Fatal("localKeyId duplicated")
			}
			// Without the certificate: the bag whose localKeyId matches the key's.
			byID, err := SetFriendlyName(raw, pw, nil, testCode)
			if err != nil {
				t.Fatal(err)
			}
			if v := inspectPFX(t, byID, pw); !eqVals(v.certs[0].attrs["friendlyName"], want) || len(v.certs[1].attrs["friendlyName"]) != 0 {
				t.Fatal("without the certificate, the wrong bag was named")
			}

			if _, err := SetFriendlyName(raw, "0000AAAA", cert.Raw, testCode); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("wrong password: %v", err)
			}
			other := ecCA(t)
			_, otherCert := issue(t, other, KeyECDSAP256, testCode)
			if _, err := SetFriendlyName(raw, pw, otherCert.Raw, testCode); err == nil || !strings.Contains(err.Error(), "no bag for the certificate") {
				t.Errorf("certificate not in the file: %v", err)
			}
			if _, err := SetFriendlyName(raw, pw, cert.Raw, ""); err == nil {
				t.Error("empty friendlyName accepted")
			}
			// Every single-byte change is refused, never a panic and never
			// a file that verifies.
			for i := 0; i < len(raw); i += 7 {
				bad := bytes.Clone(raw)
				bad[i] ^= 0x5a
				if _, err := SetFriendlyName(bad, pw, cert.Raw, testCode); err == nil {
					t.Fatalf("byte %d changed: accepted", i)
				}
			}
		})
	}
}

func TestSetFriendlyNameUnsupported(t *testing.T) {
	const pw = "653B739E"
	tests := []struct {
		name    string
		enc     *pkcs12.Encoder
		wantErr string
	}{
		{"RC2 certificates", pkcs12.LegacyRC2, "not supported"},
		{"PBMAC1", pkcs12.Modern2026, "MAC algorithm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, cert, _ := libP12(t, tc.enc, pw)
			if _, err := SetFriendlyName(raw, pw, cert.Raw, testCode); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestLabelBagsWithoutLocalKeyID: a file whose bags carry no localKeyId gets
// the SHA-1 of the certificate on both.
func TestLabelBagsWithoutLocalKeyID(t *testing.T) {
	ca := ecCA(t)
	_, cert := issue(t, ca, KeyECDSAP256, testCode)
	cb, err := asn1.Marshal(certBag{ID: oidX509Cert, Data: cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	parts := []safeContents{
		{bags: []safeBag{{ID: oidCertBag, Value: explicit0(cb)}}},
		{bags: []safeBag{{ID: oidKeyBag, Value: explicit0([]byte{0x30, 0x00})}}},
	}
	if err := labelBags(parts, nil, bmp(t, testCode)); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(cert.Raw)
	for _, b := range []safeBag{parts[0].bags[0], parts[1].bags[0]} {
		a := bagAttrs(t, b)
		if !eqVals(a["localKeyId"], [][]byte{sum[:]}) || !eqVals(a["friendlyName"], [][]byte{bmp(t, testCode)}) {
			t.Errorf("bag %s: attributes %q", b.ID, a)
		}
	}
	// Two keys, or none, are refused.
	two := []safeContents{{bags: append(parts[1].bags, parts[1].bags...)}}
	if err := labelBags(two, nil, bmp(t, testCode)); err == nil {
		t.Error("two key bags accepted")
	}
	if err := labelBags(parts[:1], nil, bmp(t, testCode)); err == nil {
		t.Error("no key bag accepted")
	}
}

// TestSetFriendlyNameOpenSSLFiles: the rewriter (its KDF, ciphers and MAC)
// works on files written by OpenSSL, not only by go-pkcs12, and OpenSSL
// verifies the result.
func TestSetFriendlyNameOpenSSLFiles(t *testing.T) {
	openssl := tool(t, "openssl", "Debian package openssl")
	ca := ecCA(t)
	key, cert := issue(t, ca, KeyRSA2048, testCode)
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "key.pem"), pemBlock("PRIVATE KEY", keyDER))
	writeFile(t, filepath.Join(dir, "cert.pem"), certPEM(cert))
	writeFile(t, filepath.Join(dir, "ca.pem"), certPEM(ca.Cert))
	tests := []struct {
		name string
		args []string
	}{
		{"OpenSSL 3 default (AES-256, SHA-256 MAC)", nil},
		{"3DES, SHA-1 MAC", []string{"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"}},
		{"AES-128 with an old name", []string{"-certpbe", "AES-128-CBC", "-keypbe", "AES-128-CBC", "-name", "old name"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"pkcs12", "-export", "-in", "cert.pem", "-inkey", "key.pem", "-certfile", "ca.pem",
				"-passout", "pass:653B739E", "-out", "in.p12"}, tc.args...)
			mustRun(t, dir, openssl, args...)
			in, err := os.ReadFile(filepath.Join(dir, "in.p12"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := SetFriendlyName(in, "653B739E", nil, testCode)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "out.p12"), out)
			info := mustRun(t, dir, openssl, "pkcs12", "-info", "-nodes", "-in", "out.p12", "-passin", "pass:653B739E")
			if n := strings.Count(info, "friendlyName: "+testCode); n != 2 || strings.Contains(info, "old name") {
				t.Errorf("%d friendlyName lines for %s, want 2 and no old name:\n%s", n, testCode, info)
			}
			if _, _, _, err := pkcs12.DecodeChain(out, "653B739E"); err != nil {
				t.Errorf("go-pkcs12: %v", err)
			}
		})
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
