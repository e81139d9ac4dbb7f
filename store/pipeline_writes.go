package store

import (
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

// writes returns the write transaction of pt's writes, not submitted.
func (p *Pipeline) writes(pt *pipeTx) (*badger.Txn, error) {
	wtx := p.nextW
	p.nextW = nil
	if wtx == nil {
		p.wait() // its error is Update's
		wtx = p.s.db.NewTransaction(true)
	}
	for _, k := range pt.keys {
		o := pt.own[k]
		var err error
		if o.del {
			err = wtx.Delete([]byte(k))
		} else {
			err = wtx.Set([]byte(k), o.val)
		}
		if err != nil {
			wtx.Discard()
			if errors.Is(err, badger.ErrTxnTooBig) {
				err = errors.New("archivio: transazione troppo grande (ridurre census.chunk_rows)")
			}
			return nil, err
		}
	}
	return wtx, nil
}
