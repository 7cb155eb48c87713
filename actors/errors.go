package actors

import (
	"errors"
	"fmt"
)

var (
	// ErrNotConnected: the client has no working connection right now
	// (connecting or reconnecting). Nothing was sent; trying again later or
	// on another connection is safe.
	ErrNotConnected = errors.New("zenws: not connected")
	// ErrDisconnected: the connection was lost while an operation was in
	// flight. A message may or may not have reached the server.
	ErrDisconnected = errors.New("zenws: disconnected")
	// ErrClosed: the client was closed or has stopped for good.
	ErrClosed = errors.New("zenws: client closed")
	// ErrTimeout: a bounded wait ran out.
	ErrTimeout = errors.New("zenws: timeout")
	// ErrHeartbeatTimeout: heartbeats went unanswered (or, for Binance, the
	// server's pings stopped); the connection was treated as dead.
	ErrHeartbeatTimeout = errors.New("zenws: heartbeat timeout")
	// ErrNotFound: no client actor of this package is registered under the
	// PID (never started, already stopped, or on another node).
	ErrNotFound = errors.New("zenws: client not found")
)

// GiveUpError is the reason a client actor fails with after its reconnect
// attempts are spent on recoverable errors. A supervisor sees it as the
// failure reason and can restart the client; a client started with Connect
// stops.
type GiveUpError struct {
	Attempts int   // dial attempts made since the last stable connection (see Config.StableAfter)
	Last     error // the last attempt's error

	// FirstConnect: the client never became connected since it started
	// (or a supervisor restarted it), so Attempts are its connect's dials
	// (the first and its RetryCount retries), not reconnects after a lost
	// connection.
	FirstConnect bool
}

// Error implements the error interface: it says what the attempts were.
func (e *GiveUpError) Error() string {
	switch {
	case e.FirstConnect:
		return fmt.Sprintf("zenws: gave up connecting after %d dial attempts (the first and %d retries): %v",
			e.Attempts, max(e.Attempts-1, 0), e.Last)
	case e.Attempts == 0:
		return fmt.Sprintf("zenws: gave up without reconnecting (RetryCount 0): %v", e.Last)
	}
	return fmt.Sprintf("zenws: gave up after %d reconnect attempts (dials since the last stable connection): %v", e.Attempts, e.Last)
}

// Unwrap returns the last attempt's error.
func (e *GiveUpError) Unwrap() error { return e.Last }

// FatalError wraps an error that reconnecting cannot fix (a 401/403/404
// handshake, a certificate failure, a bad URL). The client stops without
// retrying; a supervisor must not restart it.
type FatalError struct {
	Err error
}

// Error implements the error interface.
func (e *FatalError) Error() string { return "zenws: fatal: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FatalError) Unwrap() error { return e.Err }
