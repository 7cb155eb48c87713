package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/internal/redact"
)

// Message types, re-exported so callers need not import coder/websocket.
const (
	MessageText   = websocket.MessageText
	MessageBinary = websocket.MessageBinary
)

// Conn is one open WebSocket connection. Write, Ping and Close may be called
// from any goroutine; Read from one goroutine at a time.
type Conn struct {
	scrub        func() *redact.Scrubber // the request's secrets, hidden from the venue's texts (built on first use)
	ws           *websocket.Conn
	raw          *countingConn // the TCP connection under ws (and under TLS)
	writeTimeout time.Duration
	closeTimeout time.Duration
	readLimit    int64

	// writeSlot serializes writes so that each write's deadline is set and
	// cleared by its own writer; otherwise a steady stream of writers would
	// keep pushing the deadline of a stalled write into the future.
	writeSlot chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	// cause is why the connection ended: ErrClosed when its owner closed
	// it, or the read or write error that failed it. Set once, before done
	// is closed.
	cause error
}

// Subprotocol is the subprotocol the server chose, or "".
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// Done is closed once Close or CloseNow has been called, or a read or write
// failed the connection.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, once Done is closed: ErrClosed after
// Close or CloseNow, or the error that failed it. nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.cause
	default:
		return nil
	}
}

// Read returns the next data message. Control frames are handled inside:
// pings are answered, pongs complete Ping. A text message that is not valid
// UTF-8 fails the connection with 1007 and returns ErrInvalidUTF8.
//
// Errors: *CloseError when the peer sent a close frame, *MessageTooBigError,
// ErrInvalidUTF8, a *ProtocolError when the peer sent a masked frame or a
// message that did not complete within Options.MessageTimeout or
// Options.MaxFragments (the connection is closed with its code), an error wrapping ErrClosed after Close or CloseNow, an
// error wrapping ErrWriteTimeout when a write found the peer stalled, or
// the network error that ended the connection. Every error from Read means
// the connection is finished.
func (c *Conn) Read() (websocket.MessageType, []byte, error) {
	typ, data, err := c.ws.Read(context.Background())
	if err != nil {
		rerr := c.readError(err)
		var pe *ProtocolError
		if errors.As(err, &pe) && !c.closed.Load() {
			// Tell the peer why (RFC 6455 7.1.7); Close is bounded by
			// CloseTimeout and finds the inspector's error at once when it
			// reads for the peer's close frame.
			_ = c.closeWith(rerr, pe.Code, pe.Reason)
		}
		return 0, nil, c.fail(rerr)
	}
	if typ == websocket.MessageText && !utf8.Valid(data) {
		_ = c.closeWith(ErrInvalidUTF8, websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in text message")
		return 0, nil, ErrInvalidUTF8
	}
	return typ, data, nil
}

func (c *Conn) readError(err error) error {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return &MessageTooBigError{Limit: c.readLimit}
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		if pe.Code == websocket.StatusMessageTooBig { // announced by a header
			return &MessageTooBigError{Limit: c.readLimit}
		}
		return pe
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Reason: c.scrub().Text(ce.Reason)}
	}
	return fmt.Errorf("transport: read: %w", err)
}

// Write sends one message of type typ. ctx may cancel the wait for another
// writer to finish; once the message is being written, only WriteTimeout
// bounds it, because interrupting a half-written frame would corrupt the
// stream. A write that times out closes the connection and returns an error
// wrapping ErrWriteTimeout. ErrClosed means nothing was written.
func (c *Conn) Write(ctx context.Context, typ websocket.MessageType, data []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	select {
	case c.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
	defer func() { <-c.writeSlot }()
	if c.closed.Load() {
		return ErrClosed
	}
	_ = c.raw.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	before := c.raw.written.Load()
	err := c.ws.Write(context.Background(), typ, data)
	_ = c.raw.SetWriteDeadline(time.Time{})
	if err != nil {
		// Whether any byte of this message left the process decides what
		// the caller may do: resending one that provably did not is safe.
		// (A pong written meanwhile by the reader also counts as written:
		// the doubt then goes the safe way.)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w (%v): %w", ErrWriteTimeout, c.writeTimeout, err)
		} else {
			err = fmt.Errorf("transport: write: %w", err)
		}
		if c.raw.written.Load() == before {
			err = fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		c.fail(err) // not its result: that may say ErrClosed
		return err
	}
	return nil
}

// Ping sends a ping with a payload unique to this connection and waits for
// its pong, returning the round-trip time. It needs a goroutine in Read. ctx
// bounds the wait; a ping that times out does not close the connection
// unless the ping frame itself could not be written in time.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	start := time.Now()
	if err := c.ws.Ping(ctx); err != nil {
		if c.closed.Load() {
			return 0, fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return 0, fmt.Errorf("transport: ping: %w", err)
	}
	return time.Since(start), nil
}

// Close sends a close frame with code and reason and waits for the peer's,
// for at most CloseTimeout; past that the TCP connection is cut. Calling it
// again returns ErrClosed.
func (c *Conn) Close(code websocket.StatusCode, reason string) error {
	return c.closeWith(ErrClosed, code, reason)
}

func (c *Conn) closeWith(cause error, code websocket.StatusCode, reason string) error {
	if !c.markClosed(cause) {
		return ErrClosed
	}
	cut := time.AfterFunc(c.closeTimeout, func() { _ = c.raw.Close() })
	defer cut.Stop()
	err := c.ws.Close(code, reason)
	_ = c.raw.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("transport: close: %w", err)
	}
	return nil
}

// CloseNow cuts the connection without a close frame. Calling it again
// returns ErrClosed.
func (c *Conn) CloseNow() error {
	if !c.markClosed(ErrClosed) {
		return ErrClosed
	}
	// The TCP connection first: on TLS, coder/websocket's CloseNow would
	// write close_notify and could wait seconds on a stalled peer.
	err := c.raw.Close()
	_ = c.ws.CloseNow()
	return err
}

func (c *Conn) markClosed(cause error) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.cause = cause
		c.closed.Store(true)
		close(c.done)
	})
	return first
}

// fail ends the connection after a read or write error (coder/websocket
// has already closed it). The first cause wins: a read that fails because a
// write timed out, or because the owner closed the connection, reports
// that cause (wrapping ErrWriteTimeout or ErrClosed) rather than the
// resulting "use of closed connection".
func (c *Conn) fail(err error) error {
	if c.markClosed(err) {
		_ = c.raw.Close()
		_ = c.ws.CloseNow()
		return err
	}
	<-c.done
	if c.cause == ErrClosed {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return c.cause
}

// countingConn counts the bytes written to the network connection, so that
// a failed write can tell whether any byte of its message left the process.
type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}
