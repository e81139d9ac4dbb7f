package control

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
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

// A caller that keeps many sessions open gets at most
// MaxSessionsPerUser of them: the next is refused at once, with the
// reason, and a session that ends lets a new command run.
func TestCallerHoldingSessionsIsRefusedPastTheBound(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	p, _ := serve(t, me(), func(_ context.Context, s *Session) int {
		if len(s.Request.Args) > 0 && s.Request.Args[0] == "tieni" {
			started <- struct{}{}
			<-release
		}
		return 0
	})
	t.Cleanup(releaseAll) // before the server stops (cleanups run last first), even on a failure
	done := make(chan error, MaxSessionsPerUser)
	for range MaxSessionsPerUser {
		conn, err := Dial(p)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := Run(context.Background(), conn, Request{Args: []string{"tieni"}}, io.Discard, io.Discard, &Local{})
			done <- err
		}()
		<-started
	}
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	code, err := Run(context.Background(), conn, Request{Args: []string{"postazioni", "list"}}, io.Discard, &errb, &Local{})
	if err != nil || code != 1 || !strings.Contains(errb.String(), "troppi comandi in corso") {
		t.Fatalf("a session past the bound: exit %d, %v, %q", code, err, errb.String())
	}
	release <- struct{}{} // one held session ends
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for { // its end is counted right after its exit code is sent
		conn, err := Dial(p)
		if err != nil {
			t.Fatal(err)
		}
		if code, err := Run(context.Background(), conn, Request{}, io.Discard, io.Discard, &Local{}); err != nil {
			t.Fatal(err)
		} else if code == 0 {
			break
		}
	}
	releaseAll()
	for range MaxSessionsPerUser - 1 {
		<-done
	}
}
