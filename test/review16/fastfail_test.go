package review16

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
)

// timedRemote is another node's client through balancer.WithResolver:
// connected, each operation taking delay and then failing with
// ErrDisconnected (after sending: "maybe executed") while failing is set.
type timedRemote struct {
	sys     *actor.ActorSystem
	pid     *actor.PID
	delay   time.Duration
	failing atomic.Bool
	calls   atomic.Int64
}

func (f *timedRemote) PID() *actor.PID          { return f.pid }
func (f *timedRemote) UnwatchHealth(*actor.PID) {}
func (f *timedRemote) op(ctx context.Context) error {
	f.calls.Add(1)
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.failing.Load() {
		return actors.ErrDisconnected
	}
	return nil
}
func (f *timedRemote) Send(ctx context.Context, _ []byte) error { return f.op(ctx) }
func (f *timedRemote) Call(ctx context.Context, _ string, _ any) (json.RawMessage, error) {
	if err := f.op(ctx); err != nil {
		return nil, err
	}
	return json.RawMessage(`"filled"`), nil
}
func (f *timedRemote) Request(ctx context.Context, _ []byte) (json.RawMessage, error) {
	return f.Call(ctx, "", nil)
}
func (f *timedRemote) WatchHealth(router *actor.PID) {
	f.sys.Root.Send(router, &actors.HealthUpdate{Client: f.pid, Health: actors.Health{State: actors.StateConnected, Generation: 1}})
}

// TestFastFailingClientDoesNotWinPicks: fix 9 feeds a failure after
// sending into the peak EWMA with its elapsed time. A client whose
// operations fail ErrDisconnected after 1 ms (a link that resets at once,
// a venue gateway closing each request: still "connected" between
// failures) beside one that answers in 20 ms: orders (not retry-safe)
// picked for the fast failer fail "maybe executed". It must not keep
// winning picks by failing fast: a failure counts as a round trip only
// where it raises the estimate, and an estimate without samples decays
// towards zero, so a client failing in 1 ms stays at about 1 ms (and
// cheaper between probes) against 20 ms: only recent errors weigh
// against it, and they decay too. A fix: a failure after sending raises
// the estimate to at least the pool's median (or the client's own
// successful RTT), or weighs errors so that one failing every operation
// loses to any client that answers.
func TestFastFailingClientDoesNotWinPicks(t *testing.T) {
	openFindingB(t, 7)
	failingBeside(t, time.Millisecond)
}

// TestSlowFailingClientLosesPicks: the same with the failure after 200 ms
// (guard: it raises the estimate, 1 order of 500 failed when run).
func TestSlowFailingClientLosesPicks(t *testing.T) {
	failingBeside(t, 200*time.Millisecond)
}

func failingBeside(t *testing.T, delay time.Duration) {
	sys := quietSystem(t)
	bad := &timedRemote{sys: sys, pid: actor.NewPID("10.0.0.1:7000", "zenws-client$1"), delay: delay}
	bad.failing.Store(true)
	good := &timedRemote{sys: sys, pid: actor.NewPID("10.0.0.2:7000", "zenws-client$2"), delay: 20 * time.Millisecond}
	eps := map[string]*timedRemote{bad.pid.String(): bad, good.pid.String(): good}
	pids := []*actor.PID{bad.pid, good.pid}
	b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return pids }),
		balancer.WithResolver(func(p *actor.PID) (balancer.Endpoint, bool) {
			ep, ok := eps[p.String()]
			return ep, ok
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool {
		n := 0
		for _, ch := range b.PoolHealth() {
			if ch.Eligible {
				n++
			}
		}
		return n == 2
	}) {
		t.Fatal("the two clients never eligible")
	}
	// 250 orders in a row to learn, then 250 counted: a balancer that
	// learned keeps the failing client to its occasional probe.
	orders := func(n int) (failed int) {
		for i := 0; i < n; i++ {
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			if _, err := b.Call(cctx, "private/buy", map[string]string{"id": fmt.Sprint(i)}); err != nil {
				failed++
			}
			ccancel()
		}
		return failed
	}
	first := orders(250)
	badBefore := bad.calls.Load()
	later := orders(250)
	t.Logf("orders 1-250: %d failed; 251-500: %d failed; the fast failer picked %d times in all, the good one %d",
		first, later, bad.calls.Load(), good.calls.Load())
	if first+later > 5 {
		t.Errorf("%d of 500 orders (%d of the last 250) failed ErrDisconnected (maybe executed) on a client that fails every operation after %v, beside a healthy 20 ms one (picked %d times in the last 250); failing after 200 ms it is 1",
			first+later, later, delay, bad.calls.Load()-badBefore)
	}
}
