// Package httpserve runs an HTTP server until its context is done: the
// loopback ops server and the public PKI server share it.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Serve serves hs on ln until ctx is done, then shuts it down (in-flight
// requests get a few seconds). It returns nil after a shutdown.
func Serve(ctx context.Context, hs *http.Server, ln net.Listener) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}
