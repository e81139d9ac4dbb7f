package jobs

import (
	"context"
	"path"
	"time"

	"anprsec/domain"
	"anprsec/drop"
	"anprsec/export/audit"
	"anprsec/export/bundle"
	"anprsec/store"
)

// DropReportMeta is the store key of the last check of the drop
// (VerifyDrop): `anprsec status` and /healthz show it.
const DropReportMeta = store.DropReportMeta

// CensusDir is the input folder of the census workbooks.
const CensusDir = "censimento"

// ConsegneDir is the input folder of prefettura ppp's delivery manifests.
func ConsegneDir(ppp string) string { return path.Join("prefetture", ppp, "consegne") }

// RichiesteDir is the input folder of comune istat's console requests.
func RichiesteDir(istat string) string { return path.Join("comuni", istat, "richieste") }

// DropFolders lists every drop folder the jobs read or write
// (docs/rules.md#drops-and-receipts): the input folders partners drop into
// (censimento/, every prefettura's consegne/, every censused comune's
// richieste/), then the folders the jobs publish to (crl/,
// produttore/ordini/, sicurezza/report/, every censused comune's
// certificati/ and report/).
func DropFolders(env *Env) ([]drop.Folder, error) {
	var comuni []string
	if err := env.Store.View(func(tx *store.Tx) error {
		return tx.Comuni(func(c *domain.Comune) error {
			comuni = append(comuni, c.ISTAT)
			return nil
		})
	}); err != nil {
		return nil, err
	}
	out := []drop.Folder{{Path: CensusDir, Input: true}}
	for _, ppp := range env.Comuni.Prefetture() {
		out = append(out, drop.Folder{Path: ConsegneDir(ppp), Input: true})
	}
	for _, istat := range comuni {
		out = append(out, drop.Folder{Path: RichiesteDir(istat), Input: true})
	}
	for _, dir := range []string{path.Dir(CRLFileDER), OrdiniDir, audit.NationalDir} {
		out = append(out, drop.Folder{Path: dir})
	}
	for _, istat := range comuni {
		out = append(out, drop.Folder{Path: path.Dir(bundle.Path(istat, ""))}, drop.Folder{Path: audit.ComuneDir(istat)})
	}
	return out, nil
}

// VerifyDrop checks the drop and every folder of DropFolders (drop.Verify)
// and records the report in the store (DropReportMeta).
func VerifyDrop(ctx context.Context, env *Env) (*drop.Report, error) {
	folders, err := DropFolders(env)
	if err != nil {
		return nil, err
	}
	r := drop.Verify(ctx, env.Drop, folders, time.Now())
	if err := env.Store.Update(func(tx *store.Tx) error { return tx.SetMeta(DropReportMeta, r) }); err != nil {
		return r, err
	}
	return r, nil
}

// PrepareDrop creates the input folders of DropFolders that are missing
// (drop.Prepare) and returns them.
func PrepareDrop(ctx context.Context, env *Env) ([]string, error) {
	folders, err := DropFolders(env)
	if err != nil {
		return nil, err
	}
	return drop.Prepare(ctx, env.Drop, folders)
}
