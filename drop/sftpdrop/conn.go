package sftpdrop

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// watchConn is the TCP connection under the SSH client. It bounds every
// operation in time, because neither pkg/sftp nor x/crypto/ssh has
// timeouts of their own:
//
//   - every Write gets a write deadline of timeout, so a server that stops
//     reading (full TCP window) cannot block a writer forever;
//   - while at least one operation is in flight, the read deadline is
//     timeout after the later of the oldest operation's start and the last
//     progress of the SFTP stream. When no operation is in flight there is
//     no read deadline: an idle connection is fine (keepalives watch it).
//
// Progress is counted on the SFTP stream (see progressReader), not on raw
// TCP bytes: a server whose SSH layer still answers keepalives while its
// SFTP side hangs must time out too. When a deadline expires the SSH
// transport fails, which fails every pending and later operation.
type watchConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex
	next     uint64
	ops      map[uint64]time.Time // operations in flight, by start time
	progress time.Time            // last progress of the SFTP stream

	expired atomic.Bool // a deadline expired: the server stalled
}

func newWatchConn(c net.Conn, timeout time.Duration) *watchConn {
	return &watchConn{Conn: c, timeout: timeout, ops: make(map[uint64]time.Time)}
}

// begin marks the start of an operation; end(id) must follow.
func (c *watchConn) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	c.ops[c.next] = time.Now()
	c.rearmLocked()
	return c.next
}

// end marks the end of the operation begin returned id for.
func (c *watchConn) end(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ops, id)
	c.rearmLocked()
}

// touch records progress of the SFTP stream.
func (c *watchConn) touch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress = time.Now()
	if len(c.ops) > 0 {
		c.rearmLocked()
	}
}

func (c *watchConn) rearmLocked() {
	if len(c.ops) == 0 {
		c.Conn.SetReadDeadline(time.Time{})
		return
	}
	var oldest time.Time
	for _, t := range c.ops {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if c.progress.After(oldest) {
		oldest = c.progress
	}
	c.Conn.SetReadDeadline(oldest.Add(c.timeout))
}

func (c *watchConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.expired.Store(true)
	}
	return n, err
}

func (c *watchConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.expired.Store(true)
	}
	return n, err
}

// progressReader is the SFTP stream from the server; every read that
// returns data is progress.
type progressReader struct {
	r io.Reader
	c *watchConn
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.c.touch()
	}
	return n, err
}
