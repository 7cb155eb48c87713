package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenws/zenws/actors/jsonrpc"
)

// callMethod is the method of every request the workloads make.
const callMethod = "bench/call"

// errLost: the connection ended while a call waited for its response.
var errLost = errors.New("bench: connection lost")

// pending matches responses to waiting callers by id: what a user of a
// library without a request layer writes (a map of waiting callers, filled
// by the caller, emptied by the reader goroutine).
type pending struct {
	ids      atomic.Uint64
	borrowed bool // the reader's buffers are reused: copy a response
	mu       sync.Mutex
	waiting  map[uint64]chan []byte
}

func newPending(borrowed bool) *pending {
	return &pending{borrowed: borrowed, waiting: map[uint64]chan []byte{}}
}

// call registers a fresh id, writes the request with write and waits for
// its response, at most until ctx ends.
func (p *pending) call(ctx context.Context, write func([]byte) error) error {
	id := p.ids.Add(1)
	msg, err := jsonrpc.Build(id, callMethod, nil)
	if err != nil {
		return err
	}
	ch := make(chan []byte, 1)
	p.mu.Lock()
	p.waiting[id] = ch
	p.mu.Unlock()
	if err := write(msg); err != nil {
		p.remove(id)
		return err
	}
	select {
	case _, ok := <-ch:
		if !ok {
			return errLost
		}
		return nil
	case <-ctx.Done():
		p.remove(id)
		return ctx.Err()
	}
}

func (p *pending) remove(id uint64) {
	p.mu.Lock()
	delete(p.waiting, id)
	p.mu.Unlock()
}

// resolve hands a response to its waiting caller and reports whether data
// was a response.
func (p *pending) resolve(data []byte) bool {
	env, ok := jsonrpc.Peek(data)
	if !ok || env.ID == nil || (env.Result == nil && env.Error == nil) {
		return false
	}
	id, ok := jsonrpc.Uint(env.ID)
	if !ok {
		return false
	}
	p.mu.Lock()
	ch := p.waiting[id]
	delete(p.waiting, id)
	p.mu.Unlock()
	if ch != nil {
		if p.borrowed {
			data = bytes.Clone(data)
		}
		ch <- data
	}
	return true
}

// failAll tells every waiting caller that the connection is gone.
func (p *pending) failAll() {
	p.mu.Lock()
	for id, ch := range p.waiting {
		close(ch)
		delete(p.waiting, id)
	}
	p.mu.Unlock()
}

// wire is one connection of a library without a client layer of its own:
// it writes, and its reader goroutine hands every message to the onFrame
// given to its dial function until the connection ends, then calls onEnd.
type wire interface {
	write(ctx context.Context, data []byte) error
	// closeNow closes the connection without a close handshake; the reader
	// then ends.
	closeNow()
}

// deadlineOf is ctx's deadline, or the zero time (none): the write
// deadline of a library that takes no context.
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// dialWire dials one wire; see wire.
type dialWire func(ctx context.Context, url string, onFrame func([]byte), onEnd func()) (wire, error)

// plainLib is a Library over a dialWire: the same request matching and
// close handling for bare coder/websocket, gorilla and gws.
type plainLib struct {
	dial     dialWire
	borrowed bool
}

// openPlain returns the Open function of a contender built on dial.
// borrowed says the library reuses the buffers it hands to onFrame.
func openPlain(dial dialWire, borrowed bool) func() (Library, error) {
	return func() (Library, error) { return &plainLib{dial: dial, borrowed: borrowed}, nil }
}

func (l *plainLib) Dial(ctx context.Context, url string, recv func()) (Conn, error) {
	c := &plainConn{p: newPending(l.borrowed), lost: make(chan struct{})}
	w, err := l.dial(ctx, url, func(data []byte) {
		if !c.p.resolve(data) {
			recv()
		}
	}, func() {
		c.p.failAll()
		close(c.lost)
	})
	if err != nil {
		return nil, err
	}
	c.w = w
	return c, nil
}

func (l *plainLib) Close() {}

// plainConn is a Conn over a wire.
type plainConn struct {
	w    wire
	p    *pending
	lost chan struct{}
}

func (c *plainConn) Send(ctx context.Context, data []byte) error { return c.w.write(ctx, data) }

func (c *plainConn) Call(ctx context.Context) error {
	return c.p.call(ctx, func(msg []byte) error { return c.w.write(ctx, msg) })
}

func (c *plainConn) Lost() <-chan struct{} { return c.lost }

func (c *plainConn) Close() error {
	c.w.closeNow()
	select {
	case <-c.lost:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("bench: reader still running 5 s after close")
	}
}
