package drop

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// flaky is a Drop whose connection breaks once.
type flaky struct {
	Local
	broken bool
	closed bool
}

func (f *flaky) List(ctx context.Context, dir string) ([]Entry, error) {
	if f.broken {
		return nil, errors.New("connection lost")
	}
	return f.Local.List(ctx, dir)
}

func (f *flaky) Close() error { f.closed = true; return nil }

func TestLazyReconnects(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var dials []*flaky
	l := &Lazy{Name: "test", Dial: func(context.Context) (Drop, error) {
		f := &flaky{Local: Local{Root: root}}
		dials = append(dials, f)
		return f, nil
	}}
	if len(dials) != 0 {
		t.Fatal("dialed before use")
	}
	if err := l.Write(ctx, "a.txt", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// A missing file is an answer, not a broken connection.
	if _, err := l.Open(ctx, "missing"); err == nil {
		t.Fatal("opened a missing file")
	}
	if len(dials) != 1 {
		t.Fatalf("dials = %d after a not-found, want 1", len(dials))
	}
	dials[0].broken = true
	if _, err := l.List(ctx, "."); err == nil {
		t.Fatal("broken connection listed")
	}
	es, err := l.List(ctx, ".")
	if err != nil || len(es) != 1 || len(dials) != 2 {
		t.Fatalf("after the break: %v, %v, %d dials; want a new connection", es, err, len(dials))
	}
	rc, err := l.Open(ctx, "a.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "x" {
		t.Errorf("read %q", b)
	}
	l.Close()
}

func TestLazyDialError(t *testing.T) {
	boom := errors.New("connection refused")
	l := &Lazy{Name: "sftp://x", Dial: func(context.Context) (Drop, error) { return nil, boom }}
	if _, err := l.List(context.Background(), "."); !errors.Is(err, boom) {
		t.Fatalf("List = %v", err)
	}
	if l.String() != "sftp://x" {
		t.Errorf("String = %q", l.String())
	}
}

// cutReader fails after its first read, as a download cut by the network.
type cutReader struct{ n int }

func (c *cutReader) Read(b []byte) (int, error) {
	if c.n > 0 {
		return 0, errors.New("connection reset by peer")
	}
	c.n++
	return copy(b, "abc"), nil
}

func (c *cutReader) Close() error { return nil }

type cutOpen struct{ flaky }

func (c *cutOpen) Open(context.Context, string) (io.ReadCloser, error) { return &cutReader{}, nil }

// A read that fails mid-download drops the connection: the next call dials
// again rather than failing on a dead connection.
func TestLazyReadFailureRedials(t *testing.T) {
	ctx := context.Background()
	dials := 0
	l := &Lazy{Name: "test", Dial: func(context.Context) (Drop, error) {
		dials++
		return &cutOpen{flaky{Local: Local{Root: t.TempDir()}}}, nil
	}}
	rc, err := l.Open(ctx, "a.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err == nil || string(b) != "abc" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if _, err := l.List(ctx, "."); err != nil || dials != 2 {
		t.Fatalf("after the cut: %v, %d dials; want a new connection", err, dials)
	}
	// io.EOF is the end of a file, not a broken connection.
	rc, _ = l.Open(ctx, "a.txt")
	rc.Read(make([]byte, 10))
	if _, err := l.List(ctx, "."); err != nil || dials != 2 {
		t.Fatalf("after a good read: %v, %d dials", err, dials)
	}
	l.Close()
}
