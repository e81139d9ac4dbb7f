// Package bundle builds the ZIP of workstation certificates published to a
// comune: comuni/<ISTAT>/certificati/<ISTAT>-certificati-<YYYYMMDD-HHMMSS>.zip
// holding <code>.p12 for each certificate and password.txt.
//
// password.txt is UTF-8 with one "<code>;<password>" line per certificate,
// in the order of the entries, each line ending in LF ("\n", no CR).
//
// The ZIP is made with mholt/archives (Deflate) from in-memory files. Since
// archives.Zip.Archive swallows the error of its final close, the output
// writer records every write error, and the finished ZIP is re-opened with
// archive/zip and checked entry by entry (names, sizes, CRC-32 by reading
// each one fully, content) before it is handed back for publication.
package bundle

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/mholt/archives"
)

// Entry is one certificate of a bundle.
type Entry struct {
	Code     string // workstation code, the file is <code>.p12
	P12      []byte // PKCS#12 file
	Password string // its password
}

// PasswordFile is the name of the password list inside the ZIP.
const PasswordFile = "password.txt"

// Path returns the drop path of a comune's bundle with stamp YYYYMMDD-HHMMSS.
func Path(istat, stamp string) string {
	return path.Join("comuni", istat, "certificati", istat+"-certificati-"+stamp+".zip")
}

// PasswordText returns the content of password.txt for entries.
func PasswordText(entries []Entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		b.WriteString(e.Code + ";" + e.Password + "\n")
	}
	return b.Bytes()
}

// files lists the ZIP's members: name -> content, in order.
func files(entries []Entry) ([]string, map[string][]byte, error) {
	if len(entries) == 0 {
		return nil, nil, errors.New("bundle: nessun certificato")
	}
	names := make([]string, 0, len(entries)+1)
	content := make(map[string][]byte, len(entries)+1)
	for _, e := range entries {
		if e.Code == "" || strings.ContainsAny(e.Code, "/\\;\r\n") || strings.ContainsAny(e.Password, ";\r\n") {
			return nil, nil, fmt.Errorf("bundle: codice o password non sicuri per %q", e.Code)
		}
		n := e.Code + ".p12"
		if _, dup := content[n]; dup {
			return nil, nil, fmt.Errorf("bundle: codice %s presente due volte", e.Code)
		}
		names = append(names, n)
		content[n] = e.P12
	}
	names = append(names, PasswordFile)
	content[PasswordFile] = PasswordText(entries)
	return names, content, nil
}

// Build makes the ZIP of entries and verifies it. modTime is the time
// recorded for every member.
func Build(ctx context.Context, entries []Entry, modTime time.Time) ([]byte, error) {
	names, content, err := files(entries)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := write(ctx, &buf, names, content, modTime); err != nil {
		return nil, err
	}
	if err := verify(buf.Bytes(), names, content); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// write archives the members to w, returning any write error, including
// the one of the final close that archives.Zip.Archive does not return.
func write(ctx context.Context, w io.Writer, names []string, content map[string][]byte, modTime time.Time) error {
	list := make([]archives.FileInfo, 0, len(names))
	for _, n := range names {
		data := content[n]
		fi := memInfo{name: n, size: int64(len(data)), mod: modTime}
		list = append(list, archives.FileInfo{
			FileInfo:      fi,
			NameInArchive: n,
			Open:          func() (fs.File, error) { return &memFile{Reader: bytes.NewReader(data), info: fi}, nil },
		})
	}
	ew := &errWriter{w: w}
	err := archives.Zip{Compression: zip.Deflate}.Archive(ctx, ew, list)
	if err == nil {
		err = ew.err
	}
	if err != nil {
		return fmt.Errorf("bundle: scrittura dello ZIP: %w", err)
	}
	return nil
}

// Verify re-opens a finished ZIP and checks it holds exactly the members
// for entries, each one whole (CRC-32 checked by reading it fully) and with
// the expected content.
func Verify(zipData []byte, entries []Entry) error {
	names, content, err := files(entries)
	if err != nil {
		return err
	}
	return verify(zipData, names, content)
}

func verify(zipData []byte, names []string, content map[string][]byte) error {
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		return fmt.Errorf("bundle: lo ZIP non si apre: %w", err)
	}
	if len(zr.File) != len(names) {
		return fmt.Errorf("bundle: lo ZIP ha %d file, ne sono attesi %d", len(zr.File), len(names))
	}
	for i, f := range zr.File {
		if f.Name != names[i] {
			return fmt.Errorf("bundle: il file %d dello ZIP è %q, atteso %q", i, f.Name, names[i])
		}
		want := content[f.Name]
		if f.UncompressedSize64 != uint64(len(want)) {
			return fmt.Errorf("bundle: %s: dimensione %d, attesa %d", f.Name, f.UncompressedSize64, len(want))
		}
		if f.Method != zip.Deflate {
			return fmt.Errorf("bundle: %s: metodo %d, atteso Deflate", f.Name, f.Method)
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("bundle: %s: %w", f.Name, err)
		}
		got, err := io.ReadAll(rc) // archive/zip checks the CRC-32 at EOF
		rc.Close()
		if err != nil {
			return fmt.Errorf("bundle: %s: %w", f.Name, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("bundle: %s: il contenuto non corrisponde", f.Name)
		}
	}
	return nil
}

// errWriter keeps the first write error, which archives.Zip.Archive may
// swallow (its final close).
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

type memInfo struct {
	name string
	size int64
	mod  time.Time
}

func (m memInfo) Name() string       { return m.name }
func (m memInfo) Size() int64        { return m.size }
func (m memInfo) Mode() fs.FileMode  { return 0o600 }
func (m memInfo) ModTime() time.Time { return m.mod }
func (m memInfo) IsDir() bool        { return false }
func (m memInfo) Sys() any           { return nil }

type memFile struct {
	*bytes.Reader
	info memInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }
