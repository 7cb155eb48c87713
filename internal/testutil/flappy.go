package testutil

import (
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/internal/hostile"
)

// Flappy is a venue (an internal/hostile server: raw TCP, handshakes by
// hand) that answers every WebSocket handshake with 101 Switching
// Protocols and then closes the TCP connection after DropAfter (0: at
// once): the venue that accepts and drops. It counts the handshakes it
// answered and when.
type Flappy struct {
	srv       *hostile.Server
	dropAfter time.Duration
	mu        sync.Mutex
	accepts   []time.Time
	after     []byte // written right after the 101 (SetAfter)
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
	f := &Flappy{dropAfter: dropAfter}
	f.srv = hostile.NewServer(t, f.serve)
	return f
}

// URL is the ws:// URL of the venue.
func (f *Flappy) URL() string { return f.srv.URL() }

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
func (f *Flappy) Close() { f.srv.Close() }

func (f *Flappy) serve(c *hostile.Conn) {
	if c.Handshake() != nil {
		return
	}
	f.mu.Lock()
	f.accepts = append(f.accepts, time.Now())
	after := f.after
	f.mu.Unlock()
	if len(after) > 0 && c.WriteRaw(after) != nil {
		return
	}
	if f.dropAfter > 0 {
		c.Sleep(f.dropAfter)
	}
}
