package pki

import (
	"crypto/hmac"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

const fuzzPassword = "653B739E"

// fuzzSeeds are small PFX files of both shapes (a 3DES or AES SafeContents
// with a certificate bag, a plain one with a key bag) with one KDF iteration
// and SHA-1 or SHA-256 MACs. They are built by hand rather than by
// go-pkcs12 (real files are exercised by the unit tests) because the
// fuzzer's minimizer is quadratic in the input size: with 1.2 KB files it
// spends whole runs minimizing.
func fuzzSeeds(f *testing.F) (pfxs, authSafes [][]byte) {
	pwBMP := fuzzPasswordBMP()
	mustMarshal := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	des3 := pkix.AlgorithmIdentifier{Algorithm: oidPBEWithSHAAnd3KeyTripleDESCBC,
		Parameters: asn1.RawValue{FullBytes: mustMarshal(pbeParams{Salt: make([]byte, 8), Iterations: 1})}}
	kdf := mustMarshal(pbkdf2Params{Salt: asn1.RawValue{FullBytes: mustMarshal(make([]byte, 16))}, Iterations: 1,
		PRF: pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue}})
	pbes2 := pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: mustMarshal(pbes2Params{
		KDF:              pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: mustMarshal(make([]byte, 16))}},
	})}}
	for i, alg := range []pkix.AlgorithmIdentifier{des3, pbes2} {
		cb := mustMarshal(certBag{ID: oidX509Cert, Data: []byte("C")})
		certBags := mustMarshal([]safeBag{{ID: oidCertBag, Value: explicit0(cb)}})
		block, iv, err := pbeCipher(alg, fuzzPassword, pwBMP)
		if err != nil {
			f.Fatal(err)
		}
		ed := mustMarshal(encryptedData{EncryptedContentInfo: encryptedContentInfo{ContentType: oidData, ContentEncryptionAlgorithm: alg, EncryptedContent: cbcEncrypt(block, iv, certBags)}})
		keyBags := mustMarshal([]safeBag{{ID: oidKeyBag, Value: explicit0([]byte{0x05, 0x00})}})
		as := mustMarshal([]contentInfo{
			{ContentType: oidEncryptedData, Content: explicit0(ed)},
			{ContentType: oidData, Content: explicit0(mustMarshal(keyBags))},
		})
		pfx := wrapPFX(f, as, []asn1.ObjectIdentifier{oidSHA1, oidSHA256}[i])
		if _, err := SetFriendlyName(pfx, fuzzPassword, nil, testCode); err != nil {
			f.Fatalf("seed %d is refused, the fuzzer would not get past it: %v", i, err)
		}
		authSafes = append(authSafes, as)
		pfxs = append(pfxs, pfx)
	}
	return pfxs, authSafes
}

func fuzzPasswordBMP() []byte {
	pw, _ := bmpString(fuzzPassword)
	return append(pw, 0, 0)
}

// wrapPFX makes a PFX of authSafe with a valid MAC (digest mac, one
// iteration).
func wrapPFX(t testing.TB, authSafe []byte, mac asn1.ObjectIdentifier) []byte {
	pfx := pfxPDU{Version: 3}
	pfx.AuthSafe.ContentType = oidData
	octets, err := asn1.Marshal(authSafe)
	if err != nil {
		t.Fatal(err)
	}
	pfx.AuthSafe.Content = explicit0(octets)
	pfx.MacData = macData{Mac: digestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: mac}}, MacSalt: []byte("saltsalt"), Iterations: 1}
	if pfx.MacData.Mac.Digest, err = pfxMAC(&pfx.MacData, authSafe, fuzzPasswordBMP()); err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(pfx)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// FuzzSetFriendlyName: the rewriter, given any bytes as a PFX, returns an
// error or a PFX that it accepts again; it never panics.
func FuzzSetFriendlyName(f *testing.F) {
	pfxs, _ := fuzzSeeds(f)
	for _, s := range pfxs {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := SetFriendlyName(data, fuzzPassword, nil, testCode)
		if err != nil {
			return
		}
		if _, err := SetFriendlyName(out, fuzzPassword, nil, testCode); err != nil {
			t.Fatalf("accepted a file, then refused its own output: %v", err)
		}
	})
}

// FuzzAuthSafe reaches past the MAC: the fuzzer writes the
// AuthenticatedSafe, the harness wraps it in a PFX with a valid SHA-1 MAC,
// so the SafeContents, bag and attribute parsing and the decryption see
// arbitrary input.
func FuzzAuthSafe(f *testing.F) {
	_, authSafes := fuzzSeeds(f)
	for _, s := range authSafes {
		f.Add(s)
	}
	f.Add([]byte{0x30, 0x00})
	pwBMP := fuzzPasswordBMP()
	f.Fuzz(func(t *testing.T, authSafe []byte) {
		out, err := SetFriendlyName(wrapPFX(t, authSafe, oidSHA1), fuzzPassword, nil, testCode)
		if err != nil {
			return
		}
		// The output's MAC verifies.
		var got pfxPDU
		if err := unmarshalAll(out, &got); err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
		var as []byte
		if err := unmarshalAll(got.AuthSafe.Content.Bytes, &as); err != nil {
			t.Fatal(err)
		}
		mac, err := pfxMAC(&got.MacData, as, pwBMP)
		if err != nil || !hmac.Equal(mac, got.MacData.Mac.Digest) {
			t.Fatalf("output MAC does not verify (%v)", err)
		}
	})
}
