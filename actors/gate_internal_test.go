package actors

import (
	"errors"
	"testing"
	"time"
)

// The reader may hand the actor at most maxFramesToActor frames (or
// maxBytesToActor bytes) at a time; past that it waits until half are
// taken, and gives the connection up after the stall limit.
func TestFrameGateBoundsFramesInFlight(t *testing.T) {
	g := new(frameGate)
	never := make(chan struct{})
	for i := 0; i < maxFramesToActor; i++ {
		if err := g.enter(10, never, never, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.enter(10, never, never, 50*time.Millisecond); !errors.Is(err, ErrActorStalled) {
		t.Fatalf("frame %d: %v, want ErrActorStalled", maxFramesToActor+1, err)
	}
	admitted := make(chan error, 1)
	go func() { admitted <- g.enter(10, never, never, 5*time.Second) }()
	time.Sleep(50 * time.Millisecond) // it waits
	for i := 0; i < maxFramesToActor/2-1; i++ {
		g.leave(10)
	}
	select {
	case err := <-admitted:
		t.Fatalf("admitted (%v) before half the frames were taken", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.leave(10)
	select {
	case err := <-admitted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not admitted once half the frames were taken")
	}
	// Bytes: a frame larger than the bound passes alone, and only alone.
	g = new(frameGate)
	if err := g.enter(maxBytesToActor+1, never, never, time.Second); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	close(closed)
	if err := g.enter(1, closed, never, time.Second); !errors.Is(err, errGateClosed) {
		t.Fatalf("a second frame next to an oversized one: %v, want to wait (and see the connection end)", err)
	}
}
