package wstest

import (
	"net"
	"sync"
)

// trackingListener wraps a TCP listener. Every accepted connection is
// wrapped in a gateConn and remembered until it is closed, so that the
// owner can close every connection (including hijacked WebSocket ones that
// net/http no longer tracks) and so that reads can be paused to simulate a
// half-open connection.
type trackingListener struct {
	net.Listener

	mu     sync.Mutex
	conns  map[*gateConn]struct{}
	closed bool
}

func newTrackingListener(l net.Listener) *trackingListener {
	return &trackingListener{Listener: l, conns: make(map[*gateConn]struct{})}
}

// Accept implements net.Listener.
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := &gateConn{Conn: c, l: l, closed: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[g] = struct{}{}
	l.mu.Unlock()
	return g, nil
}

// closeAll closes the listener and every connection accepted through it.
// Connections accepted afterwards are closed immediately.
func (l *trackingListener) closeAll() {
	_ = l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	conns := make([]*gateConn, 0, len(l.conns))
	for g := range l.conns {
		conns = append(conns, g)
	}
	l.mu.Unlock()
	for _, g := range conns {
		_ = g.Close()
	}
}

func (l *trackingListener) forget(g *gateConn) {
	l.mu.Lock()
	delete(l.conns, g)
	l.mu.Unlock()
}

// gateConn is a net.Conn whose reads can be paused. While paused, Read does
// not return: bytes that arrive are withheld (not lost) until the gate is
// reopened, so the WebSocket layer above neither sees data nor answers
// pings. Close always unblocks a paused Read.
type gateConn struct {
	net.Conn
	l *trackingListener

	mu     sync.Mutex
	paused bool
	reopen chan struct{} // closed when the gate reopens; valid while paused

	closeOnce sync.Once
	closed    chan struct{}
}

// Read implements net.Conn.
func (g *gateConn) Read(p []byte) (int, error) {
	if err := g.wait(); err != nil {
		return 0, err
	}
	n, err := g.Conn.Read(p)
	if n > 0 {
		// Data that arrived while (or just before) the gate was closed is
		// held back until it reopens.
		if werr := g.wait(); werr != nil {
			return 0, werr
		}
	}
	return n, err
}

// Close implements net.Conn. It closes the TCP connection without sending
// anything (no WebSocket close frame, no TLS close_notify).
func (g *gateConn) Close() error {
	err := net.ErrClosed
	g.closeOnce.Do(func() {
		close(g.closed)
		err = g.Conn.Close()
		g.l.forget(g)
	})
	return err
}

func (g *gateConn) wait() error {
	for {
		g.mu.Lock()
		if !g.paused {
			g.mu.Unlock()
			return nil
		}
		ch := g.reopen
		g.mu.Unlock()
		select {
		case <-ch:
		case <-g.closed:
			return net.ErrClosed
		}
	}
}

func (g *gateConn) pause() {
	g.mu.Lock()
	if !g.paused {
		g.paused = true
		g.reopen = make(chan struct{})
	}
	g.mu.Unlock()
}

func (g *gateConn) resume() {
	g.mu.Lock()
	if g.paused {
		g.paused = false
		close(g.reopen)
	}
	g.mu.Unlock()
}
