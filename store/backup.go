package store

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Badger's DB.Backup writes plaintext even for an encrypted store, so a
// backup is sealed here with XChaCha20-Poly1305 in 64 KiB chunks (a STREAM
// construction: the nonce carries a random prefix, the chunk counter and a
// last-chunk flag, so chunks cannot be reordered, dropped or truncated).
//
//	file  = magic(16) | prefix(15) | chunk*
//	chunk = length(4, big-endian, of the ciphertext) | ciphertext

var backupMagic = []byte("ANPRSEC-BACKUP1\n")

const backupChunk = 64 << 10

// Backup writes a sealed full backup of the store to w.
func (s *Store) Backup(w io.Writer, key []byte) error {
	sw, err := newSealWriter(w, key)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(sw, backupChunk)
	if _, err := s.db.Backup(bw, 0); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return sw.Close()
}

// Restore loads a sealed backup into the store, which should be empty.
func (s *Store) Restore(r io.Reader, key []byte) error {
	sr, err := newSealReader(r, key)
	if err != nil {
		return err
	}
	// The seal check value init wrote is this store's; the backup's own
	// (if any) replaces it, whatever their versions.
	if err := s.db.DropPrefix([]byte("m/" + sealCheckMeta)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := s.db.Load(sr, 256); err != nil {
		if sr.err != nil {
			return sr.err
		}
		return fmt.Errorf("restore: %w", err)
	}
	if sr.err != nil && !errors.Is(sr.err, io.EOF) {
		return sr.err
	}
	if !sr.done {
		return errors.New("restore: il backup è troncato")
	}
	return nil
}

// IsEmpty reports whether the store holds no key but, at most, its seal
// check value (see CheckSealKey).
func (s *Store) IsEmpty() (bool, error) {
	empty := true
	err := s.View(func(tx *Tx) error {
		return tx.scan("", false, func(k string, _ []byte) (bool, error) {
			if k == "m/"+sealCheckMeta {
				return true, nil // written by init: a restore replaces it with the backup's
			}
			empty = false
			return false, nil
		})
	})
	return empty, err
}

type sealWriter struct {
	w    io.Writer
	aead interface {
		Seal(dst, nonce, p, ad []byte) []byte
	}
	prefix [15]byte
	n      uint64
	buf    []byte
}

func newSealWriter(w io.Writer, key []byte) (*sealWriter, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	sw := &sealWriter{w: w, aead: a}
	if _, err := rand.Read(sw.prefix[:]); err != nil {
		return nil, err
	}
	if _, err := w.Write(append(append([]byte{}, backupMagic...), sw.prefix[:]...)); err != nil {
		return nil, err
	}
	return sw, nil
}

func streamNonce(prefix [15]byte, n uint64, last bool) []byte {
	nonce := make([]byte, 24)
	copy(nonce, prefix[:])
	binary.BigEndian.PutUint64(nonce[15:23], n)
	if last {
		nonce[23] = 1
	}
	return nonce
}

func (sw *sealWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		room := backupChunk - len(sw.buf)
		if room > len(p) {
			room = len(p)
		}
		sw.buf = append(sw.buf, p[:room]...)
		p = p[room:]
		if len(sw.buf) == backupChunk && len(p) > 0 {
			if err := sw.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}

func (sw *sealWriter) flush(last bool) error {
	ct := sw.aead.Seal(nil, streamNonce(sw.prefix, sw.n, last), sw.buf, nil)
	sw.n++
	sw.buf = sw.buf[:0]
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(ct)))
	if _, err := sw.w.Write(l[:]); err != nil {
		return err
	}
	_, err := sw.w.Write(ct)
	return err
}

// Close writes the last chunk (possibly empty).
func (sw *sealWriter) Close() error { return sw.flush(true) }

type sealReader struct {
	r    *bufio.Reader
	aead interface {
		Open(dst, nonce, c, ad []byte) ([]byte, error)
	}
	prefix [15]byte
	n      uint64
	buf    []byte
	done   bool
	err    error
}

func newSealReader(r io.Reader, key []byte) (*sealReader, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	sr := &sealReader{r: bufio.NewReader(r), aead: a}
	head := make([]byte, len(backupMagic)+15)
	if _, err := io.ReadFull(sr.r, head); err != nil || string(head[:len(backupMagic)]) != string(backupMagic) {
		return nil, errors.New("restore: non è un file di backup di anprsec")
	}
	copy(sr.prefix[:], head[len(backupMagic):])
	return sr, nil
}

func (sr *sealReader) Read(p []byte) (int, error) {
	for len(sr.buf) == 0 {
		if sr.done {
			return 0, io.EOF
		}
		if sr.err != nil {
			return 0, sr.err
		}
		var l [4]byte
		if _, err := io.ReadFull(sr.r, l[:]); err != nil {
			sr.err = errors.New("restore: il backup è troncato")
			return 0, sr.err
		}
		size := binary.BigEndian.Uint32(l[:])
		if size > backupChunk+64 {
			sr.err = errors.New("restore: backup danneggiato (blocco troppo grande)")
			return 0, sr.err
		}
		ct := make([]byte, size)
		if _, err := io.ReadFull(sr.r, ct); err != nil {
			sr.err = errors.New("restore: il backup è troncato")
			return 0, sr.err
		}
		pt, err := sr.aead.Open(nil, streamNonce(sr.prefix, sr.n, false), ct, nil)
		if err != nil {
			pt, err = sr.aead.Open(nil, streamNonce(sr.prefix, sr.n, true), ct, nil)
			if err != nil {
				sr.err = errors.New("restore: il backup non si decifra (keys/backup.key sbagliata, o file alterato)")
				return 0, sr.err
			}
			sr.done = true
		}
		sr.n++
		sr.buf = pt
	}
	n := copy(p, sr.buf)
	sr.buf = sr.buf[n:]
	return n, nil
}
