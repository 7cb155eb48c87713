package actors_test

import (
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/transport/wstest"
)

// stateChain records a client's StateChanges.
type stateChain struct {
	mu   sync.Mutex
	seen []actors.StateChange
}

func (c *stateChain) observe(sc actors.StateChange) {
	c.mu.Lock()
	c.seen = append(c.seen, sc)
	c.mu.Unlock()
}

func (c *stateChain) all() []actors.StateChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]actors.StateChange(nil), c.seen...)
}

// checkChain fails unless the changes are one stateChain that starts at
// StateDisconnected: each From is the previous To, and no change is a
// self-transition.
func checkChain(t *testing.T, seen []actors.StateChange) {
	t.Helper()
	prev := actors.StateDisconnected
	for i, sc := range seen {
		if sc.From != prev || sc.From == sc.To {
			t.Fatalf("change %d is %v -> %v after a change to %v; all: %v", i, sc.From, sc.To, prev, transitions(seen))
		}
		prev = sc.To
	}
}

func transitions(seen []actors.StateChange) []string {
	out := make([]string, len(seen))
	for i, sc := range seen {
		out[i] = sc.From.String() + "->" + sc.To.String()
	}
	return out
}

// A client under a parent that restarts it (here the root's default
// guardian) gives up after a drop with RetryCount 0 and is restarted.
// Before: the restarted instance reported From=disconnected (its zero
// state), a state the observer had never been told of. Now it carries on
// from the last state set, and the stateChain stays whole; the final change is
// To=disconnected at Close.
func TestStateChangesAreOneChainAcrossRestarts(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	var ch stateChain
	cfg, err := actors.NewConfig(srv.URL(), fast(actors.WithRetryCount(0), actors.WithStateObserver(ch.observe))...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := actors.Spawn(sys.Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConnected(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		waitServerConn(t, srv)
		srv.DropAll()
		eventually(t, 5*time.Second, "restarted and reconnected", func() bool {
			h := c.Health()
			return h.Restarts == uint64(i) && h.State == actors.StateConnected
		})
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	seen := ch.all()
	t.Logf("changes: %v", transitions(seen))
	checkChain(t, seen)
	if last := seen[len(seen)-1]; last.To != actors.StateDisconnected {
		t.Fatalf("last change %v -> %v, want To=disconnected", last.From, last.To)
	}
}
