package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anprsec/drop/sftpdrop/sftptest"
)

// TestWrongBasePathNamedAtStartThenPrepared: against a real OpenSSH
// server, a base path with a typo stops `anprsec run` at start, naming it;
// with the right base path `drop verifica` lists the input folders
// missing, `drop prepara` makes them (once), and status tells.
func TestWrongBasePathNamedAtStartThenPrepared(t *testing.T) {
	site := t.TempDir()
	cfgFile := filepath.Join(site, "anprsec.yaml")
	t.Chdir(t.TempDir())
	mustCLI(t, "--config", cfgFile, "init")
	template, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	cl := sftptest.NewClient(t)
	srv := sftptest.StartOpenSSH(t, cl.PublicKey())
	disk := filepath.Join(srv.SFTPRoot, "drop")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	s := sftpSettings{
		address: srv.Addr, user: srv.User, keyFile: cl.KeyFile,
		knownHosts: sftptest.WriteKnownHosts(t, filepath.Join(cl.Dir, "known_hosts"), srv.Addr, srv.HostKeys...),
		basePath:   "dorp", timeout: "10s",
	}
	writeSFTPConfig(t, cfgFile, template, s)

	stdout, stderr, took, err := runCLI(t, "--config", cfgFile, "run")
	if err == nil || !strings.Contains(err.Error(), "percorso base sbagliato") || !strings.Contains(err.Error(), "/~/dorp") ||
		!strings.Contains(err.Error(), "la cartella non esiste") {
		t.Fatalf("run with base path dorp: err %v after %v\nstdout:\n%s\nstderr:\n%s", err, took, stdout, stderr)
	}
	stdout, _, _, err = runCLI(t, "--config", cfgFile, "drop", "verifica")
	if err == nil || !strings.Contains(stdout, "percorso base sbagliato") || !strings.Contains(stdout, "dorp") {
		t.Errorf("drop verifica with base path dorp: err %v\n%s", err, stdout)
	}
	stdout, _, _, err = runCLI(t, "--config", cfgFile, "drop", "prepara")
	if err == nil || !strings.Contains(err.Error(), "la cartella non esiste") {
		t.Errorf("drop prepara with base path dorp: err %v\n%s", err, stdout)
	}
	if _, err := os.Stat(filepath.Join(srv.SFTPRoot, "dorp")); err == nil {
		t.Error("drop prepara created the wrong base path")
	}

	s.basePath = "drop"
	writeSFTPConfig(t, cfgFile, template, s)
	stdout, _, _, err = runCLI(t, "--config", cfgFile, "drop", "verifica")
	for _, want := range []string{"MANCANTE        censimento/", "MANCANTE        prefetture/058/consegne/", "cartelle di ingresso mancanti"} {
		if err == nil || !strings.Contains(stdout, want) {
			t.Errorf("drop verifica on an empty base path: err %v, stdout lacks %q:\n%s", err, want, stdout)
		}
	}
	if strings.Contains(stdout, "NON SCRIVIBILE") {
		t.Errorf("drop verifica on an empty base path:\n%s", stdout)
	}
	status := mustCLI(t, "--config", cfgFile, "status")
	if !strings.Contains(status, "AVVISO  drop sftp://") || !strings.Contains(status, "cartella di ingresso mancante") {
		t.Errorf("status does not warn of the missing input folders:\n%s", status)
	}

	out := mustCLI(t, "--config", cfgFile, "drop", "prepara")
	if !strings.Contains(out, "creata censimento/") || !strings.Contains(out, "creata prefetture/058/consegne/") || !strings.Contains(out, ": ok, ") {
		t.Errorf("drop prepara:\n%s", out)
	}
	for _, dir := range []string{"censimento", "prefetture/058/consegne"} {
		if fi, err := os.Stat(filepath.Join(disk, dir)); err != nil || !fi.IsDir() {
			t.Errorf("%s on the server: %v", dir, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(disk, "*", ".anprsec-prova*")); len(left) > 0 {
		t.Errorf("probe files left: %v", left)
	}
	out = mustCLI(t, "--config", cfgFile, "drop", "prepara")
	if strings.Contains(out, "creata") || !strings.Contains(out, "nulla da creare") {
		t.Errorf("drop prepara again:\n%s", out)
	}
	out = mustCLI(t, "--config", cfgFile, "drop", "verifica")
	if !strings.Contains(out, ": ok, ") {
		t.Errorf("drop verifica after prepara:\n%s", out)
	}
	status = mustCLI(t, "--config", cfgFile, "status")
	if strings.Contains(status, "AVVISO") || !strings.Contains(status, "ok, ") {
		t.Errorf("status after prepara:\n%s", status)
	}
}
