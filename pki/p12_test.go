package pki

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

const testCode = "058091-PC-0001"

// pfxView is what inspectPFX finds in a PFX: its algorithms and the
// attributes of its bags.
type pfxView struct {
	macAlg   asn1.ObjectIdentifier
	macIter  int
	encAlgs  []asn1.ObjectIdentifier // of the encrypted SafeContents and of the shrouded key
	keyAttrs map[string][][]byte     // friendlyName / localKeyId -> values (BMP or octets)
	certs    []certView
}

type certView struct {
	der   []byte
	attrs map[string][][]byte
}

var attrNames = map[string]string{oidFriendlyName.String(): "friendlyName", oidLocalKeyID.String(): "localKeyId"}

func bagAttrs(t testing.TB, b safeBag) map[string][][]byte {
	m := map[string][][]byte{}
	for _, a := range b.Attributes {
		name := attrNames[a.ID.String()]
		if name == "" {
			name = a.ID.String()
		}
		var vals []asn1.RawValue
		rest := a.Value.Bytes
		for len(rest) > 0 {
			var v asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &v); err != nil {
				t.Fatalf("attribute %s: %v", name, err)
			}
			vals = append(vals, v)
		}
		for _, v := range vals {
			m[name] = append(m[name], v.Bytes)
		}
	}
	return m
}

// inspectPFX parses a PFX with the rewriter's own types (after checking its
// MAC with go-pkcs12's decoder, which knows nothing of this package).
func inspectPFX(t testing.TB, der []byte, password string) pfxView {
	t.Helper()
	if _, _, _, err := pkcs12.DecodeChain(der, password); err != nil {
		t.Fatalf("go-pkcs12 cannot decode: %v", err)
	}
	pw, _ := bmpString(password)
	pw = append(pw, 0, 0)
	var pfx pfxPDU
	if err := unmarshalAll(der, &pfx); err != nil {
		t.Fatal(err)
	}
	var authSafe []byte
	if err := unmarshalAll(pfx.AuthSafe.Content.Bytes, &authSafe); err != nil {
		t.Fatal(err)
	}
	var safes []contentInfo
	if err := unmarshalAll(authSafe, &safes); err != nil {
		t.Fatal(err)
	}
	v := pfxView{macAlg: pfx.MacData.Mac.Algorithm.Algorithm, macIter: pfx.MacData.Iterations}
	for _, ci := range safes {
		var plain []byte
		if ci.ContentType.Equal(oidEncryptedData) {
			var ed encryptedData
			if err := unmarshalAll(ci.Content.Bytes, &ed); err != nil {
				t.Fatal(err)
			}
			alg := ed.EncryptedContentInfo.ContentEncryptionAlgorithm
			v.encAlgs = append(v.encAlgs, alg.Algorithm)
			var err error
			if plain, err = pbeDecrypt(alg, ed.EncryptedContentInfo.EncryptedContent, password, pw); err != nil {
				t.Fatal(err)
			}
		} else if err := unmarshalAll(ci.Content.Bytes, &plain); err != nil {
			t.Fatal(err)
		}
		var bags []safeBag
		if err := unmarshalAll(plain, &bags); err != nil {
			t.Fatal(err)
		}
		for _, b := range bags {
			switch {
			case b.ID.Equal(oidShroudedKeyBag):
				var info struct {
					Alg struct {
						Algorithm  asn1.ObjectIdentifier
						Parameters asn1.RawValue `asn1:"optional"`
					}
					Data []byte
				}
				if err := unmarshalAll(b.Value.Bytes, &info); err != nil {
					t.Fatal(err)
				}
				v.encAlgs = append(v.encAlgs, info.Alg.Algorithm)
				v.keyAttrs = bagAttrs(t, b)
			case b.ID.Equal(oidCertBag):
				var cb certBag
				if err := unmarshalAll(b.Value.Bytes, &cb); err != nil {
					t.Fatal(err)
				}
				v.certs = append(v.certs, certView{der: cb.Data, attrs: bagAttrs(t, b)})
			default:
				t.Fatalf("unexpected bag %s", b.ID)
			}
		}
	}
	return v
}

func bmp(t testing.TB, s string) []byte {
	b, err := bmpString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeP12(t *testing.T) {
	rsaCA, _, _ := devCA(t)
	ec := ecCA(t)
	tests := []struct {
		name     string
		ca       *CA
		keyAlg   string
		encoding string
		macAlg   asn1.ObjectIdentifier
		macIter  int
		encAlg   asn1.ObjectIdentifier
	}{
		{"legacy RSA", rsaCA, KeyRSA2048, EncodingLegacy, oidSHA1, MACIterations, oidPBEWithSHAAnd3KeyTripleDESCBC},
		{"default is legacy", rsaCA, KeyRSA2048, "", oidSHA1, MACIterations, oidPBEWithSHAAnd3KeyTripleDESCBC},
		{"modern RSA", rsaCA, KeyRSA2048, EncodingModern, oidSHA256, 2048, oidPBES2},
		{"legacy EC key, EC CA", ec, KeyECDSAP256, EncodingLegacy, oidSHA1, MACIterations, oidPBEWithSHAAnd3KeyTripleDESCBC},
		{"modern EC key, EC CA", ec, KeyECDSAP256, EncodingModern, oidSHA256, 2048, oidPBES2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, cert := issue(t, tc.ca, tc.keyAlg, testCode)
			pw, err := NewPassword("", 0)
			if err != nil {
				t.Fatal(err)
			}
			der, err := EncodeP12(key, cert, []*x509.Certificate{tc.ca.Cert}, pw, tc.encoding, testCode)
			if err != nil {
				t.Fatal(err)
			}
			gotKey, gotCert, gotCAs, err := pkcs12.DecodeChain(der, pw)
			if err != nil {
				t.Fatalf("go-pkcs12 decode: %v", err)
			}
			if !gotCert.Equal(cert) || len(gotCAs) != 1 || !gotCAs[0].Equal(tc.ca.Cert) {
				t.Fatal("certificates differ after decoding")
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(gotKey.(crypto.Signer).Public()) {
				t.Fatal("key differs after decoding")
			}
			if _, _, _, err := pkcs12.DecodeChain(der, "00000000"); err == nil {
				t.Fatal("decodes with a wrong password")
			}

			v := inspectPFX(t, der, pw)
			if !v.macAlg.Equal(tc.macAlg) || v.macIter != tc.macIter {
				t.Errorf("MAC %s × %d, want %s × %d", v.macAlg, v.macIter, tc.macAlg, tc.macIter)
			}
			for _, a := range v.encAlgs {
				if !a.Equal(tc.encAlg) {
					t.Errorf("encryption %s, want %s", a, tc.encAlg)
				}
			}
			if len(v.encAlgs) != 2 {
				t.Errorf("%d encrypted parts, want 2 (certificates, key)", len(v.encAlgs))
			}
			sum := sha1.Sum(cert.Raw)
			wantName := [][]byte{bmp(t, testCode)}
			wantID := [][]byte{sum[:]}
			if !eqVals(v.keyAttrs["friendlyName"], wantName) || !eqVals(v.keyAttrs["localKeyId"], wantID) || len(v.keyAttrs) != 2 {
				t.Errorf("key bag attributes %q", v.keyAttrs)
			}
			if len(v.certs) != 2 || !bytes.Equal(v.certs[0].der, cert.Raw) || !bytes.Equal(v.certs[1].der, tc.ca.Cert.Raw) {
				t.Fatalf("certificate bags: want the workstation's, then the CA's")
			}
			if a := v.certs[0].attrs; !eqVals(a["friendlyName"], wantName) || !eqVals(a["localKeyId"], wantID) || len(a) != 2 {
				t.Errorf("certificate bag attributes %q", a)
			}
			if len(v.certs[1].attrs) != 0 {
				t.Errorf("CA certificate bag has attributes %q", v.certs[1].attrs)
			}
		})
	}
}

func eqVals(a, b [][]byte) bool {
	return len(a) == len(b) && (len(a) == 0 || bytes.Equal(bytes.Join(a, nil), bytes.Join(b, nil)))
}

func TestEncodeP12Refuses(t *testing.T) {
	ca := ecCA(t)
	key, cert := issue(t, ca, KeyECDSAP256, testCode)
	other, _ := GenerateKey(KeyECDSAP256)
	tests := []struct {
		name     string
		key      crypto.PrivateKey
		cert     *x509.Certificate
		encoding string
		fname    string
		wantErr  string
	}{
		{"unknown encoding", key, cert, "rc2", testCode, "codifica"},
		{"key of another certificate", other, cert, EncodingLegacy, testCode, "non corrisponde"},
		{"no certificate", key, nil, EncodingLegacy, testCode, "manca il certificato"},
		{"not a key", "secret", cert, EncodingLegacy, testCode, "chiave privata di tipo"},
		{"friendlyName outside the BMP", key, cert, EncodingLegacy, "PC-\U0001F600", "Basic Multilingual Plane"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := EncodeP12(tc.key, tc.cert, nil, "653B739E", tc.encoding, tc.fname)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	// An empty friendlyName means the certificate's CN.
	der, err := EncodeP12(key, cert, nil, "653B739E", EncodingModern, "")
	if err != nil {
		t.Fatal(err)
	}
	if v := inspectPFX(t, der, "653B739E"); !eqVals(v.keyAttrs["friendlyName"], [][]byte{bmp(t, testCode)}) {
		t.Errorf("friendlyName %q, want the CN", v.keyAttrs["friendlyName"])
	}
}

// p12Fixture is one workstation P12 written to a folder for the tools.
type p12Fixture struct {
	dir, file, caFile, password string
	cert                        *x509.Certificate
}

func newP12Fixture(t *testing.T, encoding string) p12Fixture {
	t.Helper()
	ca, caPath, _ := devCA(t)
	key, cert := issue(t, ca, KeyRSA2048, testCode)
	pw, err := NewPassword("", 0)
	if err != nil {
		t.Fatal(err)
	}
	der, err := EncodeP12(key, cert, []*x509.Certificate{ca.Cert}, pw, encoding, testCode)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return p12Fixture{dir: dir, file: writeFile(t, filepath.Join(dir, testCode+".p12"), der), caFile: caPath, password: pw, cert: cert}
}

// TestP12OpenSSL: OpenSSL 3 opens both encodings without -legacy, shows the
// friendlyName on the key and on the certificate, verifies the MAC we
// recomputed, and the certificate inside chains to the CA.
func TestP12OpenSSL(t *testing.T) {
	openssl := tool(t, "openssl", "Debian package openssl")
	ver := mustRun(t, "", openssl, "version")
	tests := []struct {
		encoding         string
		wantMAC, wantEnc string
	}{
		{EncodingLegacy, "MAC: sha1, Iteration 2048", "pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048"},
		{EncodingModern, "MAC: sha256, Iteration 2048", "PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256"},
	}
	for _, tc := range tests {
		t.Run(tc.encoding, func(t *testing.T) {
			f := newP12Fixture(t, tc.encoding)
			out := mustRun(t, f.dir, openssl, "pkcs12", "-info", "-nokeys", "-in", f.file, "-passin", "pass:"+f.password)
			for _, want := range []string{tc.wantMAC, tc.wantEnc, "friendlyName: " + testCode, "subject=O = Roma, CN = " + testCode} {
				if !strings.Contains(out, want) {
					t.Errorf("openssl pkcs12 -info (%s) lacks %q:\n%s", strings.TrimSpace(ver), want, out)
				}
			}
			if strings.Contains(out, "Mac verify error") {
				t.Errorf("MAC does not verify:\n%s", out)
			}
			// Key and certificate: two friendlyName lines, one localKeyID
			// shared by both.
			all := mustRun(t, f.dir, openssl, "pkcs12", "-info", "-nodes", "-in", f.file, "-passin", "pass:"+f.password)
			if n := strings.Count(all, "friendlyName: "+testCode); n != 2 {
				t.Errorf("%d friendlyName lines, want 2 (key and certificate):\n%s", n, all)
			}
			ids := regexp.MustCompile(`localKeyID: ([0-9A-F ]+)`).FindAllStringSubmatch(all, -1)
			if len(ids) != 2 || ids[0][1] != ids[1][1] {
				t.Errorf("localKeyID lines %q, want two equal", ids)
			}
			// The certificate inside chains to the CA.
			mustRun(t, f.dir, openssl, "pkcs12", "-in", f.file, "-passin", "pass:"+f.password, "-clcerts", "-nokeys", "-out", "leaf.pem")
			if out := mustRun(t, f.dir, openssl, "verify", "-CAfile", f.caFile, "-purpose", "sslclient", "leaf.pem"); !strings.Contains(out, "leaf.pem: OK") {
				t.Errorf("openssl verify: %s", out)
			}
			// The key inside is the certificate's.
			mustRun(t, f.dir, openssl, "pkcs12", "-in", f.file, "-passin", "pass:"+f.password, "-nocerts", "-nodes", "-out", "key.pem")
			m1 := mustRun(t, f.dir, openssl, "x509", "-noout", "-modulus", "-in", "leaf.pem")
			m2 := mustRun(t, f.dir, openssl, "rsa", "-noout", "-modulus", "-in", "key.pem")
			if m1 != m2 {
				t.Error("the key in the P12 is not the certificate's")
			}
			// A wrong password fails on the MAC.
			out, errs, ok := run(t, f.dir, openssl, "pkcs12", "-info", "-nokeys", "-in", f.file, "-passin", "pass:0000AAAA")
			if ok || !strings.Contains(out+errs, "Mac verify error") {
				t.Errorf("wrong password: exit ok=%v:\n%s%s", ok, out, errs)
			}
		})
	}
}

// TestP12OpenSSLRC2 records why "legacy" is go-pkcs12's LegacyDES and not
// its LegacyRC2 (OpenSSL 1.x's old default): OpenSSL 3 refuses RC2 unless
// given -legacy, which the comuni's operators would have to know.
func TestP12OpenSSLRC2(t *testing.T) {
	openssl := tool(t, "openssl", "Debian package openssl")
	ver := mustRun(t, "", openssl, "version")
	if !strings.HasPrefix(ver, "OpenSSL 3.") {
		t.Skipf("%s: the RC2 restriction is OpenSSL 3's", strings.TrimSpace(ver))
	}
	ca := ecCA(t)
	key, cert := issue(t, ca, KeyRSA2048, testCode)
	der, err := pkcs12.LegacyRC2.Encode(key, cert, []*x509.Certificate{ca.Cert}, "653B739E")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "rc2.p12"), der)
	out, errs, ok := run(t, dir, openssl, "pkcs12", "-info", "-nokeys", "-in", file, "-passin", "pass:653B739E")
	if ok || !strings.Contains(errs, "unsupported") {
		t.Errorf("OpenSSL 3 opened an RC2 file without -legacy (ok=%v):\n%s%s", ok, out, errs)
	}
	if _, errs, ok := run(t, dir, openssl, "pkcs12", "-legacy", "-info", "-nokeys", "-in", file, "-passin", "pass:653B739E"); !ok {
		t.Logf("with -legacy too it fails (no legacy provider installed?):\n%s", errs)
	}
}

// TestP12NSS: NSS lists and imports both encodings, with the nickname.
func TestP12NSS(t *testing.T) {
	pk12util := tool(t, "pk12util", "Debian package libnss3-tools")
	certutil := tool(t, "certutil", "Debian package libnss3-tools")
	for _, enc := range []string{EncodingLegacy, EncodingModern} {
		t.Run(enc, func(t *testing.T) {
			f := newP12Fixture(t, enc)
			out := mustRun(t, f.dir, pk12util, "-l", f.file, "-W", f.password)
			if n := strings.Count(out, "Friendly Name: "+testCode); n != 2 {
				t.Errorf("pk12util -l: %d \"Friendly Name: %s\" lines, want 2 (certificate, key):\n%s", n, testCode, out)
			}
			if !strings.Contains(out, "Certificate(has private key):") {
				t.Errorf("pk12util -l does not pair the key with the certificate:\n%s", out)
			}
			out, errs, ok := run(t, f.dir, pk12util, "-l", f.file, "-W", "0000AAAA")
			if ok || !strings.Contains(out+errs, "SEC_ERROR_BAD_PASSWORD") {
				t.Errorf("wrong password: exit ok=%v:\n%s%s", ok, out, errs)
			}
			db := "sql:" + filepath.Join(f.dir, "nssdb")
			if err := os.Mkdir(filepath.Join(f.dir, "nssdb"), 0o700); err != nil {
				t.Fatal(err)
			}
			mustRun(t, f.dir, certutil, "-N", "-d", db, "--empty-password")
			mustRun(t, f.dir, pk12util, "-i", f.file, "-d", db, "-W", f.password, "-K", "")
			list := mustRun(t, f.dir, certutil, "-L", "-d", db)
			if !regexp.MustCompile(`(?m)^` + testCode + `\s+u,u,u$`).MatchString(list) {
				t.Errorf("certutil -L after pk12util -i: no %s with its key (u,u,u):\n%s", testCode, list)
			}
			keys := mustRun(t, f.dir, certutil, "-K", "-d", db, "-f", "/dev/null")
			if !strings.Contains(keys, testCode) {
				t.Errorf("certutil -K: no key named %s:\n%s", testCode, keys)
			}
		})
	}
}

// TestP12Keytool: Java's keytool shows one PrivateKeyEntry whose alias is
// the code. Java's PKCS12 keystore lowercases aliases (058091-pc-0001) and
// looks them up ignoring case, so -alias 058091-PC-0001 finds it.
func TestP12Keytool(t *testing.T) {
	keytool := tool(t, "keytool", "a Java runtime")
	for _, enc := range []string{EncodingLegacy, EncodingModern} {
		t.Run(enc, func(t *testing.T) {
			f := newP12Fixture(t, enc)
			out := mustRun(t, f.dir, keytool, "-list", "-v", "-storetype", "PKCS12", "-keystore", f.file, "-storepass", f.password)
			for _, want := range []string{
				"Your keystore contains 1 entry",
				"Alias name: " + strings.ToLower(testCode),
				"Entry type: PrivateKeyEntry",
				"Certificate chain length: 2",
				"Owner: CN=" + testCode + ", O=Roma",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("keytool -list -v lacks %q:\n%s", want, out)
				}
			}
			out = mustRun(t, f.dir, keytool, "-list", "-alias", testCode, "-storetype", "PKCS12", "-keystore", f.file, "-storepass", f.password)
			if !strings.Contains(out, "PrivateKeyEntry") {
				t.Errorf("keytool -list -alias %s:\n%s", testCode, out)
			}
			out, errs, ok := run(t, f.dir, keytool, "-list", "-storetype", "PKCS12", "-keystore", f.file, "-storepass", "0000AAAA")
			if ok || !strings.Contains(out+errs, "password was incorrect") {
				t.Errorf("wrong password: exit ok=%v:\n%s%s", ok, out, errs)
			}
		})
	}
}
