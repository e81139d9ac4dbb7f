package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"

	"anprsec/internal/control"
	"anprsec/jobs"
	"anprsec/pki/pgp"
	"anprsec/store"
)

// maxCheckpointFile bounds a checkpoint file read: a real one is under a
// kilobyte, a mailed copy a few.
const maxCheckpointFile = 1 << 20

// verifyCheckpoints checks checkpoint files of the registro job against
// the chain, recomputed: the signature of each against the service key
// (keyFile, or the public part of keys.service), then the hash the chain
// holds at its number (or, for a checkpoint of the chain before its
// migration to pseudonyms, the old hash the migration kept). It prints the chain's line and one line per
// checkpoint, and fails when the chain is broken or any checkpoint does
// not hold.
func (a *app) verifyCheckpoints(w io.Writer, st *store.Store, files []string, keyFile string) error {
	keyring, err := a.serviceKeyring(keyFile)
	if err != nil {
		return err
	}
	cps := make([]jobs.Checkpoint, len(files))
	errs := make([]error, len(files))
	var seqs []uint64
	for i, f := range files {
		cps[i], errs[i] = readCheckpoint(a.callerFS(), f, keyring)
		if errs[i] == nil {
			seqs = append(seqs, cps[i].Seq)
		}
	}
	res, hashes, err := st.HistoryHashes(seqs...)
	if err != nil {
		return err
	}
	// A checkpoint published before the history was migrated to
	// pseudonyms names the old chain's hash, kept by the migration
	// (docs/personal-data.md#migration).
	legacy, err := st.LegacyHistoryHashes(seqs...)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "catena dello storico integra: %d voci, ultima %s\n", res.Entries, res.Head)
	failed := 0
	for i, f := range files {
		cp, line := cps[i], ""
		h, ok := hashes[cp.Seq]
		switch {
		case errs[i] != nil:
			line = errs[i].Error()
		case !ok:
			line = fmt.Sprintf("sequenza %d oltre la fine della storia (%d voci): voci rimosse", cp.Seq, res.Entries)
		case h != cp.Hash && legacy[cp.Seq] == cp.Hash:
			fmt.Fprintf(w, "checkpoint %s: sequenza %d, hash ok (storia precedente alla pseudonimizzazione)\n", filepath.Base(f), cp.Seq)
			continue
		case h != cp.Hash:
			line = fmt.Sprintf("sequenza %d, hash diverso: la storia è stata riscritta (firmato %s, nella storia %s)", cp.Seq, cp.Hash, h)
		default:
			fmt.Fprintf(w, "checkpoint %s: sequenza %d, hash ok\n", filepath.Base(f), cp.Seq)
			continue
		}
		failed++
		fmt.Fprintf(w, "checkpoint %s: %s\n", filepath.Base(f), line)
	}
	if failed > 0 {
		return fmt.Errorf("%d checkpoint su %d non superano la verifica", failed, len(files))
	}
	return nil
}

// readCheckpoint reads a checkpoint file and checks its signature.
// The file is the caller's (fsys): through the control socket the CLI
// reads it, with the caller's permissions.
func readCheckpoint(fsys control.FS, path string, keyring openpgp.EntityList) (jobs.Checkpoint, error) {
	data, err := fsys.ReadFile(path)
	if err != nil {
		return jobs.Checkpoint{}, fmt.Errorf("illeggibile: %v", err)
	}
	if len(data) > maxCheckpointFile {
		return jobs.Checkpoint{}, fmt.Errorf("più grande di %d byte: non è un registro della storia", maxCheckpointFile)
	}
	cp, err := jobs.VerifyCheckpoint(data, keyring)
	switch {
	case errors.Is(err, pgp.ErrBadSignature), errors.Is(err, pgp.ErrUnknownSigner), errors.Is(err, pgp.ErrMalformed):
		return cp, fmt.Errorf("firma non valida: %v", err)
	case err != nil:
		return cp, fmt.Errorf("contenuto non valido: %v", err)
	}
	return cp, nil
}

// serviceKeyring is the key checkpoints are checked with: the public key
// in keyFile, or the service key of the config (keys.service).
func (a *app) serviceKeyring(keyFile string) (openpgp.EntityList, error) {
	if keyFile != "" && a.daemon != nil {
		data, err := a.callerFS().ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("pgp: key file: %w", err)
		}
		return pgp.ReadVerifier(data, keyFile)
	}
	if keyFile != "" {
		return pgp.ReadVerifierFile(keyFile)
	}
	e, err := pgp.ReadSecretFile(a.cfg.Path(a.cfg.Keys.Service))
	if err != nil {
		return nil, fmt.Errorf("chiave del servizio (keys.service): %w (oppure indicare la sua chiave pubblica con --key)", err)
	}
	return openpgp.EntityList{e}, nil
}
