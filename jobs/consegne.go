package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/ingest"
	"anprsec/ingest/consegne"
	"anprsec/pki/pgp"
	"anprsec/trust/cades"
)

// consegneJob reads the prefetture's delivery manifests
// (docs/rules.md#manifests): for every folder prefetture/<PPP>/ whose PPP
// is a prefettura of the ISTAT table, the files of prefetture/<PPP>/consegne/
// (*.csv, *.xlsx) with their detached signatures (<file>.asc, checked
// against keys.prefetture/<PPP>.asc; mandatory unless
// cards.require_signature is off and the prefettura has no key), each
// manifest identified by its canonical content (consegne.Canonical). A
// folder that is not a prefettura is reported and left alone.
var consegneJob = Job{
	Name:        "ingest-consegne",
	Description: "legge le distinte di consegna delle prefetture (prefetture/<PPP>/consegne/): smart card consegnate ai comuni, quella del sindaco attiva",
	Run:         runConsegne,
}

func runConsegne(ctx context.Context, env *Env, run *Run) error {
	entries, err := env.Drop.List(ctx, "prefetture")
	if err != nil {
		return fmt.Errorf("lettura della cartella prefetture/: %w", err)
	}
	known := map[string]bool{}
	for _, p := range env.Comuni.Prefetture() {
		known[p] = true
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	signatureCAs, err := signatureAnchors(env)
	if err != nil {
		return err
	}
	var ppps []string
	for _, e := range entries {
		if !e.Dir || ingest.Skipped(e.Name) {
			continue
		}
		if !known[e.Name] {
			run.Log.Warn("ingest-consegne: prefetture/ holds a folder that is not a prefettura: ignored", "folder", "prefetture/"+e.Name)
			run.Add("unknown_folders", 1)
			continue
		}
		ppps = append(ppps, e.Name)
	}
	// The prefetture's folders are read inboxWorkers at once, as the
	// comuni's requests are: each prefettura's files one after the other.
	prep := &ingest.Inbox{Drop: env.Drop, Store: env.Store, Kind: consegneKind, SpoolDir: env.SpoolDir(), Log: run.Log}
	if err := prep.Prepare(ctx); err != nil {
		return err
	}
	contents := new(ingest.ContentLocks)
	var mu sync.Mutex // guards run's counts and errs
	var errs []error
	foldersAtOnce(ctx, ppps, func(ppp string) {
		st, err := consegneOf(ctx, env, run, signatureCAs, contents, ppp)
		mu.Lock()
		defer mu.Unlock()
		addInboxStats(run, st)
		if err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// consegneKind is the spool folder of the manifests' inboxes.
const consegneKind = "ingest-consegne"

// consegneOf reads prefettura ppp's consegne/ folder.
func consegneOf(ctx context.Context, env *Env, run *Run, signatureCAs *cades.Anchors, contents *ingest.ContentLocks, ppp string) (ingest.Stats, error) {
	keyring, err := prefetturaKey(env, ppp)
	if err != nil {
		return ingest.Stats{}, err
	}
	in := &ingest.Inbox{
		Drop: env.Drop, Store: env.Store, Kind: consegneKind, Actor: consegne.Actor(ppp), Loc: env.Loc,
		Dir: path.Join("prefetture", ppp, "consegne"), Exts: []string{".csv", ".xlsx", consegne.EnvelopeSuffix}, SelfSigned: []string{consegne.EnvelopeSuffix},
		MaxSize: int64(env.Config.Drop.MaxFileSize), Settle: env.Config.Drop.Settle, MaxAttempts: env.Config.Drop.MaxAttempts, SpoolDir: env.SpoolDir(), Log: run.Log,
		Companion: consegne.SignatureSuffix, WaitCompanion: keyring != nil || env.Config.Cards.RequireSignature,
		Canonical: consegne.Canonical, Shared: true, Contents: contents,
	}
	g := &consegne.Ingester{
		Store: env.Store, Comuni: env.Comuni, Drop: env.Drop, PPP: ppp, Keyring: keyring,
		RequireSignature: env.Config.Cards.RequireSignature, MaxRows: env.Config.Census.MaxRows, Loc: env.Loc,
		CompanionOf: in.CompanionOf, SignatureCAs: signatureCAs, Officers: env.Config.Cards.PrefetturaOfficers[ppp],
	}
	st, err := in.Run(ctx, g.Process)
	if err != nil {
		err = fmt.Errorf("prefettura %s: %w", ppp, err)
	}
	return st, err
}

// prefetturaKey loads keys.prefetture/<PPP>.asc; nil when there is none.
func prefetturaKey(env *Env, ppp string) (openpgp.EntityList, error) {
	dir := env.Config.Path(env.Config.Keys.Prefetture)
	if dir == "" {
		return nil, nil
	}
	p := filepath.Join(dir, ppp+".asc")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	k, err := pgp.ReadVerifierFile(p)
	if err != nil {
		return nil, fmt.Errorf("prefettura %s: chiave %s: %w (i suoi manifesti attendono che la chiave sia corretta)", ppp, p, err)
	}
	return k, nil
}

// signatureAnchors loads trust.signature_ca, the qualified-signature CAs of
// the prefetture's officers; nil when none is configured (a CAdES manifest
// is then refused as untrusted).
func signatureAnchors(env *Env) (*cades.Anchors, error) {
	p := env.Config.Path(env.Config.Trust.SignatureCA)
	if p == "" {
		return nil, nil
	}
	a, err := cades.LoadAnchors(p)
	if err != nil {
		return nil, fmt.Errorf("ingest-consegne: trust.signature_ca: %w", err)
	}
	return a, nil
}
