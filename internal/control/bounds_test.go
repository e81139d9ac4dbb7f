package control

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// A header announcing the largest frame, with no bytes after it, does not
// make the reader allocate the announced length: a caller cannot make the
// daemon hold memory it never sends.
func TestFrameHeaderAloneDoesNotAllocateItsLength(t *testing.T) {
	hdr := []byte{FrameAnswer, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], MaxFrame)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 8 {
		if _, _, err := ReadFrame(bytes.NewReader(hdr)); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%v, want ErrUnexpectedEOF", err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Fatalf("8 headers alone allocated %d bytes", got)
	}
}

// A request larger than MaxRequest is refused before any command runs.
func TestOversizedRequestRunsNoCommand(t *testing.T) {
	ran := make(chan struct{}, 1)
	p, _ := serve(t, me(), func(context.Context, *Session) int { ran <- struct{}{}; return 0 })
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	code, err := Run(context.Background(), conn, Request{Args: []string{"postazioni", strings.Repeat("x", 2*MaxRequest)}}, io.Discard, io.Discard, &Local{})
	if err == nil && code == 0 {
		t.Fatal("the oversized request ended with exit 0")
	}
	select {
	case <-ran:
		t.Fatal("the command of an oversized request ran")
	default:
	}
}
