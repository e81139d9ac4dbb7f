package jobs

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"anprsec/drop"
	"anprsec/drop/sftpdrop"
	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/ingest"
	"anprsec/ingest/richieste"
	"anprsec/secret"
	"anprsec/store"
)

// sftpDrop serves the folder root over a real SSH/SFTP server on loopback
// (sftptest) and returns a connected drop on it. The server's jail (an
// os.Root: no symlink leads out of it) gets the folder, and root becomes a
// symlink to it, so a test still reaches the files by their old path.
func sftpDrop(t testing.TB, root string) drop.Drop {
	t.Helper()
	cl := sftptest.NewClient(t)
	srv := sftptest.Start(t, cl.PublicKey())
	base := filepath.Join(srv.Dir, "base")
	if err := os.Rename(root, base); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, root); err != nil {
		t.Fatal(err)
	}
	d, err := sftpdrop.Dial(context.Background(), sftpdrop.Config{Address: srv.Addr, User: srv.User, KeyFile: cl.KeyFile,
		KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "kh"), srv.Addr, srv.HostKey),
		BasePath:   "/base", Timeout: 10 * time.Second, Keepalive: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestScanRichieste: the comuni whose richieste/ folder holds a file (a
// request, or anything the inbox must refuse) are visited, in ISTAT order,
// plus those with a file whose publication a stop interrupted; a comune
// with only the inbox's own subfolders, or with no richieste/ folder, is
// not. The same on the local drop and over SFTP.
func TestScanRichieste(t *testing.T) {
	for _, over := range []string{"local", "sftp"} {
		t.Run(over, func(t *testing.T) {
			c := newCertEnv(t)
			mk := func(p string, file bool) {
				t.Helper()
				full := filepath.Join(c.root, filepath.FromSlash(p))
				if !file {
					if err := os.MkdirAll(full, 0o755); err != nil {
						t.Fatal(err)
					}
					return
				}
				os.MkdirAll(filepath.Dir(full), 0o755)
				if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			mk("comuni/001001/richieste/esiti", false)          // only the inbox's folders
			mk("comuni/001002/richieste/r.csv", true)           // a request
			mk("comuni/001003/altro", false)                    // no richieste/
			mk("comuni/001004/richieste/note.txt", true)        // to be refused by the inbox
			mk("comuni/001005/richieste/elaborati/x.csv", true) // done
			mk("comuni/001006/richieste", false)                // empty
			mk("comuni/README.txt", true)                       // not a comune
			mk("comuni/.tmp", false)                            // skipped
			// 001007: a file moved to elaborati/ by a run that stopped
			// before recording it: the inbox must finish its publication.
			mk("comuni/001007/richieste/elaborati/y.csv", true)
			if err := c.env.Store.Update(func(tx *store.Tx) error {
				return tx.PutFile(&store.InputFile{SHA256: "ab", Path: "comuni/001007/richieste/y.csv", Kind: richieste.Kind,
					State: store.FileCommitted, Moved: "comuni/001007/richieste/elaborati/y.csv"})
			}); err != nil {
				t.Fatal(err)
			}
			if over == "sftp" {
				c.env.Drop = sftpDrop(t, c.root)
			}
			got, _, errs := scanRichieste(context.Background(), c.env, false)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if want := []string{"001002", "001004", "001007"}; !slices.Equal(got, want) {
				t.Errorf("visited %v, want %v", got, want)
			}
		})
	}
}

// BenchmarkRichiesteScan: finding the comuni with requests among 2,000
// comuni folders (each with richieste/esiti/, as after a first request),
// over a real SFTP server on loopback. Baseline: the listing of earlier
// versions, two listings per comune one after the other (comuni/<ISTAT>,
// then the inbox's own listing of richieste/). On a link with latency the
// gap widens: the baseline pays every round trip in turn.
func BenchmarkRichiesteScan(b *testing.B) {
	const comuni = 2000
	root := b.TempDir()
	for i := range comuni {
		if err := os.MkdirAll(filepath.Join(root, "comuni", fmt.Sprintf("%06d", i), "richieste", "esiti"), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	d := sftpDrop(b, root)
	st, err := store.Open(store.Options{InMemory: true, Key: make([]byte, secret.KeySize)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	env := &Env{Drop: d, Store: st}
	ctx := context.Background()
	b.Run("baseline=sequential-listings", func(b *testing.B) {
		for b.Loop() {
			entries, err := d.List(ctx, "comuni")
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range entries {
				if !e.Dir || ingest.Skipped(e.Name) {
					continue
				}
				if _, err := d.List(ctx, path.Join("comuni", e.Name)); err != nil {
					b.Fatal(err)
				}
				if _, err := d.List(ctx, path.Join("comuni", e.Name, "richieste")); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			if got, _, errs := scanRichieste(ctx, env, false); len(got) != 0 || len(errs) != 0 {
				b.Fatal(got, errs)
			}
		}
	})
}
