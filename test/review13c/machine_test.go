package review13c

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
)

// A connection lost during setup (the venue drops on the restore's subscribe,
// twice): the client heals, restores, the chain is coherent, no panic.
// (Regression guard.)
func TestDropDuringSetupRestore(t *testing.T) {
	var armed atomic.Bool
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) && armed.Load() && rc.idx <= 2 {
				rc.c.Close()
				return true
			}
			return false
		})
	}
	var ch chain
	c := dial(t, pe.URL, &ch)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	pe.dropAll()
	eventually(t, 10*time.Second, "back connected with a.b active on conn 3",
		func() bool {
			return pe.conns.Load() >= 4 && c.State() == actors.StateConnected && chanState(c, "a.b") == actors.ChannelActive
		})
	noPanic(t, "LastError", c.Health().LastError)
	ch.check(t)
}

// Reconnect called while a connect hook of the current setup blocks, and a
// drop meanwhile: Reconnect returns a typed result, the client ends up
// connected. (Regression guard.)
func TestReconnectDuringSetupHook(t *testing.T) {
	pe := newRawPeer(t, nil)
	release := make(chan struct{})
	var inHook atomic.Int64
	var gate atomic.Bool
	hook := func(ctx context.Context, s *actors.Setup) error {
		if gate.Load() {
			inHook.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	var ch chain
	c := dial(t, pe.URL, &ch, actors.WithConnectHook(hook))
	gate.Store(true)
	pe.dropAll()
	eventually(t, 10*time.Second, "hook of the redial entered", func() bool { return inHook.Load() >= 1 })
	errc := make(chan error, 1)
	go func() { errc <- c.Reconnect(ctxT(t, 10*time.Second)) }()
	time.Sleep(50 * time.Millisecond)
	pe.dropAll()
	time.Sleep(50 * time.Millisecond)
	gate.Store(false)
	close(release)
	select {
	case err := <-errc:
		noPanic(t, "Reconnect", err)
		if err != nil && !errors.Is(err, actors.ErrDisconnected) && !errors.Is(err, actors.ErrTimeout) {
			t.Logf("Reconnect: %v", err)
		}
	case <-time.After(12 * time.Second):
		t.Fatal("Reconnect hung")
	}
	eventually(t, 10*time.Second, "connected", func() bool { return c.State() == actors.StateConnected })
	noPanic(t, "LastError", c.Health().LastError)
	ch.check(t)
}

// Rotation whose new connection is dropped during its setup: Rotate fails
// with ErrRotationFailed, the old connection keeps serving.
func TestRotationSetupDropped(t *testing.T) {
	var armed atomic.Bool
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) && armed.Load() && rc.idx == 1 {
				rc.c.Close()
				return true
			}
			return false
		})
	}
	var ch chain
	c := dial(t, pe.URL, &ch)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	gen := c.Health().Generation
	err := c.Rotate(ctxT(t, 10*time.Second))
	if !errors.Is(err, actors.ErrRotationFailed) {
		t.Errorf("Rotate with the new connection dropped in setup: %v, want ErrRotationFailed", err)
	}
	noPanic(t, "Rotate", err)
	h := c.Health()
	if h.State != actors.StateConnected || h.Generation != gen {
		t.Errorf("after a failed rotation: state %v gen %d (was %d), want connected on the old one", h.State, h.Generation, gen)
	}
	if _, err := c.Call(ctxT(t, 5*time.Second), "public/test", nil); err != nil {
		t.Errorf("old connection does not serve after the failed rotation: %v", err)
	}
	ch.check(t)
}

// The old connection is lost while the rotation's new connection is in
// setup (its restore unanswered for a while): the client must come back
// connected, with its channel, and Rotate must return.
func TestOldLostDuringRotationSetup(t *testing.T) {
	var armed atomic.Bool
	inSetup := make(chan *rawConn, 1)
	answer := make(chan struct{})
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) && armed.Load() && rc.idx == 1 {
				select {
				case inSetup <- rc:
				default:
				}
				<-answer
				return false
			}
			return false
		})
	}
	var ch chain
	c := dial(t, pe.URL, &ch)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	errc := make(chan error, 1)
	go func() { errc <- c.Rotate(ctxT(t, 15*time.Second)) }()
	select {
	case <-inSetup:
	case <-time.After(10 * time.Second):
		t.Fatal("rotation never reached setup")
	}
	// drop the old connection only
	pe.mu.Lock()
	old := pe.open[0]
	pe.mu.Unlock()
	old.c.Close()
	time.Sleep(100 * time.Millisecond)
	close(answer)
	select {
	case err := <-errc:
		noPanic(t, "Rotate", err)
		t.Logf("Rotate: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("Rotate hung after the old connection was lost during its setup")
	}
	eventually(t, 10*time.Second, "connected with a.b active", func() bool {
		return c.State() == actors.StateConnected && chanState(c, "a.b") == actors.ChannelActive
	})
	if _, err := c.Call(ctxT(t, 5*time.Second), "public/test", nil); err != nil {
		t.Errorf("no working connection after: %v", err)
	}
	noPanic(t, "LastError", c.Health().LastError)
	ch.check(t)
}

// Close while a rotation's new connection is in setup: Close returns
// without ErrTimeout, and nothing leaks (goleak in TestMain).
func TestCloseDuringRotationSetup(t *testing.T) {
	var armed atomic.Bool
	inSetup := make(chan struct{}, 1)
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) && armed.Load() && rc.idx == 1 {
				select {
				case inSetup <- struct{}{}:
				default:
				}
				return true // never answered
			}
			return false
		})
	}
	c := dial(t, pe.URL, nil)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	errc := make(chan error, 1)
	go func() { errc <- c.Rotate(ctxT(t, 15*time.Second)) }()
	<-inSetup
	if err := c.Close(); err != nil {
		t.Errorf("Close during a rotation's setup: %v", err)
	}
	select {
	case err := <-errc:
		noPanic(t, "Rotate", err)
		if err == nil {
			t.Error("Rotate returned nil although the client closed during it")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Rotate hung after Close")
	}
}

// (Holds: guard.) Reconnect, Rotate, Subscribe, Unsubscribe racing each
// other and drops for 3 s: no panic, no hang, a coherent chain, typed errors
// (a sentinel or a *PartialError); then Close.
func TestRacingOpsAndDrops(t *testing.T) {
	pe := newRawPeer(t, nil)
	var ch chain
	c := dial(t, pe.URL, &ch)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	untyped := 0
	rec := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				f()
				// Most calls fail at once (not connected): without a
				// pause four loops spin (72,000 calls in 3 s), starving
				// the client and every other test of the run of CPU.
				time.Sleep(time.Millisecond)
			}
		}()
	}
	run(func() { rec(c.Reconnect(ctxT(t, 3*time.Second))) })
	run(func() { rec(c.Rotate(ctxT(t, 3*time.Second))) })
	run(func() { rec(c.Subscribe(ctxT(t, 3*time.Second), "x.1", "x.2")) })
	run(func() { rec(c.Unsubscribe(ctxT(t, 3*time.Second), "x.2")) })
	run(func() { time.Sleep(37 * time.Millisecond); pe.dropAll() })
	time.Sleep(3 * time.Second)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("an operation hung; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	kinds := map[string]int{}
	for _, e := range errs {
		noPanic(t, "op", e)
		k := e.Error()
		if len(k) > 70 {
			k = k[:70]
		}
		kinds[k]++
		if !errors.Is(e, actors.ErrNotConnected) && !errors.Is(e, actors.ErrDisconnected) && !errors.Is(e, actors.ErrRotationFailed) &&
			!errors.Is(e, actors.ErrTimeout) && !errors.Is(e, actors.ErrClosed) && !errors.As(e, new(*actors.PartialError)) {
			untyped++
		}
	}
	t.Logf("error kinds: %v", kinds)
	if untyped > 0 {
		t.Errorf("%d errors match none of the documented sentinels", untyped)
	}
	eventually(t, 10*time.Second, "connected after the storm", func() bool { return c.State() == actors.StateConnected })
	if _, err := c.Call(ctxT(t, 5*time.Second), "public/test", nil); err != nil {
		t.Errorf("Call after the storm: %v", err)
	}
	noPanic(t, "LastError", c.Health().LastError)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	ch.check(t)
	t.Logf("conns %d errors %d health %+v", pe.conns.Load(), len(errs), c.Health().Restarts)
}
