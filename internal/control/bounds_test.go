package control

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
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

// shortTimeouts makes the write and answer timeouts short for one test.
func shortTimeouts(t *testing.T) {
	w, a := writeTimeout, answerTimeout
	writeTimeout, answerTimeout = 50*time.Millisecond, 50*time.Millisecond
	t.Cleanup(func() { writeTimeout, answerTimeout = w, a })
}

// rawRequest connects and sends a request, as a client that then does
// nothing the protocol asks of it.
func rawRequest(t *testing.T, p string) net.Conn {
	t.Helper()
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := WriteJSON(conn, FrameRequest, Request{Args: []string{"backup", "b.bin"}}); err != nil {
		t.Fatal(err)
	}
	return conn
}

// A client that reads the frames but never answers the file operation of
// its command does not hold the command: the operation fails and the
// command ends.
func TestClientThatNeverAnswersDoesNotHoldTheCommand(t *testing.T) {
	shortTimeouts(t)
	ended := make(chan error, 1)
	p, _ := serve(t, me(), func(_ context.Context, s *Session) int {
		_, err := s.FS().ReadFile("b.bin")
		ended <- err
		return 1
	})
	conn := rawRequest(t, p)
	go io.Copy(io.Discard, conn) // reads, answers nothing
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the file operation succeeded without an answer")
		}
	case <-time.After(time.Minute):
		t.Fatal("the command still waits for the answer")
	}
}

// A client that never reads what its command writes does not hold the
// command: its writes fail and the command ends.
func TestClientThatNeverReadsDoesNotHoldTheCommand(t *testing.T) {
	shortTimeouts(t)
	ended := make(chan error, 1)
	p, _ := serve(t, me(), func(_ context.Context, s *Session) int {
		block := bytes.Repeat([]byte("x"), chunk)
		for {
			if _, err := s.Stdout().Write(block); err != nil {
				ended <- err
				return 1
			}
		}
	})
	rawRequest(t, p) // reads nothing
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Fatal("the command still waits for the client to read")
	}
}

// Malformed frames (a request that is not JSON, a frame of an unknown
// type first, an answer that is not JSON, a truncated header) end only
// the session that sent them: no command runs for them, and the daemon
// keeps serving.
func TestMalformedFramesEndOnlyTheirSession(t *testing.T) {
	ran := make(chan string, 8)
	p, _ := serve(t, me(), func(_ context.Context, s *Session) int {
		if len(s.Request.Args) > 0 && s.Request.Args[0] == "leggi" {
			_, err := s.FS().ReadFile("x")
			if err == nil {
				ran <- "read with a malformed answer"
			}
			return 1
		}
		ran <- strings.Join(s.Request.Args, " ")
		return 0
	})
	send := func(frames ...[]byte) {
		conn, err := Dial(p)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, f := range frames {
			conn.Write(f)
		}
		conn.(*net.UnixConn).CloseWrite() // nothing more: the daemon reads the end
		io.Copy(io.Discard, conn)         // until the daemon closes
	}
	var notJSON, unknown, badAnswer bytes.Buffer
	WriteFrame(&notJSON, FrameRequest, []byte("{non è json"))
	WriteFrame(&unknown, 'Z', []byte("?"))
	WriteJSON(&badAnswer, FrameRequest, Request{Args: []string{"leggi"}})
	WriteFrame(&badAnswer, FrameAnswer, []byte("[1,2"))
	send(notJSON.Bytes())
	send(unknown.Bytes())
	send(badAnswer.Bytes())
	send([]byte{FrameRequest, 0, 0})
	conn, err := Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := Run(context.Background(), conn, Request{Args: []string{"ancora", "qui"}}, io.Discard, io.Discard, &Local{}); err != nil || code != 0 {
		t.Fatalf("a well-formed session after the malformed ones: %d, %v", code, err)
	}
	if got := <-ran; got != "ancora qui" {
		t.Fatalf("ran %q before the well-formed command", got)
	}
}
