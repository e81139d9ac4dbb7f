package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	badger "github.com/dgraph-io/badger/v4"
	"github.com/rogpeppe/go-internal/testscript"

	"anprsec/pki/pgp"
	"anprsec/secret"
	"anprsec/store"
)

// TestRegistroScripts runs the stories of testdata/registro/*.txt: the
// published checkpoints of the history against a chain rewritten by a
// holder of the store key (riscrivicatena) and against forged or damaged
// checkpoints (firmaregistro, guastafirma).
func TestRegistroScripts(t *testing.T) {
	p := scriptParams("testdata/registro")
	p.Cmds["riscrivicatena"] = cmdRewriteChain
	p.Cmds["guastafirma"] = cmdDamageSignature
	p.Cmds["firmaregistro"] = cmdClearSign
	testscript.Run(t, p)
}

// riscrivicatena SEQ DETAIL
//
// rewrites the history as whoever holds the store key (var/keys/store.key)
// can, with the store closed: entry SEQ gets DETAIL, and every hash from it
// on, and the head, are recomputed as the store computes them
// (hash = SHA-256(previous hash | JSON body)), so that plain `history
// verify` still finds the chain intact.
func cmdRewriteChain(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: riscrivicatena SEQ DETAIL")
	}
	target, err := strconv.ParseUint(args[0], 10, 64)
	ts.Check(err)
	key, err := secret.ReadKey(ts.MkAbs("var/keys/store.key"))
	ts.Check(err)
	db, err := badger.Open(badger.DefaultOptions(ts.MkAbs("var/data")).WithEncryptionKey(key).WithIndexCacheSize(32 << 20).WithLogger(nil))
	ts.Check(err)
	defer func() { ts.Check(db.Close()) }()
	found := false
	ts.Check(db.Update(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.Prefix = []byte("h/")
		it := txn.NewIterator(opt)
		defer it.Close()
		prev := make([]byte, sha256.Size)
		var seq uint64
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			block, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			var out []byte
			for len(block) > 0 { // prev(32) | hash(32) | length(4) | body
				n := binary.BigEndian.Uint32(block[64:68])
				body := block[68 : 68+n]
				block = block[68+n:]
				seq++
				if seq == target {
					var e store.Entry
					if err := json.Unmarshal(body, &e); err != nil {
						return err
					}
					e.Detail = args[1]
					if body, err = json.Marshal(e); err != nil {
						return err
					}
					found = true
				}
				h := sha256.Sum256(append(append([]byte{}, prev...), body...))
				var l [4]byte
				binary.BigEndian.PutUint32(l[:], uint32(len(body)))
				out = append(append(append(append(out, prev...), h[:]...), l[:]...), body...)
				prev = h[:]
			}
			if err := txn.Set(k, out); err != nil {
				return err
			}
		}
		head, err := json.Marshal(struct {
			Seq  uint64 `json:"seq"`
			Hash []byte `json:"hash"`
		}{seq, prev})
		if err != nil {
			return err
		}
		return txn.Set([]byte("m/hist-head"), head)
	}))
	if !found {
		ts.Fatalf("riscrivicatena: no entry %d", target)
	}
}

// guastafirma IN OUT
//
// copies the checkpoint IN to OUT with one bit of its signature flipped
// (the armor re-encoded, so that only the signature is wrong).
func cmdDamageSignature(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: guastafirma IN OUT")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	i := bytes.Index(data, []byte("-----BEGIN PGP SIGNATURE-----"))
	if i < 0 {
		ts.Fatalf("%s: no signature", args[0])
	}
	block, err := armor.Decode(bytes.NewReader(data[i:]))
	ts.Check(err)
	sig, err := io.ReadAll(block.Body)
	ts.Check(err)
	sig[len(sig)-3] ^= 0x01
	var out bytes.Buffer
	out.Write(data[:i])
	aw, err := armor.EncodeWithChecksumOption(&out, block.Type, nil, false)
	ts.Check(err)
	aw.Write(sig)
	ts.Check(aw.Close())
	out.WriteString("\n")
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), out.Bytes(), 0o644))
}

// firmaregistro SECKEY IN OUT
//
// signs the text of the checkpoint IN again, with the secret key SECKEY,
// into OUT: the same head vouched for by a key that is not the service's.
func cmdClearSign(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: firmaregistro SECKEY IN OUT")
	}
	signer, err := pgp.ReadSecretFile(ts.MkAbs(args[0]))
	ts.Check(err)
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	b, _ := clearsign.Decode(data)
	if b == nil {
		ts.Fatalf("%s: no cleartext-signed message", args[1])
	}
	out, err := pgp.ClearSign(b.Plaintext, signer)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), out, 0o644))
}
