package actors_test

import (
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

// A slow StateObserver runs off the actor's goroutine: it delays nothing
// (the client reconnects while the observer still sleeps on the first
// change), and still sees every change in order with its exact generation.
func TestSlowStateObserverSeesEveryChangeInOrder(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	var mu sync.Mutex
	var seen []actors.StateChange
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithStateObserver(func(sc actors.StateChange) {
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		seen = append(seen, sc)
		mu.Unlock()
	}))...)
	waitServerConn(t, srv)
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnected", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
	mu.Lock()
	early := len(seen)
	mu.Unlock()
	if early > 1 { // on the actor it would have seen 3: each change waits for the one before
		t.Fatalf("the observer had seen %d changes when the client had reconnected: it ran on the actor", early)
	}
	want := []struct {
		to  actors.State
		gen uint64
	}{{actors.StateConnecting, 0}, {actors.StateConnected, 1}, {actors.StateReconnecting, 1}, {actors.StateConnected, 2}}
	eventually(t, 5*time.Second, "every change observed", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= len(want) })
	mu.Lock()
	defer mu.Unlock()
	for i, w := range want {
		if seen[i].To != w.to || seen[i].Generation != w.gen {
			t.Fatalf("change %d: %v gen %d, want %v gen %d (all: %+v)", i, seen[i].To, seen[i].Generation, w.to, w.gen, seen)
		}
	}
	if h := c.Health(); h.ObserverDropped != 0 {
		t.Fatalf("%d changes dropped", h.ObserverDropped)
	}
}
