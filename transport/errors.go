package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

var (
	// ErrClosed is returned by operations on a connection that was already
	// closed. A write that fails with ErrClosed wrote nothing.
	ErrClosed = errors.New("transport: connection closed")
	// ErrBadURL means the URL cannot be dialled: it does not parse, its scheme
	// is not ws or wss, or it has no host. Never worth retrying.
	ErrBadURL = errors.New("transport: bad URL")
	// ErrMessageTooBig matches a *MessageTooBigError.
	ErrMessageTooBig = errors.New("transport: message exceeds the read limit")
	// ErrInvalidUTF8 means a text message was not valid UTF-8; the connection
	// was failed with close code 1007 (RFC 6455, section 8.1).
	ErrInvalidUTF8 = errors.New("transport: invalid UTF-8 in a text message")
	// ErrNotSent means a write failed before any byte of the message
	// reached the operating system: the peer cannot have received it, so
	// sending it again (on another connection) is safe. The connection has
	// been failed, except when the message was not written because its
	// ctx's deadline passed while it waited for another write (the error
	// then also matches context.DeadlineExceeded).
	ErrNotSent = errors.New("transport: message not sent")
	// ErrWriteTimeout means a write did not finish within Options.WriteTimeout;
	// the peer is stalled and the connection has been closed.
	ErrWriteTimeout = errors.New("transport: write deadline exceeded")
	// ErrProtocol matches a *ProtocolError: the peer broke RFC 6455 or a
	// message never completed within the documented bounds.
	ErrProtocol = errors.New("transport: WebSocket protocol error")
)

// DialError is returned by Dial. URL has its secrets redacted; Err is the
// cause (a *HandshakeError, ErrBadURL, a network or TLS error, or the
// context's error).
type DialError struct {
	URL string
	Err error
}

// Error implements the error interface.
func (e *DialError) Error() string { return fmt.Sprintf("transport: dial %s: %v", e.URL, e.Err) }

// Unwrap returns the cause.
func (e *DialError) Unwrap() error { return e.Err }

// HandshakeError is a refused WebSocket upgrade: the server answered with an
// HTTP status other than 101 Switching Protocols.
type HandshakeError struct {
	StatusCode int    // HTTP status, e.g. 401 or 503
	Status     string // e.g. "401 Unauthorized"
	Body       string // first bytes of the response body, for diagnosis, with the request's secrets masked
	// Problem says what was wrong with a 101 answer (StatusCode 101), e.g. a
	// Sec-WebSocket-Accept that does not match the key sent. Such a server
	// does not speak WebSocket: fatal, like any status but 408, 429, 5xx.
	Problem string
}

// Error implements the error interface.
func (e *HandshakeError) Error() string {
	if e.Problem != "" {
		return "websocket handshake failed: HTTP " + e.Status + ": " + e.Problem
	}
	if e.Body != "" {
		return fmt.Sprintf("websocket handshake refused: HTTP %s: %q", e.Status, e.Body)
	}
	return "websocket handshake refused: HTTP " + e.Status
}

// CloseError is the close frame the peer sent: its close code and reason.
type CloseError struct {
	Code   websocket.StatusCode
	Reason string // the peer's reason, with the dial URL's and headers' secrets masked
}

// Error implements the error interface.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("peer closed the connection: %d %v", int(e.Code), e.Code)
	}
	return fmt.Sprintf("peer closed the connection: %d %v: %q", int(e.Code), e.Code, e.Reason)
}

// MessageTooBigError is a message longer than the read limit. The connection
// has been closed with code 1009.
type MessageTooBigError struct {
	Limit int64
}

// Error implements the error interface.
func (e *MessageTooBigError) Error() string {
	return fmt.Sprintf("transport: message exceeds the read limit of %d bytes (raise it with the ReadLimit option)", e.Limit)
}

// Is makes errors.Is(err, ErrMessageTooBig) true.
func (e *MessageTooBigError) Is(target error) bool { return target == ErrMessageTooBig }

// RedirectError is a 3xx answer to the handshake that was not followed:
// redirects are off by default (Options.FollowRedirects), and even when on,
// one that would downgrade wss to ws, leave the origin for a host not
// allowed, or exceed the bound is refused. It unwraps to the
// *HandshakeError with the 3xx status. Fatal for IsRecoverable: asking again
// gets the same answer; fix the URL or opt in.
type RedirectError struct {
	StatusCode int    // e.g. 301, 302, 307, 308
	Location   string // where the server pointed, secrets redacted ("" if none)
	Followed   int    // redirects already followed before this one
	Reason     string // why it was not followed
}

// Error implements the error interface.
func (e *RedirectError) Error() string {
	loc := e.Location
	if loc == "" {
		loc = "(no Location)"
	}
	return fmt.Sprintf("transport: handshake redirected (HTTP %d) to %s: not followed: %s", e.StatusCode, loc, e.Reason)
}

// Unwrap returns the *HandshakeError with the redirect's status.
func (e *RedirectError) Unwrap() error {
	return &HandshakeError{StatusCode: e.StatusCode, Status: fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))}
}

// ProtocolError means the peer broke the WebSocket protocol, or a message
// did not complete within Options.MessageTimeout or Options.MaxFragments
// frames. The connection has been failed with Code (1002 for a violation
// of RFC 6455, 1008 for a bound this library sets). Recoverable for
// IsRecoverable: the next connection may be sound, and the reconnect
// backoff bounds the cost of one that is not.
type ProtocolError struct {
	Code   websocket.StatusCode // close code sent: 1002 or 1008 (a 1009 is reported as *MessageTooBigError)
	Reason string               // what the peer did, e.g. "masked frame from the server"
}

// Error implements the error interface.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("transport: WebSocket protocol error (closed with %d): %s", int(e.Code), e.Reason)
}

// Is makes errors.Is(err, ErrProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// IsRecoverable reports whether reconnecting can help after err.
//
// Recoverable: refused or reset connections, timeouts, a peer's close frame
// (any code), a dropped connection, handshake statuses 408, 429 and 5xx, and
// temporary DNS failures. Not recoverable (fatal): a bad URL, handshake
// statuses 401, 403, 404 and every other status, certificate verification
// failures, a host name that does not exist (DNS "no such host"), a
// redirect (*RedirectError), a 101 that is not a WebSocket handshake, and a
// cancelled context. A *ProtocolError is recoverable. nil is not
// recoverable.
func IsRecoverable(err error) bool {
	if err == nil || errors.Is(err, ErrBadURL) || errors.Is(err, context.Canceled) {
		return false
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.StatusCode == http.StatusRequestTimeout ||
			he.StatusCode == http.StatusTooManyRequests ||
			he.StatusCode >= 500
	}
	if isCertificateError(err) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false
	}
	return true
}

func isCertificateError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verification) ||
		errors.As(err, &recordHeader)
}
