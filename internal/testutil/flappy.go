package testutil

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Flappy is a raw TCP venue that completes every WebSocket handshake by
// hand (101 Switching Protocols) and then closes the TCP connection after
// DropAfter (0: at once): the venue that accepts and drops. It counts the
// handshakes it answered and when.
type Flappy struct {
	ln        net.Listener
	dropAfter time.Duration
	wg        sync.WaitGroup
	mu        sync.Mutex
	accepts   []time.Time
	conns     map[net.Conn]struct{}
	closed    bool
	done      chan struct{} // closed by Close: ends the waits before a drop
	after     []byte        // written right after the 101 (SetAfter)
}

// SetAfter makes the venue write b right after each 101 (raw bytes: e.g. a
// frame header whose payload never comes).
func (f *Flappy) SetAfter(b []byte) {
	f.mu.Lock()
	f.after = append([]byte(nil), b...)
	f.mu.Unlock()
}

// NewFlappy starts a Flappy on 127.0.0.1, closed when the test ends.
func NewFlappy(t testing.TB, dropAfter time.Duration) *Flappy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Flappy{ln: ln, dropAfter: dropAfter, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	f.wg.Add(1)
	go f.acceptLoop()
	t.Cleanup(f.Close)
	return f
}

// URL is the ws:// URL of the venue.
func (f *Flappy) URL() string { return "ws://" + f.ln.Addr().String() + "/" }

// Upgrades is how many handshakes the venue has answered with 101.
func (f *Flappy) Upgrades() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.accepts)
}

// UpgradesBetween counts the 101s answered in [from, to).
func (f *Flappy) UpgradesBetween(from, to time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, at := range f.accepts {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// Close stops the venue and waits for its goroutines.
func (f *Flappy) Close() {
	f.mu.Lock()
	if !f.closed {
		close(f.done)
	}
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	_ = f.ln.Close()
	f.wg.Wait()
}

func (f *Flappy) acceptLoop() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = c.Close()
			return
		}
		f.conns[c] = struct{}{}
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serve(c)
	}
}

func (f *Flappy) serve(c net.Conn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		_ = c.Close()
	}()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	if _, err := c.Write([]byte(resp)); err != nil {
		return
	}
	f.mu.Lock()
	f.accepts = append(f.accepts, time.Now())
	after := f.after
	f.mu.Unlock()
	if len(after) > 0 {
		if _, err := c.Write(after); err != nil {
			return
		}
	}
	if f.dropAfter > 0 {
		t := time.NewTimer(f.dropAfter)
		defer t.Stop()
		select {
		case <-t.C:
		case <-f.done:
		}
	}
}
