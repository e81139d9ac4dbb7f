package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"anprsec/internal/clip"
)

// FileState is the progress of an input file.
type FileState string

// Input file states. A file is Processing while its chunks are committed
// (a crash resumes from Chunks), Committed when its whole effect and its
// receipt are in the store, Published when the receipt is written and the
// file moved out of the input folder.
const (
	FileProcessing FileState = "processing"
	FileCommitted  FileState = "committed"
	FilePublished  FileState = "published"
)

// InputFile is the record of a file read from a drop, keyed by the SHA-256
// of its content: the same content is never processed twice.
type InputFile struct {
	SHA256   string    `json:"sha256"`
	Path     string    `json:"path"` // drop path where it was read
	Kind     string    `json:"kind"` // job that read it
	Size     int64     `json:"size"`
	State    FileState `json:"state"`
	Chunks   int       `json:"chunks"` // chunks committed so far
	Rows     int       `json:"rows"`
	Accepted int       `json:"accepted"`
	Refused  int       `json:"refused"`
	Rejected bool      `json:"rejected"` // whole file refused (moved to scartati/)
	Attempts int       `json:"attempts"` // failed attempts in a row with LastError
	// LastError is the error of the last failed attempt, cut to 1 KB.
	LastError string `json:"last_error,omitempty"`
	Moved     string `json:"moved,omitempty"`
	// Publishing is set when the receipt is about to be written: a later
	// attempt knows an identical receipt is this file's own.
	Publishing bool      `json:"publishing,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitempty"`
}

// File returns the record of a content hash.
func (tx *Tx) File(sha string) (*InputFile, error) {
	var f InputFile
	return &f, tx.get("f/"+sha, &f)
}

// PutFile stores an input-file record and its by-state index.
func (tx *Tx) PutFile(f *InputFile) error {
	var old []string
	if prev, err := tx.File(f.SHA256); err == nil {
		old = []string{"i/f-st/" + string(prev.State) + "/" + prev.SHA256}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.setIndexes(old, []string{"i/f-st/" + string(f.State) + "/" + f.SHA256}); err != nil {
		return err
	}
	return tx.set("f/"+f.SHA256, f)
}

// FilesInState returns the content hashes of the input files in a state.
func (tx *Tx) FilesInState(st FileState) ([]string, error) {
	return tx.indexTail("i/f-st/" + string(st) + "/")
}

// FilesOfKind returns the records of the input files in a state read by
// the job kind.
func (tx *Tx) FilesOfKind(st FileState, kind string) ([]*InputFile, error) {
	shas, err := tx.FilesInState(st)
	if err != nil {
		return nil, err
	}
	var out []*InputFile
	for _, sha := range shas {
		r, err := tx.File(sha)
		if err != nil {
			return nil, err
		}
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out, nil
}

func chunkKey(sha string, n int) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n))
	return "f/" + sha + "/e/" + string(b[:])
}

// PutFileChunk stores the receipt lines of one committed chunk.
func (tx *Tx) PutFileChunk(sha string, n int, data []byte) error {
	return tx.setRaw(chunkKey(sha, n), data)
}

// FileChunks returns the receipt data of every committed chunk, in order.
func (tx *Tx) FileChunks(sha string) ([][]byte, error) {
	var out [][]byte
	err := tx.scan("f/"+sha+"/e/", true, func(_ string, v []byte) (bool, error) {
		out = append(out, v)
		return true, nil
	})
	return out, err
}

// DeleteFileChunks removes the receipt data of a file (before processing
// the same content again).
func (tx *Tx) DeleteFileChunks(sha string) error {
	var keys []string
	if err := tx.scan("f/"+sha+"/e/", false, func(k string, _ []byte) (bool, error) {
		keys = append(keys, k)
		return true, nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.del(k); err != nil {
			return err
		}
	}
	return nil
}

// Run is the record of one job run.
type Run struct {
	ID        string         `json:"id"`
	Job       string         `json:"job"`
	Trigger   string         `json:"trigger"`      // schedule, manual, catch-up
	By        string         `json:"by,omitempty"` // who started a manual run (the history's actor: "operatore:NAME")
	Scheduled time.Time      `json:"scheduled,omitempty"`
	Start     time.Time      `json:"start"`
	End       time.Time      `json:"end,omitempty"`
	Outcome   string         `json:"outcome"`          // running, ok, error, panic
	Counts    map[string]int `json:"counts,omitempty"` // events, added up by /metrics
	Values    map[string]int `json:"values,omitempty"` // states (the CRL number), never added up
	Error     string         `json:"error,omitempty"`
}

func runKey(job string, start time.Time) string {
	return fmt.Sprintf("r/%s/%016x", job, start.UnixNano())
}

// MaxRunError bounds Run.Error in bytes: an error may quote what a file
// held.
const MaxRunError = 4096

// PutRun stores a run record and makes it the job's last run. An Error
// longer than MaxRunError is cut (clip.String), in r too.
func (tx *Tx) PutRun(r *Run) error {
	r.Error = clip.String(r.Error, MaxRunError)
	if err := tx.set(runKey(r.Job, r.Start), r); err != nil {
		return err
	}
	return tx.set("rl/"+r.Job, r)
}

// PutSkippedRun records a run that did not start (its job was still
// running): it is listed by Runs, but is not the job's LastRun, which
// stays the run in progress.
func (tx *Tx) PutSkippedRun(r *Run) error {
	r.Error = clip.String(r.Error, MaxRunError)
	return tx.set(runKey(r.Job, r.Start), r)
}

// LastRun returns the last run of a job.
func (tx *Tx) LastRun(job string) (*Run, error) {
	var r Run
	return &r, tx.get("rl/"+job, &r)
}

// Runs returns the runs of a job (all jobs when job is ""), newest last,
// at most limit of the newest (0 = all).
func (tx *Tx) Runs(job string, limit int) ([]Run, error) {
	prefix := "r/"
	if job != "" {
		prefix += job + "/"
	}
	var out []Run
	err := tx.scan(prefix, true, func(k string, v []byte) (bool, error) {
		var r Run
		if err := decode(k, v, &r); err != nil {
			return false, err
		}
		out = append(out, r)
		return true, nil
	})
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, err
}

// SetMeta and Meta keep small values (such as the previous look at a drop
// folder) that are not domain records.
func (tx *Tx) SetMeta(key string, v any) error { return tx.set("m/"+key, v) }

// Meta reads a value stored by SetMeta.
func (tx *Tx) Meta(key string, v any) error { return tx.get("m/"+key, v) }

// DeleteMeta removes a value stored by SetMeta (absent is fine).
func (tx *Tx) DeleteMeta(key string) error { return tx.del("m/" + key) }
