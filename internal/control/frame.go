// Package control is the control socket of the daemon: the framing the CLI
// and `anprsec run` speak over a Unix socket, the listener (modes, group,
// stale sockets), the caller's identity from the peer credentials, and the
// files of the caller that the daemon reads and writes through the CLI
// (docs/architecture.md#the-control-socket).
//
// A session is one command: the client sends a Request (its arguments),
// the daemon runs the command and sends its stdout and stderr as frames,
// asks the client for the caller's files when the command reads or writes
// one (FileOp, answered by an Answer), and ends with the exit code.
package control

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Frame types. Each frame is its type (one byte), the length of its
// payload (four bytes, big endian) and the payload.
const (
	FrameRequest = 'R' // client → daemon: a JSON Request, the first frame
	FrameStdout  = 'O' // daemon → client: bytes of the command's stdout
	FrameStderr  = 'E' // daemon → client: bytes of the command's stderr
	FrameFileOp  = 'F' // daemon → client: a JSON FileOp
	FrameWrite   = 'W' // daemon → client: 4 bytes of file id, then bytes to append to that file
	FrameAnswer  = 'A' // client → daemon: the JSON Answer of the last FileOp that wants one
	FrameExit    = 'X' // daemon → client: a JSON Exit, the last frame
)

// MaxFrame bounds a frame's payload: a caller's file read through the
// socket (ReadFile) is at most this large, less the JSON around it.
const MaxFrame = 64 << 20

// chunk is the largest data frame written (stdout, stderr, file bytes).
const chunk = 256 << 10

// Request is what the client asks: the command line, as typed after
// "anprsec", and where it runs.
type Request struct {
	Args []string `json:"args"`
	// Cwd is the caller's working directory, for the messages only: the
	// caller's files are opened by the client, in its own directory.
	Cwd string `json:"cwd"`
	// Terminal says whether the caller's stderr is a terminal (progress
	// bars are drawn only there).
	Terminal bool `json:"terminal"`
	// DataDir is the data dir of the caller's config: the daemon refuses
	// a caller that expects another store.
	DataDir string `json:"data_dir"`
}

// Exit ends a session with the command's exit code.
type Exit struct {
	Code int `json:"code"`
}

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("control: frame of %d bytes, more than %d", len(payload), MaxFrame)
	}
	hdr := [5]byte{typ}
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(append(hdr[:], payload...)); err != nil {
		return err
	}
	return nil
}

// WriteJSON writes one frame whose payload is v in JSON.
func WriteJSON(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, typ, b)
}

// ReadFrame reads one frame; a payload over MaxFrame is an error.
func ReadFrame(r io.Reader) (byte, []byte, error) { return readFrameMax(r, MaxFrame) }

// MaxRequest bounds the payload of a Request frame: a command line, its
// folder and the data dir; the daemon reads no more from a caller before
// it knows the command.
const MaxRequest = 1 << 20

// readFrameMax reads one frame whose payload is at most max bytes. The
// payload's memory grows as its bytes arrive: a header alone, whatever
// length it announces, makes the reader allocate little.
func readFrameMax(r io.Reader, max uint32) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > max {
		return 0, nil, fmt.Errorf("control: frame of %d bytes, more than %d", n, max)
	}
	var b bytes.Buffer
	b.Grow(int(min(n, chunk)))
	if k, err := io.CopyN(&b, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) && k < int64(n) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], b.Bytes(), nil
}
