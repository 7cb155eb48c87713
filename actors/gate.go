package actors

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Frames in flight from one connection's reader to the actor (sent, not yet
// routed) are bounded: the actor's mailbox is Proto.Actor's and unbounded,
// so without a bound a stalled actor would let a venue fill memory. When
// either bound is reached the reader stops reading until the actor has
// taken half of them: the venue then sees a slow reader (TCP backpressure),
// as it would with any slow client. A frame larger than the byte bound
// passes alone. A reader that waits longer than actorStallLimit ends the
// connection with ErrActorStalled.
const (
	maxFramesToActor = 1024
	maxBytesToActor  = 16 << 20
	// actorStallLimit is how long a connection's reader waits for the client
	// actor to take frames before it gives the connection up
	// (ErrActorStalled).
	actorStallLimit = 30 * time.Second
)

// ErrActorStalled: the client actor took none of the frames its reader had
// handed it for actorStallLimit, so the reader closed the connection rather
// than hold more of the venue's data. It is recoverable: the client
// reconnects once its actor runs again.
var ErrActorStalled = errors.New("zenws: the client actor is not taking inbound frames")

// frameGate counts one connection's frames in flight to the actor: the
// reader enters before each send, the actor leaves in route.
type frameGate struct {
	mu    sync.Mutex
	n     int
	bytes int64
	wake  chan struct{} // non-nil while the reader waits
}

// enter admits a frame of size bytes, waiting while the bounds are reached.
// It returns errGateClosed when done closes first (the connection or the
// client ended), or ErrActorStalled after stall.
func (g *frameGate) enter(size int64, done, stopped <-chan struct{}, stall time.Duration) error {
	g.mu.Lock()
	var deadline <-chan time.Time
	for g.n > 0 && (g.n >= maxFramesToActor || g.bytes+size > maxBytesToActor) {
		if deadline == nil {
			t := time.NewTimer(stall)
			defer t.Stop()
			deadline = t.C
		}
		wake := make(chan struct{})
		g.wake = wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return errGateClosed
		case <-stopped:
			return errGateClosed
		case <-deadline:
			return fmt.Errorf("%w: %d frames (%d bytes) waited %v", ErrActorStalled, g.count(), g.size(), stall)
		}
		g.mu.Lock()
	}
	g.n++
	g.bytes += size
	g.mu.Unlock()
	return nil
}

// leave releases a frame the actor has taken; the reader is woken once half
// the bounds are free, so that it does not wake for every frame.
func (g *frameGate) leave(size int64) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.n--
	g.bytes -= size
	if g.wake != nil && (g.n == 0 || (g.n <= maxFramesToActor/2 && g.bytes <= maxBytesToActor/2)) {
		close(g.wake)
		g.wake = nil
	}
	g.mu.Unlock()
}

func (g *frameGate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func (g *frameGate) size() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bytes
}

// errGateClosed: the connection or the client ended while the reader waited.
var errGateClosed = errors.New("zenws: connection ended while its reader waited for the actor")
