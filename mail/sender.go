package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"syscall"
)

// Sender delivers one raw RFC 5322 message (as made by Compose) to the
// envelope recipients. from and to are bare addresses ("a@b.it"); a display
// name form ("Nome <a@b.it>") is accepted and reduced to the address.
type Sender interface {
	Send(ctx context.Context, from string, to []string, raw []byte) error
}

// Error is a delivery failure of the SMTP sender.
type Error struct {
	// Server is the "host:port" that was contacted.
	Server string
	// Op is the step that failed: "connect" (dial, greeting, EHLO,
	// STARTTLS, AUTH), "MAIL", "RCPT", "DATA", or "validate" for input
	// refused before any connection.
	Op string
	// Code is the SMTP reply code, 0 when the server gave none.
	Code int
	// Text is the server's reply text, if any.
	Text string
	// Err is the underlying error.
	Err error

	temporary bool
}

// Error describes the failure with the server address, the step (in
// Italian, as the operator reads it) and the SMTP reply.
func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("server SMTP %s: %s: %d %s", e.Server, opIT(e.Op), e.Code, e.Text)
	}
	return fmt.Sprintf("server SMTP %s: %s: %v", e.Server, opIT(e.Op), e.Err)
}

// opIT names a step of Error.Op for the operator; the SMTP commands keep
// their names.
func opIT(op string) string {
	switch op {
	case "connect":
		return "connessione"
	case "validate":
		return "messaggio non inviabile"
	}
	return op
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether retrying later may succeed.
func (e *Error) Temporary() bool { return e.temporary }

// Temporary reports whether a delivery error is worth retrying later:
// true for connection failures (refused, reset, unreachable), timeouts,
// cancellation and 4xx SMTP replies; false for 5xx replies (e.g. 550
// unknown recipient), invalid input and unknown errors.
//
// A timeout after the message body was sent is ambiguous (the server may
// have accepted it): a retry may deliver a duplicate with the same
// Message-ID.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.temporary
	}
	return classify(err)
}

// classify tells temporary errors among those not already an *Error.
func classify(err error) bool {
	if code := replyCode(err); code != 0 {
		return code >= 400 && code < 500
	}
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		if _, isNet := t.(net.Error); !isNet {
			return t.Temporary()
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de)
}

// replyCode returns the SMTP reply code carried by err, or 0.
func replyCode(err error) int {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code
	}
	return 0
}

// replyText returns the SMTP reply text carried by err, or "".
func replyText(err error) string {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Msg
	}
	return ""
}
