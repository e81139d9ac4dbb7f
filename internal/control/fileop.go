package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// FileOp asks the client for one operation on the caller's files.
type FileOp struct {
	Op   string      `json:"op"` // lstat, mkdir, read, create, commit, abort, stdin
	ID   uint32      `json:"id,omitempty"`
	Path string      `json:"path,omitempty"`
	Perm fs.FileMode `json:"perm,omitempty"`
	N    int         `json:"n,omitempty"` // stdin: at most this many bytes
}

// wantsAnswer says whether the daemon waits for the client's Answer.
func (o FileOp) wantsAnswer() bool { return o.Op != "abort" }

// Answer is the client's answer to a FileOp.
type Answer struct {
	Err      string `json:"err,omitempty"`
	NotExist bool   `json:"not_exist,omitempty"` // Err is a missing file
	Exist    bool   `json:"exist,omitempty"`     // Err is a file already there
	Info     Info   `json:"info"`
	Data     []byte `json:"data,omitempty"`
	EOF      bool   `json:"eof,omitempty"` // stdin is at its end
}

// err rebuilds the client's error, with its message and its kind.
func (a *Answer) err() error {
	switch {
	case a.Err == "":
		return nil
	case a.NotExist:
		return &remoteError{a.Err, fs.ErrNotExist}
	case a.Exist:
		return &remoteError{a.Err, fs.ErrExist}
	}
	return &remoteError{a.Err, nil}
}

// remoteError is an error of the client, as its message and kind.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// errAnswer is the Answer carrying err.
func errAnswer(err error) Answer {
	return Answer{Err: err.Error(), NotExist: errors.Is(err, fs.ErrNotExist), Exist: errors.Is(err, fs.ErrExist)}
}

// clientFiles runs the FileOps of one session on the caller's side.
type clientFiles struct {
	fs    FS
	files map[uint32]File
	werr  map[uint32]error // the first failed write of a file, told at commit
}

// do runs op; the Answer is sent when op wants one.
func (c *clientFiles) do(op FileOp) Answer {
	switch op.Op {
	case "lstat":
		info, err := c.fs.Lstat(op.Path)
		if err != nil {
			return errAnswer(err)
		}
		return Answer{Info: info}
	case "mkdir":
		if err := c.fs.MkdirAll(op.Path, op.Perm); err != nil {
			return errAnswer(err)
		}
	case "read":
		data, err := c.fs.ReadFile(op.Path)
		if err != nil {
			return errAnswer(err)
		}
		return Answer{Data: data}
	case "create":
		return c.create(op)
	case "commit":
		return c.commit(op.ID)
	case "abort":
		if f, ok := c.files[op.ID]; ok {
			delete(c.files, op.ID)
			f.Abort()
		}
	case "stdin":
		return c.stdin(op.N)
	default:
		return errAnswer(fmt.Errorf("control: unknown file operation %q", op.Op))
	}
	return Answer{}
}

// create starts the file op.ID at op.Path.
func (c *clientFiles) create(op FileOp) Answer {
	if _, dup := c.files[op.ID]; dup {
		return errAnswer(fmt.Errorf("control: file %d created twice", op.ID))
	}
	f, err := c.fs.Create(op.Path, op.Perm)
	if err != nil {
		return errAnswer(err)
	}
	c.files[op.ID] = f
	return Answer{}
}

// commit puts the file id in place, unless one of its writes failed.
func (c *clientFiles) commit(id uint32) Answer {
	f, ok := c.files[id]
	if !ok {
		return errAnswer(fmt.Errorf("control: no file %d", id))
	}
	delete(c.files, id)
	if err := c.werr[id]; err != nil {
		f.Abort()
		return errAnswer(err)
	}
	if err := f.Commit(); err != nil {
		return errAnswer(err)
	}
	return Answer{}
}

// stdin reads at most n bytes of the caller's standard input.
func (c *clientFiles) stdin(n int) Answer {
	buf := make([]byte, min(max(n, 1), chunk))
	k, err := c.fs.Stdin().Read(buf)
	a := Answer{Data: buf[:k]}
	if errors.Is(err, io.EOF) {
		a.EOF = true
	} else if err != nil {
		return errAnswer(err)
	}
	return a
}

// write appends a Write frame's bytes to its file.
func (c *clientFiles) write(p []byte) {
	if len(p) < 4 {
		return
	}
	id := binary.BigEndian.Uint32(p)
	f, ok := c.files[id]
	if !ok || c.werr[id] != nil {
		return
	}
	if _, err := f.Write(p[4:]); err != nil {
		c.werr[id] = err
	}
}

// abortAll removes the files a session left uncommitted.
func (c *clientFiles) abortAll() {
	for id, f := range c.files {
		f.Abort()
		delete(c.files, id)
	}
}
