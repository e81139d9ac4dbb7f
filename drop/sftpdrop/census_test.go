package sftpdrop

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprsec/drop/sftpdrop/sftptest"
	"anprsec/ingest"
	"anprsec/ingest/census"
	"anprsec/istat"
	"anprsec/secret"
	"anprsec/store"
)

// ingestOverSFTP runs the census job's inbox on an SFTP drop whose files
// live in disk: the workbook is read over SFTP, the receipt written and the
// file moved there, exactly as with the local folder.
func ingestOverSFTP(t *testing.T, d *Drop, disk string) {
	t.Helper()
	data, err := os.ReadFile("../../ingest/census/testdata/casi.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(disk, "censimento"), 0o755)
	if err := os.WriteFile(filepath.Join(disk, "censimento", "casi.xlsx"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(disk, "censimento", "casi2.xlsx.part"), data[:100], 0o644)

	st, err := store.Open(store.Options{InMemory: true, Key: bytes.Repeat([]byte{5}, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in := &ingest.Inbox{Drop: d, Store: st, Kind: "ingest-censimento", Dir: "censimento", Exts: []string{".xlsx"},
		MaxSize: 1 << 20, Settle: 0, SpoolDir: t.TempDir(), Now: time.Now}
	g := &census.Ingester{Store: st, Comuni: istat.Default(), ChunkRows: 5, MaxRows: 100, CardPrefix: "SC"}
	stats, err := in.Run(context.Background(), g.Process)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 1 || stats.RowsOK != 5 || stats.RowsRefused != 13 {
		t.Errorf("stats = %+v, want 1 file, 5 rows OK, 13 refused", stats)
	}
	receipt, err := os.ReadFile(filepath.Join(disk, "censimento", "esiti", "casi.xlsx.esito.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(receipt), "\n"); lines != 19 {
		t.Errorf("receipt has %d lines, want 19:\n%s", lines, receipt)
	}
	if _, err := os.Stat(filepath.Join(disk, "censimento", "elaborati", "casi.xlsx")); err != nil {
		t.Errorf("not moved to elaborati/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(disk, "censimento", "casi2.xlsx.part")); err != nil {
		t.Errorf("a .part upload was touched: %v", err)
	}
}

func TestCensusOverSFTPInProcess(t *testing.T) {
	cfg, _, disk := inProcess(t)
	ingestOverSFTP(t, dial(t, cfg), disk)
}

func TestCensusOverOpenSSH(t *testing.T) {
	cl := sftptest.NewClient(t)
	srv := startOpenSSH(t, cl.PublicKey())
	disk := filepath.Join(srv.SFTPRoot, "drop")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Address: srv.Addr, User: srv.User, KeyFile: cl.KeyFile,
		KnownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKeys[0]),
		BasePath:   "drop", Timeout: 5 * time.Second,
	}
	ingestOverSFTP(t, dial(t, cfg), disk)
}
