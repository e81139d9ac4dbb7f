//go:build !linux

package drop

import (
	"errors"
	"io"
)

// Outside Linux every Local uses os.Root (see beneath_linux.go).

var errNoBeneath = errors.New("openat2 non disponibile")

func (l *Local) listBeneath(string) ([]Entry, error)               { return nil, errNoBeneath }
func (l *Local) statBeneath(string) (Entry, error)                 { return Entry{}, errNoBeneath }
func (l *Local) openBeneath(string, string) (io.ReadCloser, error) { return nil, errNoBeneath }
func (l *Local) writeBeneath(string, io.Reader) error              { return errNoBeneath }
func (l *Local) renameBeneath(string, string) error                { return errNoBeneath }
func (l *Local) removeBeneath(string) error                        { return errNoBeneath }
