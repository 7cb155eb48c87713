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
	// been failed.
	ErrNotSent = errors.New("transport: message not sent")
	// ErrWriteTimeout means a write did not finish within Options.WriteTimeout;
	// the peer is stalled and the connection has been closed.
	ErrWriteTimeout = errors.New("transport: write deadline exceeded")
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
	Body       string // first bytes of the response body, for diagnosis
}

// Error implements the error interface.
func (e *HandshakeError) Error() string {
	if e.Body != "" {
		return fmt.Sprintf("websocket handshake refused: HTTP %s: %q", e.Status, e.Body)
	}
	return "websocket handshake refused: HTTP " + e.Status
}

// CloseError is the close frame the peer sent: its close code and reason.
type CloseError struct {
	Code   websocket.StatusCode
	Reason string
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

// IsRecoverable reports whether reconnecting can help after err.
//
// Recoverable: refused or reset connections, timeouts, a peer's close frame
// (any code), a dropped connection, handshake statuses 408, 429 and 5xx, and
// temporary DNS failures. Not recoverable (fatal): a bad URL, handshake
// statuses 401, 403, 404 and every other status, certificate verification
// failures, a host name that does not exist (DNS "no such host"), and a
// cancelled context. nil is not recoverable.
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
