package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
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

	out *coalescer // what coder/websocket writes goes through it (write.go)
	tls bool       // the stream is TLS: a failed write's byte count is not exact

	// One writer at a time holds the connection (busy), so that each
	// write's deadline is set and cleared by its own writer (otherwise a
	// steady stream of writers would keep pushing the deadline of a stalled
	// write into the future); the others queue, and leave in its next
	// batch (write.go).
	wmu       sync.Mutex
	busy      bool
	queue     []*queuedWrite
	contended int         // writers queue here: a leader yields before writing alone (yieldCredit)
	qTimer    *time.Timer // expires queued messages past their deadline (expireQueued)
	qArmed    bool
	qAt       time.Time
	combined  atomic.Int64 // messages that left in a batch with others

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
	typ, r, err := c.ws.Reader(context.Background())
	var data []byte
	if err == nil {
		data, err = readMessage(r)
	}
	if err != nil {
		rerr := c.readError(err)
		var pe *ProtocolError
		if errors.As(err, &pe) && !c.closed.Load() {
			// Tell the peer why (RFC 6455 7.1.7); Close is bounded by
			// CloseTimeout and finds the inspector's error at once when it
			// reads for the peer's close frame.
			_ = c.closeWith(rerr, pe.Code, pe.Reason)
		}
		err := c.fail(rerr)
		var ce *CloseError
		if errors.As(rerr, &ce) && !errors.Is(err, ErrClosed) {
			// The peer said why it closed: that is what Read reports,
			// even when a write that the close cut short failed first.
			return 0, nil, rerr
		}
		return 0, nil, err
	}
	if typ == websocket.MessageText && !utf8.Valid(data) {
		_ = c.closeWith(ErrInvalidUTF8, websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in text message")
		return 0, nil, ErrInvalidUTF8
	}
	return typ, data, nil
}

// readMessage reads a message into a pooled buffer and returns an exact
// copy: one allocation of the message's size, where io.ReadAll grows its
// buffer from 512 bytes (eight allocations and copies for 8 KiB) and
// leaves a 512-byte array behind a 64-byte message. The buffer is taken
// once the message has begun, so an idle connection holds none.
func readMessage(r io.Reader) ([]byte, error) {
	bp := readPool.Get().(*[]byte)
	buf := (*bp)[:0]
	var err error
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf)) // doubles
		}
		var n int
		n, err = r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	var data []byte
	if err == io.EOF {
		err = nil
		data = make([]byte, len(buf))
		copy(data, buf)
	}
	if cap(buf) <= maxPooledRead {
		*bp = buf[:0]
		readPool.Put(bp)
	}
	return data, err
}

// maxPooledRead: a read buffer grown past this is not kept.
const maxPooledRead = 1 << 20

var readPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

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
		c.wmu.Lock()
		if c.qTimer != nil { // the queued writers return with done
			c.qTimer.Stop()
			c.qArmed = false
		}
		c.wmu.Unlock()
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
	writes  atomic.Int64 // Write calls: the benchmarks' syscalls per message
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	c.writes.Add(1)
	return n, err
}
