package sftptest

import (
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/pkg/sftp"
)

// jailFS serves SFTP requests from a folder through os.Root, so no path or
// symlink leads outside it. Rename refuses an existing target, as OpenSSH
// does; PosixRename replaces it.
type jailFS struct {
	root *os.Root

	// readHook, if set, wraps every file opened for reading.
	readHook func(io.ReaderAt) io.ReaderAt
	// writeHook, if set, wraps every file opened for writing.
	writeHook func(io.WriterAt) io.WriterAt
}

func (j *jailFS) handlers() sftp.Handlers {
	return sftp.Handlers{FileGet: j, FilePut: j, FileCmd: j, FileList: j}
}

// rel maps a request path (absolute, cleaned by the server) into the root.
func rel(p string) string {
	r := strings.TrimPrefix(path.Clean("/"+p), "/")
	if r == "" {
		return "."
	}
	return r
}

func (j *jailFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := j.root.Open(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	if j.readHook != nil {
		return j.readHook(f), nil
	}
	return f, nil
}

func (j *jailFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	pf := r.Pflags()
	flags := os.O_WRONLY
	if pf.Read {
		flags = os.O_RDWR
	}
	if pf.Creat {
		flags |= os.O_CREATE
	}
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	f, err := j.root.OpenFile(rel(r.Filepath), flags, 0o644)
	if err != nil {
		return nil, err
	}
	if j.writeHook != nil {
		return j.writeHook(f), nil
	}
	return f, nil
}

func (j *jailFS) Filecmd(r *sftp.Request) error {
	p := rel(r.Filepath)
	switch r.Method {
	case "Setstat":
		if r.AttrFlags().Permissions {
			return j.root.Chmod(p, r.Attributes().FileMode().Perm())
		}
		return nil
	case "Rename":
		if _, err := j.root.Lstat(rel(r.Target)); err == nil {
			return &os.PathError{Op: "rename", Path: r.Target, Err: syscall.EEXIST}
		}
		return j.root.Rename(p, rel(r.Target))
	case "Rmdir", "Remove":
		return j.root.Remove(p)
	case "Mkdir":
		return j.root.Mkdir(p, 0o755)
	case "Symlink":
		return j.root.Symlink(r.Filepath, rel(r.Target))
	}
	return sftp.ErrSSHFxOpUnsupported
}

func (j *jailFS) PosixRename(r *sftp.Request) error {
	return j.root.Rename(rel(r.Filepath), rel(r.Target))
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(ls []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[off:])
	if n < len(ls) {
		return n, io.EOF
	}
	return n, nil
}

func (j *jailFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := rel(r.Filepath)
	switch r.Method {
	case "List":
		f, err := j.root.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		des, err := f.ReadDir(-1)
		if err != nil {
			return nil, err
		}
		var out listerAt
		for _, de := range des {
			if fi, err := de.Info(); err == nil { // lstat
				out = append(out, fi)
			}
		}
		return out, nil
	case "Stat":
		fi, err := j.root.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

func (j *jailFS) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := j.root.Lstat(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return listerAt{fi}, nil
}
