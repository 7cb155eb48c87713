package wstest

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// Blackhole is a TCP server on 127.0.0.1 that accepts connections but never
// answers anything, in particular not the WebSocket upgrade request. Use it
// to test handshake timeouts. Connections are held open until Close.
type Blackhole struct {
	ln   *trackingListener
	addr string

	mu       sync.Mutex
	accepted int
	changed  chan struct{}

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewBlackhole starts a Blackhole on a random port of 127.0.0.1. It panics
// if it cannot listen.
func NewBlackhole() *Blackhole {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("wstest: failed to listen on 127.0.0.1: %v", err))
	}
	b := &Blackhole{
		ln:      newTrackingListener(l),
		addr:    l.Addr().String(),
		changed: make(chan struct{}),
	}
	b.wg.Add(1)
	go b.acceptLoop()
	return b
}

func (b *Blackhole) acceptLoop() {
	defer b.wg.Done()
	for {
		// The accepted connection is remembered by the tracking listener
		// and closed by Close; nothing is ever read or written.
		if _, err := b.ln.Accept(); err != nil {
			return
		}
		b.mu.Lock()
		b.accepted++
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
	}
}

// URL returns "ws://127.0.0.1:PORT/".
func (b *Blackhole) URL() string { return "ws://" + b.addr + "/" }

// Addr returns "127.0.0.1:PORT".
func (b *Blackhole) Addr() string { return b.addr }

// Accepted returns how many TCP connections have been accepted.
func (b *Blackhole) Accepted() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.accepted
}

// WaitAccepted waits until at least n TCP connections have been accepted.
func (b *Blackhole) WaitAccepted(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		have, ch := b.accepted, b.changed
		b.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wstest: blackhole: waiting for %d connections (have %d): %w", n, have, ctx.Err())
		}
	}
}

// Close closes the listener and every held connection and waits for the
// accept goroutine to end. It is idempotent.
func (b *Blackhole) Close() {
	b.closeOnce.Do(func() {
		b.ln.closeAll()
		b.wg.Wait()
	})
}
