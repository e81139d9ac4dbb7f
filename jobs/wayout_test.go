package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/drop/sftpdrop"
	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/store"
)

// overOpenSSH moves the environment's drop onto a real OpenSSH server
// serving the same folder (c.root, by its absolute path), through
// drop.Lazy as the daemon opens it.
func (c *certEnv) overOpenSSH() *sftptest.OpenSSH {
	c.t.Helper()
	cl := sftptest.NewClient(c.t)
	srv := sftptest.StartOpenSSH(c.t, cl.PublicKey())
	cfg := sftpdrop.Config{Address: srv.Addr, User: srv.User, KeyFile: cl.KeyFile,
		KnownHosts: sftptest.WriteKnownHosts(c.t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKeys...),
		BasePath:   c.root, Timeout: 10 * time.Second}
	d := &drop.Lazy{Name: "sftp://" + srv.User + "@" + srv.Addr + c.root,
		Dial: func(ctx context.Context) (drop.Drop, error) { return sftpdrop.Dial(ctx, cfg) }}
	c.t.Cleanup(func() { d.Close() })
	c.fd.Drop = d
	return srv
}

// storeMarks are what any commit of a publishing job changes: every
// change records history; bundles, orders, the CRL and the key pool have
// their own records.
type storeMarks struct {
	History, PendingBundles, PendingOrders, Pool int
	CRL                                          uint64
	Postazioni, Cards                            map[string]string
}

func (c *certEnv) marks() storeMarks {
	c.t.Helper()
	m := storeMarks{Postazioni: map[string]string{}, Cards: map[string]string{}}
	err := c.env.Store.View(func(tx *store.Tx) error {
		var err error
		if m.History, err = tx.Count("h/"); err != nil {
			return err
		}
		b, err := tx.PendingBundles()
		if err != nil {
			return err
		}
		o, err := tx.PendingCardOrders()
		if err != nil {
			return err
		}
		m.PendingBundles, m.PendingOrders = len(b), len(o)
		if m.Pool, err = tx.PoolSize(poolAlg(c.env.Config.PKI.KeyAlgorithm)); err != nil {
			return err
		}
		if crl, err := tx.LastCRL(); err == nil {
			m.CRL = crl.Number
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	for code, p := range c.postazioni() {
		m.Postazioni[code] = string(p.State) + " " + p.Serial
	}
	for serial, sc := range c.cards() {
		m.Cards[serial] = string(sc.State) + " " + sc.Order
	}
	return m
}

// oneWayOutError checks that err is the single error of a run refused
// before any work, naming the job and the server.
func oneWayOutError(t *testing.T, job string, err error, addr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s ran with the server down", job)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Count(msg, job+":") != 1 ||
		!strings.HasPrefix(msg, job+": niente generato né registrato: il drop sftp://") || !strings.Contains(msg, addr) {
		t.Errorf("%s: want one error saying nothing was done and naming the drop, got:\n%s", job, msg)
	}
}

func TestServerDownBeforeCertificatiNothingIssuedThenTheBatchRunsOnce(t *testing.T) {
	c := newCertEnv(t)
	c.census()
	srv := c.overOpenSSH()
	srv.Stop()
	before := c.marks()
	_, err := c.run(certificatiJob)
	oneWayOutError(t, "certificati", err, srv.Addr)
	if after := c.marks(); !reflect.DeepEqual(before, after) {
		t.Errorf("the store changed while the drop was down:\nbefore %+v\nafter  %+v", before, after)
	}
	for code, p := range c.postazioni() {
		if p.State != domain.CertRichiesta || p.Serial != "" {
			t.Errorf("%s is %s (serial %q) after a refused batch", code, p.State, p.Serial)
		}
	}
	if z := c.zips(); len(z) != 0 {
		t.Errorf("bundles written: %v", z)
	}

	srv.Restart()
	counts, err := c.run(certificatiJob)
	if err != nil {
		t.Fatalf("certificati with the server back: %v", err)
	}
	if counts["issued"] != 4 || counts["bundles"] != 1 || len(c.zips()) != 1 {
		t.Errorf("with the server back: counts %v, bundles %v; want 4 issued in 1 bundle", counts, c.zips())
	}
	counts, err = c.run(certificatiJob)
	if err != nil || counts["issued"] != 0 || counts["bundles"] != 0 || len(c.zips()) != 1 {
		t.Errorf("a second batch: err %v, counts %v, bundles %v; want nothing more", err, counts, c.zips())
	}
	for code, p := range c.postazioni() {
		if p.State != domain.CertAttivo {
			t.Errorf("%s is %s, want ATTIVO", code, p.State)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(c.root, "comuni", "058091", "*", drop.ProbeName+"*")); len(left) > 0 {
		t.Errorf("probe files left in the drop: %v", left)
	}
}

func TestServerDownBeforeOrdersCRLAndExportsNothingChanges(t *testing.T) {
	for _, job := range []Job{ordiniJob, crlJob, exportJob} {
		t.Run(job.Name, func(t *testing.T) {
			c := newCertEnv(t)
			c.withPGP()
			c.census()
			srv := c.overOpenSSH()
			srv.Stop()
			before := c.marks()
			_, err := c.run(job)
			oneWayOutError(t, job.Name, err, srv.Addr)
			if after := c.marks(); !reflect.DeepEqual(before, after) {
				t.Errorf("the store changed while the drop was down:\nbefore %+v\nafter  %+v", before, after)
			}
			srv.Restart()
			if _, err := c.run(job); err != nil {
				t.Fatalf("%s with the server back: %v", job.Name, err)
			}
			if after := c.marks(); reflect.DeepEqual(before, after) && job.Name != "export-audit" {
				t.Errorf("%s with the server back changed nothing", job.Name)
			}
		})
	}
}

// A file where the job's folder should be: the CRL is not signed.
func TestCRLFolderThatIsAFileStopsTheCRLBeforeSigning(t *testing.T) {
	c := newCertEnv(t)
	if err := os.WriteFile(filepath.Join(c.root, "crl"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.run(crlJob)
	if err == nil || !strings.Contains(err.Error(), "crl: niente generato né registrato") || !strings.Contains(err.Error(), "crl non è una cartella") {
		t.Fatalf("err = %v", err)
	}
	if m := c.marks(); m.CRL != 0 || m.History != 0 {
		t.Errorf("a CRL was signed or recorded: %+v", m)
	}
}

// probeDrop counts the probe files written through it.
type probeDrop struct {
	drop.Drop
	mu     sync.Mutex
	probes []string
}

func (d *probeDrop) Write(ctx context.Context, name string, r io.Reader) error {
	if strings.Contains(path.Base(name), drop.ProbeName) {
		d.mu.Lock()
		d.probes = append(d.probes, name)
		d.mu.Unlock()
	}
	return d.Drop.Write(ctx, name, r)
}

// TestWayOutProbesEachExistingFolderAndOnceWhereFoldersAreMissing: the
// comuni's certificati/ folders that exist get a probe each, those not yet
// made share the probe of the folder above them that exists, and a folder
// that cannot take files fails the check by its name, the first of the
// list that fails, whatever the others.
func TestWayOutProbesEachExistingFolderAndOnceWhereFoldersAreMissing(t *testing.T) {
	root := t.TempDir()
	local, err := drop.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for i := range 40 {
		dir := fmt.Sprintf("comuni/%06d/certificati", 1001+i)
		if i%2 == 0 {
			if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(dir)), 0o750); err != nil {
				t.Fatal(err)
			}
		}
		dirs = append(dirs, dir, dir) // a folder twice is checked once
	}
	d := &probeDrop{Drop: local}
	env := &Env{Drop: d}
	if err := checkWayOut(context.Background(), env, "certificati", dirs...); err != nil {
		t.Fatal(err)
	}
	// 20 existing folders, and the 20 others share comuni/.anprsec-prova-certificati.
	if len(d.probes) != 21 {
		t.Errorf("%d probes, want 21: %v", len(d.probes), d.probes)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "comuni", "*", "certificati", drop.ProbeName+"*")); len(left) != 0 {
		t.Errorf("probes left behind: %v", left)
	}

	for _, i := range []int{7, 31} { // two comuni whose certificati is a file
		p := filepath.Join(root, "comuni", fmt.Sprintf("%06d", 1001+i))
		if err := os.MkdirAll(p, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "certificati"), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	err = checkWayOut(context.Background(), env, "certificati", dirs...)
	if err == nil || !strings.Contains(err.Error(), "comuni/001008/certificati/") || strings.Contains(err.Error(), "001032") {
		t.Errorf("want the error of comuni/001008/certificati only, got %v", err)
	}
}
