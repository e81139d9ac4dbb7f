package drop

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"sync"
)

// Lazy is a Drop that connects on first use and reconnects after a
// connection fails: a remote drop (SFTP) that went away comes back at the
// next job run without restarting the daemon, and commands that never touch
// the drop never connect.
type Lazy struct {
	Name string                                  // for String() before the first connection
	Dial func(ctx context.Context) (Drop, error) // opens a new connection

	mu  sync.Mutex
	cur Drop
}

func (l *Lazy) get(ctx context.Context) (Drop, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		d, err := l.Dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, Unavailable(err) // the drop cannot be reached: no file's fault
		}
		l.cur = d
	}
	return l.cur, nil
}

// check drops the connection after an error that is not about one file, so
// the next call dials again.
func (l *Lazy) check(d Drop, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrUnsafePath) || errors.Is(err, context.Canceled) {
		return err
	}
	l.mu.Lock()
	if l.cur == d {
		l.cur = nil
		go d.Close()
	}
	l.mu.Unlock()
	return err
}

// List implements Drop.
func (l *Lazy) List(ctx context.Context, dir string) ([]Entry, error) {
	d, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	es, err := d.List(ctx, dir)
	return es, l.check(d, err)
}

// Open implements Drop.
func (l *Lazy) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	d, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := d.Open(ctx, name)
	if err != nil {
		return nil, l.check(d, err)
	}
	return &lazyReader{ReadCloser: rc, l: l, d: d}, nil
}

// lazyReader is a file opened through a Lazy: a failed read (a connection
// cut mid-download) drops the connection too, so the next call dials again
// instead of failing on a dead connection.
type lazyReader struct {
	io.ReadCloser
	l *Lazy
	d Drop
}

func (r *lazyReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	if err != nil && err != io.EOF {
		r.l.check(r.d, err)
	}
	return n, err
}

// Write implements Drop.
func (l *Lazy) Write(ctx context.Context, name string, r io.Reader) error {
	d, err := l.get(ctx)
	if err != nil {
		return err
	}
	return l.check(d, d.Write(ctx, name, r))
}

// Rename implements Drop.
func (l *Lazy) Rename(ctx context.Context, from, to string) error {
	d, err := l.get(ctx)
	if err != nil {
		return err
	}
	return l.check(d, d.Rename(ctx, from, to))
}

// Stat implements Drop.
func (l *Lazy) Stat(ctx context.Context, name string) (Entry, error) {
	d, err := l.get(ctx)
	if err != nil {
		return Entry{}, err
	}
	e, err := d.Stat(ctx, name)
	return e, l.check(d, err)
}

// Remove implements Drop.
func (l *Lazy) Remove(ctx context.Context, name string) error {
	d, err := l.get(ctx)
	if err != nil {
		return err
	}
	return l.check(d, d.Remove(ctx, name))
}

func (l *Lazy) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		return l.cur.String()
	}
	return l.Name
}

// Close closes the current connection, if any.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		return nil
	}
	err := l.cur.Close()
	l.cur = nil
	return err
}
