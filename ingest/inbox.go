// Package ingest reads the files dropped in the input folders: it claims
// only complete files, processes each content exactly once (by SHA-256),
// commits its effects in resumable chunks, writes its receipt (esito) and
// moves it to elaborati/ or scartati/.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"anprsec/drop"
	"anprsec/ingest/esito"
	"anprsec/internal/clip"
	"anprsec/store"
)

// Inbox is one input folder of a drop.
type Inbox struct {
	Drop     drop.Drop
	Store    *store.Store
	Kind     string         // the job that reads it, recorded with each file
	Actor    string         // the dropping party, recorded in the history (e.g. "censimento")
	Loc      *time.Location // time zone of dates in receipts (default Local)
	Dir      string         // drop folder, e.g. "censimento" or "comuni/058091/richieste"
	Exts     []string       // accepted extensions, lower case with the dot
	MaxSize  int64          // larger files are refused whole
	Settle   time.Duration
	SpoolDir string // local folder for downloaded copies
	Log      *slog.Logger
	Now      func() time.Time
	// Companion is the suffix of a file that travels with each input file
	// (".asc": a detached signature, <file>.asc). A companion is never an
	// input of its own; it moves to elaborati/ or scartati/ with its file.
	Companion string
	// WaitCompanion: a file whose companion is not there yet is read only
	// once it is Settle old (the companion may still be on its way).
	WaitCompanion bool
	// SelfSigned lists the extensions of input files that carry their own
	// signature (".p7m", an enveloping CAdES): they never wait for a
	// companion.
	SelfSigned []string
	// Canonical, when set, gives the content a file is identified by: the
	// file's identity is the SHA-256 of Canonical(name, data) instead of
	// the SHA-256 of data, so that files of equal canonical content are one
	// content (processed once, DUPLICATO when dropped again). A nil result
	// keeps the raw content.
	Canonical func(name string, data []byte) []byte
	// Unpipelined commits each chunk in a plain store transaction, in
	// which the processor may scan (the console requests check the
	// comune's utenze); the default pipelines chunks (see Commit).
	Unpipelined bool
	// Shared says that several inboxes of one kind run at once in one job
	// run: the caller does once, before them, what Run otherwise does for
	// the whole kind (Prepare: the spool cleared, the publications that a
	// stop interrupted completed), and Run does not.
	Shared bool
	// Contents, for Shared inboxes, is the run's one set of content locks:
	// a content is processed once (by its SHA-256, whatever its folder), so
	// two folders holding the same bytes must not claim it at once.
	Contents *ContentLocks
	// Marks, for Shared inboxes, gathers the files they moved out, to
	// mark them published a batch at a time (see Marks); nil marks each
	// file on its own.
	Marks *Marks
	// MaxAttempts is drop.max_attempts: how many times in a row a file
	// may make its processing fail with the same error before it is
	// refused as a whole (ERRORE_ELABORAZIONE); 0 = DefaultMaxAttempts.
	// Failures of the environment (Environmental) do not count.
	MaxAttempts int

	// listed holds, during Run, the lower-case names of Dir's listing.
	listed map[string]bool
}

// DefaultMaxAttempts is Inbox.MaxAttempts when not set.
const DefaultMaxAttempts = 3

// CodeGivenUp is the receipt code of a file refused because its
// processing kept failing with the same error.
const CodeGivenUp = "ERRORE_ELABORAZIONE"

// maxLastError bounds the error kept in a file's record and receipt.
const maxLastError = 1024

// File is a claimed input file, copied locally.
type File struct {
	Path   string // drop path
	Name   string
	Local  string // local copy, removed after processing
	SHA256 string // its identity: of its content, or of its canonical content (Inbox.Canonical)
	Size   int64
	rec    *store.InputFile
	inbox  *Inbox
	pipe   *store.Pipeline // open while chunks are committed
	// receipt holds the receipt data of the chunks committed by this
	// process, while it is every chunk of the file and small
	// (keptReceipt): publishing then need not read them back.
	receipt     [][]byte
	receiptSize int
	hasReceipt  bool // receipt is the whole file's so far
	// finished says that this process committed the file (finish, or
	// its last chunk), with its publication started in the same
	// transaction: the receipt is written for the first time, and Moved
	// is where it goes.
	finished bool
	// staked is false while rec is the record of a content being claimed
	// that is not in the store yet (claim): the first transaction written
	// for the file stores it first (stake), with its history entry.
	staked      bool
	stakeDetail string // the detail of that entry
	replaces    bool   // the record replaces one of a content refused whole: its chunks go
	// chunks, when the processor tells it (Expect), is how many chunks the
	// file has: the transaction of the last one also commits the file.
	chunks int
	// moveTo is the free name in elaborati/ that the last chunk records
	// as where the file goes ("" when the drop could not tell one).
	moveTo string
	absent *absentHint // keys to track when the pipeline starts (TrackAbsent)
	lines  int         // size of the last chunk's receipt lines
}

type absentHint struct {
	newKeys  int
	prefixes []string
}

// TrackAbsent asks the pipeline of the file's commits to answer the reads
// of keys under prefixes that the store does not hold without asking
// Badger (store.Pipeline.TrackAbsent); newKeys is about how many keys the
// file's chunks write there. It takes effect with the first chunk
// committed; an unpipelined inbox ignores it.
func (f *File) TrackAbsent(newKeys int, prefixes ...string) {
	f.absent = &absentHint{newKeys: newKeys, prefixes: prefixes}
}

// Expect tells that the file's effect is n chunks (0 to n-1), so that the
// transaction of the last also marks the file committed and starts its
// publication, as finish would after the processor returns. A processor
// that refuses the whole file after its last chunk may not call it.
func (f *File) Expect(n int) { f.chunks = n }

// keptReceipt bounds the receipt data a File keeps in memory; a larger
// receipt is read back from the store when published.
const keptReceipt = 1 << 20

// keep adds the data of a committed chunk to the receipt kept in memory.
func (f *File) keep(data []byte) {
	if !f.hasReceipt {
		return
	}
	if f.receiptSize += len(data); f.receiptSize > keptReceipt {
		f.dropReceipt()
		return
	}
	f.receipt = append(f.receipt, data)
}

// dropReceipt forgets the receipt kept in memory: it is read back from
// the store.
func (f *File) dropReceipt() {
	f.receipt, f.receiptSize, f.hasReceipt = nil, 0, false
}

// Result is what a Processor reports for a file whose chunks it committed.
type Result struct {
	Refused bool   // the whole file is refused (riga 0 line)
	Code    string // for a refusal
	Message string
}

// Processor reads a claimed file and commits its effect with File.Commit.
// It returns an error only for a failure of the system (the file is retried
// next run); a problem with the file's content is a refusal in the Result.
type Processor func(ctx context.Context, f *File) (Result, error)

// Stats counts what a pass did: Files were read (claimed and hashed),
// Accepted of them processed, Refused refused as a whole (read or not),
// Duplicates among the refused were contents already processed. Every
// file handled is in Files or in Unread, and gets one receipt.
type Stats struct {
	Files, Accepted, Refused, Duplicates, RowsOK, RowsRefused int
	// Unread counts the files refused without being read (a bad name, no
	// regular file, a wrong extension, empty or too large); they are in
	// Refused too, not in Files.
	Unread     int
	MissingDir bool // the input folder does not exist
}

// Commit runs chunk k of a file's effect in one transaction: fn applies the
// changes and appends the receipt lines of that chunk to buf, and returns
// how many rows it accepted and refused. Chunks below the checkpoint
// (committed before a crash) are skipped, so re-running is idempotent.
//
// Chunks go through a store.Pipeline: chunk k+1 is prepared while chunk k
// is written. A commit failure surfaces at a later Commit or when the
// processor returns. Until the processor returns, it must not call
// Store.Update (the pipeline holds the writer lock); Store.View is fine.
func (f *File) Commit(k int, fn func(tx *store.Tx, buf *bytes.Buffer) (ok, ko int, err error)) error {
	if k < f.rec.Chunks {
		return nil
	}
	if k != f.rec.Chunks {
		return fmt.Errorf("%s: blocco %d registrato fuori ordine (punto di ripresa %d)", f.Path, k, f.rec.Chunks)
	}
	update := f.inbox.Store.Update
	if !f.inbox.Unpipelined {
		if f.pipe == nil {
			f.pipe = f.inbox.Store.Pipeline()
			if f.absent != nil {
				if err := f.pipe.TrackAbsent(f.absent.newKeys, f.absent.prefixes...); err != nil {
					return err
				}
			}
		}
		update = f.pipe.Update
	}
	last := k == f.chunks-1
	var next store.InputFile
	var data []byte
	err := update(func(tx *store.Tx) error {
		if err := f.stake(tx); err != nil {
			return err
		}
		// Chunks are alike: room for the last one's lines.
		buf := bytes.NewBuffer(make([]byte, 0, f.lines+f.lines/8))
		ok, ko, err := fn(tx, buf)
		f.lines = buf.Len()
		if err != nil {
			return err
		}
		data = buf.Bytes()
		if err := tx.PutFileChunk(f.SHA256, k, data); err != nil {
			return err
		}
		next = *f.rec
		next.Chunks = k + 1
		next.Accepted += ok
		next.Refused += ko
		next.Rows += ok + ko
		if last {
			// What finish does, in the same transaction.
			next.State = store.FileCommitted
			next.Publishing, next.Moved = true, f.moveTo
			if err := tx.Record(store.Source{Actor: f.inbox.actor(), File: f.Path}, "file.elaborato", "file", f.SHA256, committedDetail(&next)); err != nil {
				return err
			}
		}
		return tx.PutFile(&next)
	})
	if err == nil {
		// A pipelined commit may still fail: then the processor fails, and
		// processClaimed drops what was kept and reads the record again.
		f.rec, f.staked = &next, true
		f.finished = f.finished || last
		f.keep(data)
	}
	return err
}

// committedDetail is the detail of the history entry of a file committed.
func committedDetail(r *store.InputFile) string {
	return fmt.Sprintf("righe accettate %d, scartate %d", r.Accepted, r.Refused)
}

// stake stores, in tx, the record of a content that claim found new (with
// its history entry, file.ricevuto, and the removal of the chunks of the
// content refused whole that it replaces), unless it is stored already.
func (f *File) stake(tx *store.Tx) error {
	if f.staked {
		return nil
	}
	if f.replaces {
		if err := tx.DeleteFileChunks(f.SHA256); err != nil {
			return err
		}
	}
	f.rec.Started = tx.Now
	if err := tx.Record(store.Source{Actor: f.inbox.actor(), File: f.Path}, "file.ricevuto", "file", f.SHA256, f.stakeDetail); err != nil {
		return err
	}
	return tx.PutFile(f.rec)
}

// CommitLines is Commit for a chunk of n rows, each giving its receipt
// line: row i is applied by line, in the chunk's transaction, and its line
// appended to the chunk's receipt and counted as accepted (OK) or refused.
func (f *File) CommitLines(k, n int, line func(tx *store.Tx, i int) (esito.Line, error)) error {
	return f.Commit(k, func(tx *store.Tx, buf *bytes.Buffer) (ok, ko int, err error) {
		for i := range n {
			l, err := line(tx, i)
			if err != nil {
				return 0, 0, err
			}
			esito.Append(buf, l)
			if l.Outcome == esito.OK {
				ok++
			} else {
				ko++
			}
		}
		return ok, ko, nil
	})
}

// Source returns the history source of a row of this file.
func (f *File) Source(actor, sheet string, row int) store.Source {
	return store.Source{Actor: actor, File: f.Path, Sheet: sheet, Row: row}
}

func (in *Inbox) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.Default()
}

func (in *Inbox) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

// Skipped reports whether a name is never read: hidden files and names of
// uploads in progress.
func Skipped(name string) bool {
	l := strings.ToLower(name)
	return strings.HasPrefix(name, ".") || strings.HasSuffix(l, ".part") ||
		strings.HasSuffix(l, ".tmp") || strings.HasSuffix(l, ".filepart")
}

type look struct {
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
}

// Run processes every ready file of the folder, in name order, until ctx is
// done. A file that fails for a system reason is left for the next run.
func (in *Inbox) Run(ctx context.Context, process Processor) (Stats, error) {
	var st Stats
	if !in.Shared {
		in.cleanSpool()
		if err := in.finishMoved(ctx, false); err != nil {
			return st, err
		}
	}
	entries, err := in.Drop.List(ctx, in.Dir)
	if err != nil {
		return st, fmt.Errorf("lettura della cartella %s: %w", in.Dir, err)
	}
	if len(entries) == 0 {
		if _, err := in.Drop.Stat(ctx, in.Dir); err != nil {
			in.log().Warn("input folder missing: nothing can be dropped there", "drop", in.Drop.String(), "dir", in.Dir)
			st.MissingDir = true
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	names := make(map[string]bool, len(entries)) // lower-case names
	for _, e := range entries {
		names[strings.ToLower(e.Name)] = true
	}
	in.listed = names
	defer func() { in.listed = nil }()
	var firstErr error
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		if e.Dir || Skipped(e.Name) || in.isCompanion(e.Name) {
			continue
		}
		if in.Companion != "" && in.WaitCompanion && !in.selfSigned(e.Name) && !names[strings.ToLower(e.Name+in.Companion)] && in.now().Sub(e.ModTime) < in.Settle {
			in.log().Info("waiting for the companion file", "file", path.Join(in.Dir, e.Name), "companion", e.Name+in.Companion)
			continue
		}
		p := path.Join(in.Dir, e.Name)
		if why := badName(in.Dir, e.Name); why != "" {
			refused, err := in.refuseBadName(ctx, e, why)
			if err != nil {
				in.log().Error("cannot refuse a file with an unsafe name, will retry", "dir", in.Dir, "name", fmt.Sprintf("%q", e.Name), "err", err)
				if firstErr == nil {
					firstErr = err
				}
			} else if refused {
				st.Refused++
				st.Unread++
			}
			continue
		}
		if !in.ready(p, e) {
			continue
		}
		if err := in.one(ctx, p, e, process, &st); err != nil {
			in.log().Error(failureMessage(err), "file", p, "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return st, firstErr
}

// badName says why a listed name cannot be handled as a file of folder
// dir, or "" when it can. A drop lists base names; a name holding a slash
// (which no file system gives, but a hostile SFTP server may list) would
// lead to another folder of the drop, and drop.Clean refuses control
// characters and backslashes anywhere.
func badName(dir, name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return "non è un nome di file"
	case strings.ContainsAny(name, "/\\"):
		return "contiene una barra (/ o \\)"
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "contiene caratteri di controllo (a capo, tabulazioni o altri caratteri non stampabili)"
		}
	}
	if _, err := drop.Clean(path.Join(dir, name)); err != nil {
		return "non è ammesso"
	}
	return ""
}

// safeName is name with every character that badName objects to replaced
// by "_": the name of the receipt of a file with an unsafe name.
func safeName(name string) string {
	s := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			return '_'
		}
		return r
	}, name)
	if s == "" || s == "." || s == ".." {
		s = "_" + s
	}
	return s
}

// refuseBadName refuses a file whose name the drop cannot handle: its
// receipt (riga 0, NOME_NON_VALIDO) is written under safeName, and the
// file stays where it is, since no drop operation accepts its name. It is
// done once for each size and modification time of the file (recorded in
// the store), so a file left there does not get a receipt every run. It
// reports whether it refused the file now.
func (in *Inbox) refuseBadName(ctx context.Context, e drop.Entry, why string) (bool, error) {
	sum := sha256.Sum256([]byte(e.Name))
	key := "badname/" + in.Dir + "/" + hex.EncodeToString(sum[:])
	cur := look{Size: e.Size, MTime: e.ModTime.UTC()}
	var prev look
	if err := in.Store.View(func(tx *store.Tx) error { return tx.Meta(key, &prev) }); err == nil && prev.Size == cur.Size && prev.MTime.Equal(cur.MTime) {
		return false, nil // refused before
	}
	safe := safeName(e.Name)
	code := "NOME_NON_VALIDO"
	msg := fmt.Sprintf("il nome del file %q %s: il file non è stato letto né spostato; rinominarlo (o rimuoverlo) e inviarlo di nuovo", e.Name, why)
	in.log().Warn("file refused", "dir", in.Dir, "name", fmt.Sprintf("%q", e.Name), "code", code, "reason", msg)
	if err := in.writeReceipt(ctx, safe, esito.Refused(code, msg), false); err != nil {
		return false, err
	}
	return true, in.Store.Update(func(tx *store.Tx) error {
		if err := tx.Record(store.Source{Actor: in.actor(), File: path.Join(in.Dir, safe)}, "file.scartato", "file", path.Join(in.Dir, safe), code+": "+msg); err != nil {
			return err
		}
		return tx.SetMeta(key, cur)
	})
}

// ready reports whether the file at p is complete
// (docs/rules.md#drops-and-receipts): its modification time is Settle old
// (the drop's clock: nothing wrote to it for that long), or anprsec has
// seen it unchanged, same size and modification time, for Settle of its
// own clock since it first saw it so. That first sighting is recorded in
// the store, so looks of separate runs count together; two looks a few
// seconds apart are never enough. A Settle of 0 reads every file at once.
// A file whose modification time is Settle old needs no sighting here
// (fetch records one if it cannot be read as what its name says).
func (in *Inbox) ready(p string, e drop.Entry) bool {
	if in.Settle <= 0 {
		return true
	}
	now := in.now()
	if now.Sub(e.ModTime) >= in.Settle {
		return true
	}
	s := in.sighting(p, e, now)
	if now.Sub(s.Since) >= in.Settle {
		return true
	}
	in.log().Info("file new or still changing: it is read once unchanged for drop.settle", "file", p, "settle", in.Settle, "unchanged_since", s.Since)
	return false
}

// sighting returns the store's record of the file at p as listed in e,
// recording a first sighting at now when there is none with e's size and
// modification time.
func (in *Inbox) sighting(p string, e drop.Entry, now time.Time) *store.Sighting {
	cur := &store.Sighting{Path: p, Size: e.Size, MTime: e.ModTime.UTC(), Since: now.UTC()}
	var prev *store.Sighting
	err := in.Store.View(func(tx *store.Tx) (err error) { prev, err = tx.Sighting(p); return err })
	if err == nil && prev.Size == cur.Size && prev.MTime.Equal(cur.MTime) {
		return prev
	}
	if err := in.Store.Update(func(tx *store.Tx) error { return tx.PutSighting(cur) }); err != nil {
		in.log().Warn("cannot record the sighting of a file", "file", p, "err", err)
	}
	return cur
}

// stillFor reports whether anprsec itself has seen the file at p, as
// listed in e, unchanged for Settle.
func (in *Inbox) stillFor(p string, e drop.Entry) bool {
	if in.Settle <= 0 {
		return true
	}
	var s *store.Sighting
	err := in.Store.View(func(tx *store.Tx) (err error) { s, err = tx.Sighting(p); return err })
	return err == nil && s.Size == e.Size && s.MTime.Equal(e.ModTime.UTC()) && in.now().Sub(s.Since) >= in.Settle
}

// isCompanion reports whether name is the companion of an input file
// (<file><Companion> with an accepted extension before it).
func (in *Inbox) isCompanion(name string) bool {
	if in.Companion == "" || len(name) <= len(in.Companion) || !strings.EqualFold(name[len(name)-len(in.Companion):], in.Companion) {
		return false
	}
	return in.hasExt(name[:len(name)-len(in.Companion)])
}

// moveCompanion moves the companion of the file at p, if there is one,
// next to the file's new place to. It is done before the file itself, so
// that a stop in between leaves no companion without its file.
func (in *Inbox) moveCompanion(ctx context.Context, p, to string) error {
	c, err := in.CompanionOf(ctx, p)
	if err != nil || c == "" {
		return err
	}
	dst := to + c[len(p):] // the companion's own suffix, in its own case
	if err := in.Drop.Rename(ctx, c, dst); err != nil {
		return fmt.Errorf("spostamento di %s in %s: %w", c, dst, err)
	}
	return nil
}

// CompanionOf returns the drop path of the companion of the input file at
// p (its name plus Companion, in any case: "ELENCO.CSV.ASC" goes with
// "ELENCO.CSV"), or "" when there is none.
func (in *Inbox) CompanionOf(ctx context.Context, p string) (string, error) {
	if in.Companion == "" {
		return "", nil
	}
	if _, err := in.Drop.Stat(ctx, p+in.Companion); err == nil {
		return p + in.Companion, nil
	}
	want := path.Base(p) + in.Companion
	if in.listed != nil && path.Dir(p) == in.Dir && !in.listed[strings.ToLower(want)] {
		// Not in any case in the listing that Run reads the folder by:
		// a companion that comes after it is one of a later look.
		return "", nil
	}
	entries, err := in.Drop.List(ctx, path.Dir(p))
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if !e.Dir && strings.EqualFold(e.Name, want) {
			return path.Join(path.Dir(p), e.Name), nil
		}
	}
	return "", nil
}

func (in *Inbox) selfSigned(name string) bool {
	for _, x := range in.SelfSigned {
		if strings.EqualFold(path.Ext(name), x) {
			return true
		}
	}
	return false
}

func (in *Inbox) hasExt(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, x := range in.Exts {
		if ext == x {
			return true
		}
	}
	return false
}

// one handles one ready file of the folder: an entry that cannot be an
// input is refused unread; else the file is downloaded, its content
// claimed, processed unless it was before (a duplicate is refused), and
// published with its receipt.
func (in *Inbox) one(ctx context.Context, p string, e drop.Entry, process Processor, st *Stats) error {
	if code, msg := in.unreadable(e); code != "" {
		st.Refused++
		st.Unread++
		return in.refuseUnread(ctx, p, e.Name, code, msg)
	}
	f, err := in.fetch(ctx, p, e)
	if err != nil {
		return err
	}
	if f == nil {
		return nil // changed while downloading: next run
	}
	defer os.Remove(f.Local)
	defer in.Contents.lock(f.SHA256)()

	if err := in.claim(p, f); err != nil {
		return err
	}
	st.Files++
	if err := in.completeMove(ctx, p, f); err != nil {
		return err
	}
	if f.rec.State == store.FilePublished {
		st.Duplicates++
		st.Refused++
		return in.refuseUnread(ctx, p, e.Name, "DUPLICATO", in.duplicateMessage(f.rec))
	}
	if f.rec.State == store.FileProcessing {
		if err := in.processClaimed(ctx, p, f, process); err != nil {
			return err
		}
	}
	if err := in.publish(ctx, f); err != nil {
		return err
	}
	st.count(f.rec)
	return nil
}

// unreadable returns the code and message of the refusal of an entry that
// cannot be an input of the folder, so is refused without being read: not a
// regular file, an extension not accepted, empty, or over MaxSize. It
// returns "" for an entry that can be read.
func (in *Inbox) unreadable(e drop.Entry) (code, msg string) {
	switch {
	case !e.Regular:
		return "NON_FILE", "non è un file regolare (collegamento simbolico o dispositivo): ignorato"
	case !in.hasExt(e.Name):
		return "TIPO_FILE", fmt.Sprintf("estensione non prevista in %s/ (ammesse: %s)", in.Dir, strings.Join(in.Exts, ", "))
	case e.Size == 0:
		return "FILE_VUOTO", "il file è vuoto"
	case in.MaxSize > 0 && e.Size > in.MaxSize:
		return "FILE_TROPPO_GRANDE", fmt.Sprintf("%d byte, oltre il limite di %d byte", e.Size, in.MaxSize)
	}
	return "", ""
}

// claim sets f.rec to the store's record of the file's content. A new
// content gets a new record, being processed, and a history entry
// (file.ricevuto). So does a content refused as a whole before any row was
// applied (a bad header, a missing signature): it was not processed, so
// the same content dropped again is read again. A published content keeps
// its record (a duplicate), and so does any other.
//
// The new record is stored by the first transaction written for the file
// (stake: its first chunk, its refusal, a failed attempt), before anything
// else of it: a stop before that left nothing of the file in the store,
// and the next run claims it again. The content lock (Contents) keeps
// another inbox of the run from claiming the same content meanwhile; runs
// never overlap.
func (in *Inbox) claim(p string, f *File) error {
	var r *store.InputFile
	err := in.Store.View(func(tx *store.Tx) error {
		var err error
		r, err = tx.File(f.SHA256)
		return err
	})
	detail := fmt.Sprintf("%d byte", f.Size)
	f.staked, f.replaces = true, false
	switch {
	case errors.Is(err, store.ErrNotFound):
		// a new content
	case err != nil:
		return err
	case r.State == store.FilePublished && r.Rejected && r.Chunks == 0:
		f.replaces = true
		detail += "; contenuto già scartato per intero, letto di nuovo"
	default:
		f.rec = r
		f.hasReceipt = r.State == store.FileProcessing && r.Chunks == 0
		return nil
	}
	f.rec = &store.InputFile{SHA256: f.SHA256, Path: p, Kind: in.Kind, Size: f.Size, State: store.FileProcessing}
	f.staked, f.stakeDetail = false, detail
	// No chunk is committed: what this process commits is the whole
	// receipt.
	f.hasReceipt = true
	if f.replaces {
		// The chunks of the content refused whole are found by a scan,
		// which a pipelined chunk cannot do: the record is stored now.
		if err := in.Store.Update(f.stake); err != nil {
			return err
		}
		f.staked = true
	}
	return nil
}

// completeMove completes the record of a file committed and moved just
// before a crash, before the record said so: if the move happened (the
// file is at its new place), the earlier publication is complete.
func (in *Inbox) completeMove(ctx context.Context, p string, f *File) error {
	if f.rec.State != store.FileCommitted || f.rec.Moved == "" {
		return nil
	}
	if _, err := in.Drop.Stat(ctx, f.rec.Moved); err != nil || f.rec.Moved == p {
		return nil
	}
	return in.markPublished(f, f.rec.Moved)
}

// duplicateMessage is the receipt message of a content already published.
func (in *Inbox) duplicateMessage(rec *store.InputFile) string {
	return fmt.Sprintf("contenuto già elaborato il %s (file %s): non elaborato di nuovo", rec.Finished.In(in.loc()).Format("02/01/2006 15:04 MST"), rec.Path)
}

// processClaimed processes a claimed file and marks it committed. A
// failure of the processor is returned and the file is tried again at the
// next run; a failure that comes from the file (not Environmental, not a
// stop) counts as an attempt, and once MaxAttempts attempts in a row have
// failed with the same error the file is refused as a whole instead
// (CodeGivenUp, with that error; the rows already applied stay and are
// listed), and moved to scartati/.
func (in *Inbox) processClaimed(ctx context.Context, p string, f *File, process Processor) error {
	if f.rec.Attempts >= in.maxAttempts() {
		return in.finish(ctx, f, givenUp(f.rec))
	}
	if to, err := in.freeName(ctx, "elaborati", f.Name); err == nil {
		f.moveTo = to
	}
	res, err := safeProcess(ctx, process, f)
	if err == nil {
		if f.finished && !res.Refused {
			return nil // committed with its last chunk
		}
		return in.finish(ctx, f, res)
	}
	// A chunk kept in memory, or the commit of the file with its last
	// chunk, may be one whose commit failed: the record and the receipt
	// are read back from the store.
	f.dropReceipt()
	f.finished = false
	if ctx.Err() != nil || Environmental(err) {
		in.keepClaim(f)
		return err
	}
	if cerr := in.countAttempt(f, err); cerr != nil {
		in.log().Error("cannot count the failed attempt", "file", p, "err", cerr)
		return err
	}
	if f.rec.Attempts < in.maxAttempts() {
		return err
	}
	in.log().Error("file refused: its processing failed with the same error at every attempt", "file", p, "attempts", f.rec.Attempts, "err", err)
	return in.finish(ctx, f, givenUp(f.rec))
}

func (in *Inbox) maxAttempts() int {
	if in.MaxAttempts > 0 {
		return in.MaxAttempts
	}
	return DefaultMaxAttempts
}

// givenUp is the refusal of a file whose processing kept failing.
func givenUp(rec *store.InputFile) Result {
	applied := "nessuna riga è stata applicata"
	if rec.Rows > 0 {
		applied = fmt.Sprintf("le %d righe elencate sopra sono state applicate, le altre no", rec.Rows)
	}
	why := rec.LastError
	if why == "" {
		why = "errore non registrato"
	}
	return Result{Refused: true, Code: CodeGivenUp, Message: fmt.Sprintf(
		"elaborazione fallita %d volte con lo stesso errore (%s): file messo da parte, contattare l'assistenza; %s",
		rec.Attempts, why, applied)}
}

// storedClaim returns the stored record of a file whose processing
// failed, storing it first when it is not: nothing of the file was
// committed, or the commit of its first chunk failed. (A published record
// is the one of the content refused whole that this claim replaces.)
func (in *Inbox) storedClaim(tx *store.Tx, f *File) (*store.InputFile, error) {
	r, err := tx.File(f.SHA256)
	if errors.Is(err, store.ErrNotFound) || err == nil && r.State == store.FilePublished {
		f.rec = &store.InputFile{SHA256: f.SHA256, Path: f.Path, Kind: in.Kind, Size: f.Size, State: store.FileProcessing}
		f.staked, f.replaces = false, err == nil
		if err := f.stake(tx); err != nil {
			return nil, err
		}
		return f.rec, nil
	}
	return r, err
}

// keepClaim stores the record of a file whose processing failed for a
// reason that costs it no attempt (a stop, the environment), when it is
// not stored yet: the file is being processed.
func (in *Inbox) keepClaim(f *File) {
	err := in.Store.Update(func(tx *store.Tx) error {
		r, err := in.storedClaim(tx, f)
		if err == nil {
			f.rec = r
		}
		return err
	})
	if err == nil {
		f.staked = true
	}
}

// countAttempt counts a failed attempt at processing the file: one more
// when it failed with the same error as the previous one, else the first
// with this error. f.rec becomes the stored record (the chunks committed
// before the failure included).
func (in *Inbox) countAttempt(f *File, failure error) error {
	msg := clip.String(failure.Error(), maxLastError)
	return in.Store.Update(func(tx *store.Tx) error {
		r, err := in.storedClaim(tx, f)
		if err != nil {
			return err
		}
		if r.LastError == msg {
			r.Attempts++
		} else {
			r.Attempts, r.LastError = 1, msg
		}
		f.rec = r
		return tx.PutFile(r)
	})
}

// count adds a published file to the pass's counts.
func (st *Stats) count(rec *store.InputFile) {
	if rec.Rejected {
		st.Refused++
	} else {
		st.Accepted++
	}
	st.RowsOK += rec.Accepted
	st.RowsRefused += rec.Refused
}

func safeProcess(ctx context.Context, process Processor, f *File) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: errore interno durante l'elaborazione (panic): %v", f.Path, r)
		}
		if f.pipe != nil {
			if cerr := f.pipe.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("%s: %w", f.Path, cerr)
			}
			f.pipe = nil
		}
	}()
	return process(ctx, f)
}

// finish marks the file committed: its receipt is complete in the store.
// The same transaction starts its publication (publish): the receipt is
// about to be written (Publishing) and the file will go to Moved, a free
// name in elaborati/ or scartati/ (left empty when the drop cannot tell
// one now: moveOut finds it). Neither announces anything: the receipt is
// written only after the store is synced, and the file moved only after
// its receipt is written.
func (in *Inbox) finish(ctx context.Context, f *File, res Result) error {
	sub := "elaborati"
	if res.Refused {
		sub = "scartati"
	}
	to, err := in.freeName(ctx, sub, f.Name)
	if err != nil {
		to = ""
	}
	var next store.InputFile
	var riga0 []byte
	err = in.Store.Update(func(tx *store.Tx) error {
		if err := f.stake(tx); err != nil {
			return err
		}
		next = *f.rec
		next.State = store.FileCommitted
		next.Publishing, next.Moved = true, to
		if res.Refused {
			// The riga 0 line comes after the lines of chunks already
			// committed (a give-up after a partial import keeps them).
			var buf bytes.Buffer
			esito.Append(&buf, esito.Line{Outcome: esito.Scartato, Code: res.Code, Message: res.Message})
			riga0 = buf.Bytes()
			if err := tx.PutFileChunk(f.SHA256, 1<<30, riga0); err != nil {
				return err
			}
			next.Rejected = true
		}
		detail := committedDetail(&next)
		if res.Refused {
			detail = "file scartato: " + res.Message
		}
		if err := tx.Record(store.Source{Actor: in.actor(), File: f.Path}, "file.elaborato", "file", f.SHA256, detail); err != nil {
			return err
		}
		return tx.PutFile(&next)
	})
	if err == nil {
		f.rec, f.finished, f.staked = &next, true, true
		if riga0 != nil {
			f.keep(riga0)
		}
	}
	return err
}

// publish writes the receipt and moves the file; then the record is done.
// The store is synced first: the receipt must never announce rows that a
// power cut could still take back. A failure says which of these steps
// were done (partial).
func (in *Inbox) publish(ctx context.Context, f *File) error {
	done := "file processed, its rows committed"
	sub := "elaborati"
	if f.rec.Rejected {
		done, sub = "file refused as a whole (the refusal committed)", "scartati"
	}
	if err := in.publishReceipt(ctx, f); err != nil {
		return &partial{done + "; its receipt is not written yet, will retry", err}
	}
	if err := in.moveOut(ctx, f, sub); err != nil {
		return &partial{done + " and its receipt written; moving it to " + sub + "/ failed, will retry the move", err}
	}
	return nil
}

// publishReceipt writes the receipt of a committed file.
func (in *Inbox) publishReceipt(ctx context.Context, f *File) error {
	if err := in.Store.SyncShared(); err != nil {
		return err
	}
	chunks := f.receipt
	if !f.hasReceipt {
		if err := in.Store.View(func(tx *store.Tx) error {
			var err error
			chunks, err = tx.FileChunks(f.SHA256)
			return err
		}); err != nil {
			return err
		}
	}
	// A publication started by this process's finish writes the receipt
	// for the first time; one started before is a retry.
	retry := f.rec.Publishing && !f.finished
	if !f.rec.Publishing {
		if err := in.Store.Update(func(tx *store.Tx) error {
			tx.CacheReads()
			r, err := tx.File(f.SHA256)
			if err != nil {
				return err
			}
			r.Publishing = true
			f.rec = r
			return tx.PutFile(r)
		}); err != nil {
			return err
		}
	}
	return in.writeReceipt(ctx, f.Name, esito.File(chunks...), retry)
}

// moveOut moves a file whose receipt is written to subfolder sub, with
// its companion, and marks it published.
func (in *Inbox) moveOut(ctx context.Context, f *File, sub string) error {
	// Where the file goes is recorded before moving it, so that a crash
	// between the move and markPublished is recognized later: by finish,
	// when this process committed the file, else here.
	to := f.rec.Moved
	if !f.finished || to == "" {
		var err error
		if to, err = in.freeName(ctx, sub, f.Name); err != nil {
			return err
		}
		if err := in.Store.Update(func(tx *store.Tx) error {
			tx.CacheReads()
			r, err := tx.File(f.SHA256)
			if err != nil {
				return err
			}
			r.Moved = to
			return tx.PutFile(r)
		}); err != nil {
			return err
		}
	}
	if err := in.moveCompanion(ctx, f.Path, to); err != nil {
		return err
	}
	if err := in.Drop.Rename(ctx, f.Path, to); err != nil {
		return fmt.Errorf("spostamento di %s in %s: %w", f.Path, to, err)
	}
	if in.Marks != nil {
		return in.Marks.add(in.Store, f, to)
	}
	return in.markPublished(f, to)
}

func (in *Inbox) markPublished(f *File, to string) error {
	return in.Store.Update(func(tx *store.Tx) error {
		tx.CacheReads()
		r, err := markIn(tx, f.SHA256, f.Path, to)
		if err == nil {
			f.rec = r
		}
		return err
	})
}

// markIn marks the file sha, read at path p and moved to to, published in
// tx, and returns its record.
func markIn(tx *store.Tx, sha, p, to string) (*store.InputFile, error) {
	r, err := tx.File(sha)
	if err != nil {
		return nil, err
	}
	r.State = store.FilePublished
	r.Moved = to
	r.Finished = tx.Now
	if err := tx.DeleteSighting(p); err != nil {
		return nil, err
	}
	return r, tx.PutFile(r)
}

// Marks gathers the files that the inboxes of one run have moved out, to
// mark them published in the store marksBatch at a time: one transaction
// (and one turn of the store's writer lock) for many small files. Until
// its batch is written a file's record says committed, with the place it
// was moved to; a stop before that is a stop between a move and its mark,
// which the next run completes (finishMoved), and a content met again in
// the run meanwhile is recognized the same way (completeMove). The run
// calls Flush once its inboxes are done. The zero value is ready.
type Marks struct {
	mu      sync.Mutex
	pending []mark
}

type mark struct{ sha, path, to string }

// marksBatch is how many moved files a transaction marks published.
const marksBatch = 32

// add records that f was moved to to, and writes the batch when it is
// full. f.rec becomes the record as it will be marked.
func (m *Marks) add(st *store.Store, f *File, to string) error {
	r := *f.rec
	r.State, r.Moved = store.FilePublished, to
	f.rec = &r
	m.mu.Lock()
	m.pending = append(m.pending, mark{f.SHA256, f.Path, to})
	var batch []mark
	if len(m.pending) >= marksBatch {
		batch, m.pending = m.pending, nil
	}
	m.mu.Unlock()
	return writeMarks(st, batch)
}

// Flush marks published the files moved out and not marked yet.
func (m *Marks) Flush(st *store.Store) error {
	m.mu.Lock()
	batch := m.pending
	m.pending = nil
	m.mu.Unlock()
	return writeMarks(st, batch)
}

func writeMarks(st *store.Store, batch []mark) error {
	if len(batch) == 0 {
		return nil
	}
	return st.Update(func(tx *store.Tx) error {
		tx.CacheReads()
		for _, k := range batch {
			if _, err := markIn(tx, k.sha, k.path, k.to); err != nil {
				return err
			}
		}
		return nil
	})
}

// freeName returns a path in subfolder sub for a file called name that no
// file occupies: name itself, or name with the time and a counter added.
func (in *Inbox) freeName(ctx context.Context, sub, name string) (string, error) {
	to := path.Join(in.Dir, sub, name)
	ext := path.Ext(name)
	stamp := in.now().In(in.loc()).Format("20060102-150405")
	for i := 1; ; i++ {
		_, err := in.Drop.Stat(ctx, to)
		if errors.Is(err, drop.ErrNotExist) {
			return to, nil
		}
		if err != nil {
			return "", fmt.Errorf("controllo di %s: %w", to, err)
		}
		suffix := "-" + stamp
		if i > 1 {
			suffix += fmt.Sprintf("-%d", i)
		}
		to = path.Join(in.Dir, sub, fitName(strings.TrimSuffix(name, ext), len(suffix+ext)+len(".asc"))+suffix+ext)
	}
}

// refuseUnread refuses a file without processing it: receipt with riga 0,
// file moved to scartati/.
func (in *Inbox) refuseUnread(ctx context.Context, p, name, code, msg string) error {
	in.log().Warn("file refused", "file", p, "code", code, "reason", msg)
	if err := in.writeReceipt(ctx, name, esito.Refused(code, msg), false); err != nil {
		return &partial{"file refused (" + code + "); its receipt could not be written, will retry", err}
	}
	moved := &partial{msg: "file refused (" + code + ") and its receipt written; moving it to scartati/ failed, will retry"}
	to, err := in.freeName(ctx, "scartati", name)
	if err != nil {
		moved.err = err
		return moved
	}
	// The history entry first: a crash before the move refuses the file
	// again (two entries), never none.
	if err := in.Store.Update(func(tx *store.Tx) error {
		if err := tx.DeleteSighting(p); err != nil {
			return err
		}
		return tx.Record(store.Source{Actor: in.actor(), File: p}, "file.scartato", "file", to, code+": "+msg)
	}); err != nil {
		moved.err = err
		return moved
	}
	if err := in.moveCompanion(ctx, p, to); err != nil {
		moved.err = err
		return moved
	}
	if err := in.Drop.Rename(ctx, p, to); err != nil {
		moved.err = fmt.Errorf("spostamento di %s in %s: %w", p, to, err)
		return moved
	}
	return nil
}

// partial is a failure after part of the handling of a file was done:
// msg, the log message, says what was done and what is tried again.
type partial struct {
	msg string
	err error
}

func (p *partial) Error() string { return p.err.Error() }
func (p *partial) Unwrap() error { return p.err }

// failureMessage is the log message of a file whose handling failed with
// err: what was done of it, when something was.
func failureMessage(err error) string {
	var p *partial
	if errors.As(err, &p) {
		return p.msg
	}
	return "file not processed, will retry"
}

// writeReceipt writes esiti/<name>.esito.csv. An earlier receipt of the
// same name (an earlier file dropped with that name) is kept: it is renamed
// with its own date before the new one takes its place.
//
// retry says that this file's publication was started before (and
// stopped): a receipt identical to data is then this file's own.
func (in *Inbox) writeReceipt(ctx context.Context, name string, data []byte, retry bool) error {
	name = fitName(name, len(".20060102-150405-99.esito.csv.tmp")+1)
	p := path.Join(in.Dir, "esiti", name+".esito.csv")
	if old, err := in.Drop.Stat(ctx, p); err == nil {
		if retry && old.Size == int64(len(data)) && in.sameContent(ctx, p, data) {
			return nil // written by this same file before a stop: nothing to do
		}
		stamp := old.ModTime.In(in.loc()).Format("20060102-150405")
		aside := path.Join(in.Dir, "esiti", name+"."+stamp+".esito.csv")
		for i := 2; ; i++ {
			if _, err := in.Drop.Stat(ctx, aside); err != nil {
				break
			}
			aside = path.Join(in.Dir, "esiti", fmt.Sprintf("%s.%s-%d.esito.csv", name, stamp, i))
		}
		if err := in.Drop.Rename(ctx, p, aside); err != nil {
			return fmt.Errorf("conservazione dell'esito precedente %s: %w", p, err)
		}
	}
	if err := in.Drop.Write(ctx, p, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("scrittura dell'esito %s: %w", p, err)
	}
	return nil
}

func (in *Inbox) actor() string {
	if in.Actor != "" {
		return in.Actor
	}
	return in.Kind
}

func (in *Inbox) loc() *time.Location {
	if in.Loc != nil {
		return in.Loc
	}
	return time.Local
}

// fetch copies a drop file to the spool, hashing it, and checks that it did
// not change meanwhile. It returns nil, nil for a file that changed, and
// for one that cannot be read as what its name says (readableAs) and that
// anprsec has not yet seen unchanged for Settle: a direct upload that
// paused may still be under way, and is left for the next look instead of
// being refused.
func (in *Inbox) fetch(ctx context.Context, p string, e drop.Entry) (*File, error) {
	if err := os.MkdirAll(in.spool(), 0o700); err != nil {
		return nil, err
	}
	rc, err := in.Drop.Open(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("apertura di %s: %w", p, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(in.spool(), "in-*"+strings.ToLower(filepath.Ext(e.Name)))
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	limit := e.Size + 1
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(rc, limit))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("scaricamento di %s: %w", p, err)
	}
	after, serr := in.Drop.Stat(ctx, p)
	if n != e.Size || serr != nil || after.Size != e.Size || !after.ModTime.Equal(e.ModTime) {
		os.Remove(tmp.Name())
		in.log().Info("file changed while reading, will retry", "file", p, "listed", e.Size, "read", n)
		return nil, nil
	}
	if !readableAs(e.Name, tmp.Name()) && !in.stillFor(p, e) {
		// The first sighting of a file that ready let through by its
		// modification time: from it, the file is read at a later look.
		in.sighting(p, e, in.now())
		os.Remove(tmp.Name())
		in.log().Info("file not readable as what its name says and not yet unchanged for drop.settle: left for the next look (an upload may still be under way)", "file", p, "settle", in.Settle)
		return nil, nil
	}
	sum, err := in.identity(e.Name, tmp.Name(), h.Sum(nil))
	if err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	return &File{Path: p, Name: e.Name, Local: tmp.Name(), SHA256: sum, Size: n, inbox: in}, nil
}

// identity is the identity of the file called name, copied to local, whose
// content has the SHA-256 raw: the SHA-256 of its canonical content when
// the inbox has Canonical and it gives one, else raw; in hexadecimal.
func (in *Inbox) identity(name, local string, raw []byte) (string, error) {
	if in.Canonical == nil {
		return hex.EncodeToString(raw), nil
	}
	data, err := os.ReadFile(local)
	if err != nil {
		return "", err
	}
	c := in.Canonical(name, data)
	if c == nil {
		return hex.EncodeToString(raw), nil
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// spool is this inbox's own folder for local copies.
func (in *Inbox) spool() string { return filepath.Join(in.SpoolDir, in.Kind) }

// cleanSpool removes copies left by a run that was killed. Runs of one job
// never overlap, so nothing else uses this folder now.
func (in *Inbox) cleanSpool() {
	old, _ := filepath.Glob(filepath.Join(in.spool(), "in-*"))
	for _, p := range old {
		os.Remove(p)
	}
}

// ContentLocks serializes the inboxes of one run that read at once over
// the files of one content: the second waits until the first has
// published, then finds the content's record as a run one folder after the
// other would (a duplicate, or a file refused whole, read again). Contents
// are spread over 256 locks by their hash; the zero value is ready.
type ContentLocks struct{ locks [256]sync.Mutex }

// lock locks the content sha (hexadecimal SHA-256) and returns its unlock;
// a nil set locks nothing.
func (c *ContentLocks) lock(sha string) func() {
	if c == nil {
		return func() {}
	}
	i := 0
	if b, err := hex.DecodeString(sha[:min(2, len(sha))]); err == nil && len(b) == 1 {
		i = int(b[0])
	}
	c.locks[i].Lock()
	return c.locks[i].Unlock
}

// Prepare does, for every folder of the inbox's kind, what Run does for its
// own folder before reading it: the spool's leftover copies removed and the
// interrupted publications completed. A job whose inboxes of one kind run
// at once (Shared) calls it once, before them; in.Dir is not used.
func (in *Inbox) Prepare(ctx context.Context) error {
	in.cleanSpool()
	return in.finishMoved(ctx, true)
}

// finishMoved completes the publication of files whose process stopped
// after moving them and before recording it: the receipt is written and the
// file is where the record says, only the record still says "committed".
// It looks at the files of in.Dir, or of every folder of the kind (all).
func (in *Inbox) finishMoved(ctx context.Context, all bool) error {
	var pending []*store.InputFile
	err := in.Store.View(func(tx *store.Tx) error {
		rs, err := tx.FilesOfKind(store.FileCommitted, in.Kind)
		for _, r := range rs {
			if r.Moved != "" && (all || path.Dir(r.Path) == in.Dir) {
				pending = append(pending, r)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range pending {
		if _, err := in.Drop.Stat(ctx, r.Path); err == nil {
			continue // still in the input folder: the next pass publishes it
		}
		if _, err := in.Drop.Stat(ctx, r.Moved); err != nil {
			continue
		}
		f := &File{Path: r.Path, Name: path.Base(r.Path), SHA256: r.SHA256, rec: r, inbox: in}
		if err := in.markPublished(f, r.Moved); err != nil {
			return err
		}
		in.log().Info("publication completed after a stop", "file", r.Path, "moved", r.Moved)
	}
	return nil
}

// sameContent reports whether the drop file p holds exactly data.
func (in *Inbox) sameContent(ctx context.Context, p string, data []byte) bool {
	rc, err := in.Drop.Open(ctx, p)
	if err != nil {
		return false
	}
	defer rc.Close()
	got, err := io.ReadAll(io.LimitReader(rc, int64(len(data))+1))
	return err == nil && bytes.Equal(got, data)
}

// maxNameBytes is the longest file name the file systems of a drop take.
const maxNameBytes = 255

// fitName shortens name, when name plus extra bytes would not fit in a file
// name, to a prefix and a hash of the whole name ("<prefix>~<8 hex>"), so
// that a receipt or a moved file of a file with a long but legal name can
// still be written, and stays distinct.
func fitName(name string, extra int) string {
	if len(name)+extra <= maxNameBytes {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	keep := maxNameBytes - extra - len("~12345678")
	for keep > 0 && !utf8.RuneStart(name[keep]) {
		keep--
	}
	return name[:max(keep, 0)] + "~" + hex.EncodeToString(sum[:4])
}
