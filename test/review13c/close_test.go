package review13c

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
)

// FAILS: Close from the StateObserver's goroutine or from a connect hook
// waits for itself: it returns ErrTimeout after CloseWait. (docs/client.md
// promises that a handler or callback may call Close without waiting for
// its own goroutine; only the delivery goroutine is exempt.)
// Close called from the StateObserver (on the change to reconnecting) and
// from a connect hook (Setup.Client().Close()): Close must return without
// ErrTimeout (it waits for every goroutine of the client, the caller's own
// included?) and the client must stop.
func TestCloseFromObserverAndHook(t *testing.T) {
	t.Run("observer", func(t *testing.T) {
		pe := newRawPeer(t, nil)
		var c atomic.Pointer[actors.Client]
		res := make(chan error, 1)
		var once atomic.Bool
		obs := func(s actors.StateChange) {
			if s.To == actors.StateReconnecting && once.CompareAndSwap(false, true) {
				res <- c.Load().Close()
			}
		}
		var disc atomic.Int64
		cl := dial(t, pe.URL, nil, actors.WithStateObserver(obs), actors.WithCloseWait(2*time.Second),
			actors.WithOnDisconnect(func(*actor.PID) { disc.Add(1) }))
		c.Store(cl)
		pe.dropAll()
		select {
		case err := <-res:
			if err != nil {
				t.Errorf("Close from the StateObserver: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close from the StateObserver hung")
		}
		eventually(t, 5*time.Second, "disconnected", func() bool { return cl.State() == actors.StateDisconnected })
		time.Sleep(200 * time.Millisecond)
		if disc.Load() != 1 {
			t.Errorf("OnDisconnect ran %d times after Close from the observer, want 1", disc.Load())
		}
	})
	t.Run("hook", func(t *testing.T) {
		pe := newRawPeer(t, nil)
		var arm atomic.Bool
		res := make(chan error, 1)
		hook := func(ctx context.Context, s *actors.Setup) error {
			if arm.Load() && arm.CompareAndSwap(true, false) {
				res <- s.Client().Close()
				return errors.New("closed")
			}
			return nil
		}
		cl := dial(t, pe.URL, nil, actors.WithConnectHook(hook), actors.WithCloseWait(2*time.Second))
		arm.Store(true)
		pe.dropAll()
		select {
		case err := <-res:
			if err != nil {
				t.Errorf("Close from a connect hook: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close from a connect hook hung")
		}
		eventually(t, 5*time.Second, "disconnected", func() bool { return cl.State() == actors.StateDisconnected })
	})
}
