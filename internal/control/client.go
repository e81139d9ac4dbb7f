package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Dial connects to the daemon's socket at path. An error means that no
// daemon answers there (no socket, or a stale one left by a killed daemon).
func Dial(path string) (net.Conn, error) {
	return net.DialTimeout("unix", path, 5*time.Second)
}

// ErrLost is a session the daemon ended without an exit code (it stopped,
// or it was killed, while the command ran).
var ErrLost = errors.New("il daemon ha chiuso la connessione prima della fine del comando (fermato o riavviato?): controlla con anprsec status e nel suo log se il comando ha avuto effetto")

// Run plays one session on conn: it sends req, copies the command's
// stdout and stderr to the given writers, does on fsys the file operations
// the daemon asks for, and returns the command's exit code. When ctx ends
// the connection is closed, which cancels the command in the daemon.
func Run(ctx context.Context, conn net.Conn, req Request, stdout, stderr io.Writer, fsys FS) (int, error) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	files := &clientFiles{fs: fsys, files: map[uint32]File{}, werr: map[uint32]error{}}
	defer files.abortAll()
	// A daemon that refuses the caller says why and closes before reading
	// the request: its frames are read even when the request could not be
	// written.
	werr := WriteJSON(conn, FrameRequest, req)
	for {
		typ, p, err := ReadFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return 1, ctx.Err()
			}
			if werr != nil {
				return 1, fmt.Errorf("socket di controllo: %w", werr)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return 1, ErrLost
			}
			return 1, fmt.Errorf("socket di controllo: %w", err)
		}
		if done, code, err := play(conn, files, typ, p, stdout, stderr); done || err != nil {
			return code, err
		}
	}
}

// play plays one frame of the daemon; done is set by the exit frame.
func play(conn net.Conn, files *clientFiles, typ byte, p []byte, stdout, stderr io.Writer) (done bool, code int, err error) {
	switch typ {
	case FrameStdout:
		stdout.Write(p)
	case FrameStderr:
		stderr.Write(p)
	case FrameWrite:
		files.write(p)
	case FrameFileOp:
		var op FileOp
		if err := json.Unmarshal(p, &op); err != nil {
			return false, 1, fmt.Errorf("socket di controllo: %w", err)
		}
		a := files.do(op)
		if op.wantsAnswer() {
			if err := WriteJSON(conn, FrameAnswer, a); err != nil {
				return false, 1, fmt.Errorf("socket di controllo: %w", err)
			}
		}
	case FrameExit:
		var e Exit
		if err := json.Unmarshal(p, &e); err != nil {
			return false, 1, fmt.Errorf("socket di controllo: %w", err)
		}
		return true, e.Code, nil
	default:
		return false, 1, fmt.Errorf("socket di controllo: messaggio inatteso %q dal daemon", typ)
	}
	return false, 0, nil
}
