package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/recws-org/recws"
)

// recwsHandshakeTimeout is recws's HandshakeTimeout (its default is 2 s).
// recws's Dial starts connecting in a goroutine and then sleeps this long
// whatever happens, so it bounds recws's setup time from below.
const recwsHandshakeTimeout = 500 * time.Millisecond

// pollInterval is how often the harness looks again while a self-
// reconnecting contender is not connected: recws's ReadMessage and
// WriteMessage return ErrNotConnected at once, so a reader must poll, and
// the reconnect workload retries its call at this pace for zenws and recws
// alike.
const pollInterval = 250 * time.Microsecond

// recwsLib is recws (a gorilla/websocket wrapper with its own reconnect
// loop) with RecIntvlMin = RetryDelay, and one reader goroutine per
// connection that polls while recws is reconnecting.
type recwsLib struct{}

func openRecws() (Library, error) { return recwsLib{}, nil }

func (recwsLib) Close() {}

func (recwsLib) Dial(ctx context.Context, url string, recv func()) (Conn, error) {
	rc := &recws.RecConn{
		RecIntvlMin:      RetryDelay,
		RecIntvlMax:      30 * time.Second,
		HandshakeTimeout: recwsHandshakeTimeout,
		NonVerbose:       true,
	}
	rc.Dial(url, nil)
	if err := waitRecws(ctx, rc); err != nil {
		// recws keeps trying in its goroutine; wait for it so that it can
		// be closed, and no goroutine outlives the workload.
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if waitRecws(wctx, rc) == nil {
			rc.Close()
		}
		return nil, fmt.Errorf("failed to dial: %w", err)
	}
	c := &recwsConn{rc: rc, p: newPending(false), done: make(chan struct{})}
	go c.read(recv)
	return c, nil
}

// waitRecws waits until rc is connected, at most until ctx ends.
func waitRecws(ctx context.Context, rc *recws.RecConn) error {
	for !rc.IsConnected() {
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), rc.GetDialError())
		case <-time.After(pollInterval):
		}
	}
	return nil
}

type recwsConn struct {
	rc      *recws.RecConn
	p       *pending
	closing atomic.Bool
	done    chan struct{}
}

// read is the reader goroutine a recws user writes: ReadMessage in a loop,
// polling while recws reconnects (it returns ErrNotConnected at once).
func (c *recwsConn) read(recv func()) {
	defer close(c.done)
	for !c.closing.Load() {
		_, data, err := c.rc.ReadMessage()
		switch {
		case errors.Is(err, recws.ErrNotConnected):
			time.Sleep(pollInterval)
		case err != nil:
			c.p.failAll() // recws is reconnecting
		case data == nil: // a close with 1000: recws closed the connection
		case !c.p.resolve(data):
			recv()
		}
	}
}

func (c *recwsConn) Send(_ context.Context, data []byte) error {
	return c.rc.WriteMessage(websocket.TextMessage, data)
}

func (c *recwsConn) Call(ctx context.Context) error {
	return c.p.call(ctx, func(msg []byte) error { return c.rc.WriteMessage(websocket.TextMessage, msg) })
}

func (c *recwsConn) Lost() <-chan struct{} { return nil }

// Close closes with a close handshake: closing without one makes the
// reader's ReadMessage fail, and recws then reconnects.
func (c *recwsConn) Close() error {
	c.closing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := waitRecws(ctx, c.rc); err != nil {
		return fmt.Errorf("bench: recws not connected at close: %w", err)
	}
	c.rc.Shutdown(time.Second)
	select {
	case <-c.done:
		return nil
	case <-time.After(5 * time.Second):
		c.rc.Close()
		return errors.New("bench: recws reader still running 5 s after close")
	}
}
