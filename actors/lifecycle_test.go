package actors_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// A venue that accepts and drops after 50 ms: the backoff count must not
// reset on the bare 101, so 50 clients make a bounded number of dials and
// then give up (before: every client redialled every ~60 ms forever, 91
// dials/s for 50 clients with the default 1 s delay).
func TestAcceptThenDropClimbsTheLadderAndGivesUp(t *testing.T) {
	venue := testutil.NewFlappy(t, 50*time.Millisecond)
	sys := newSystem(t)
	const clients, retries = 50, 3
	var mu sync.Mutex
	var cs []*actors.Client
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := actors.Connect(ctxT(t, 10*time.Second), sys, venue.URL(), fast(actors.WithRetryCount(retries), func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = 0, 0 }, func(c *actors.Config) { c.StableAfter = time.Second })...)
			if err != nil {
				return // it may already have been dropped during Connect's wait
			}
			mu.Lock()
			cs = append(cs, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	time.Sleep(3 * time.Second)
	n := venue.UpgradesBetween(start, time.Now())
	t.Logf("accept-then-drop (50 ms): %d clients made %d connections in %v (%.1f/s)", clients, n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	if limit := clients * (1 + retries); n > limit {
		t.Fatalf("%d connections, want at most %d (1 + RetryCount per client)", n, limit)
	}
	for _, c := range cs {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("a client never gave up: %+v", c.Health())
		}
		var gu *actors.GiveUpError
		if err := c.Health().StopReason; !errors.As(err, &gu) {
			t.Fatalf("stop reason %v, want a *GiveUpError", err)
		}
	}
}

// A venue that answers 101 and closes at once (before: 454 reconnects in
// 5 s for one client).
func TestUpgradeThenCloseIsBounded(t *testing.T) {
	venue := testutil.NewFlappy(t, 0)
	sys := newSystem(t)
	start := time.Now()
	c, err := actors.Connect(ctxT(t, 5*time.Second), sys, venue.URL(), fast(func(c *actors.Config) { c.StableAfter = time.Second })...)
	if err == nil {
		defer func() { _ = c.Close() }()
	}
	time.Sleep(2 * time.Second)
	n := venue.Upgrades()
	t.Logf("101-then-close: %d connections in %v", n, time.Since(start).Round(time.Millisecond))
	if n > 1+actors.DefaultRetryCount {
		t.Fatalf("%d connections in 2 s, want at most %d", n, 1+actors.DefaultRetryCount)
	}
}

// A connection that was up longer than StableAfter is redialled at once,
// even with a long backoff base (before: the first wait was U[0, RetryDelay],
// a 5 s median here).
func TestStableConnectionIsRedialledAtOnce(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	c := connect(t, sys, srv.URL(), actors.WithRetryDelay(10*time.Second), actors.WithMaxBackoff(time.Minute),
		func(c *actors.Config) { c.StableAfter = 50 * time.Millisecond })
	var took []time.Duration
	for i := range 10 {
		waitServerConn(t, srv)
		time.Sleep(80 * time.Millisecond) // past StableAfter
		gen := c.Health().Generation
		at := time.Now()
		srv.DropAll()
		eventually(t, 3*time.Second, "redialled", func() bool {
			h := c.Health()
			return h.State == actors.StateConnected && h.Generation > gen
		})
		took = append(took, time.Since(at))
		if h := c.Health(); h.Reconnects != uint64(i+1) {
			t.Fatalf("reconnects %d after %d drops", h.Reconnects, i+1)
		}
	}
	slices.Sort(took)
	t.Logf("reconnect after a stable connection: median %v, max %v", took[len(took)/2], took[len(took)-1])
}

// A connection lost before StableAfter waits a backoff: the redial at once
// is only for stable connections.
func TestUnstableConnectionWaitsItsBackoff(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	c := connect(t, sys, srv.URL(), actors.WithRetryDelay(time.Minute), actors.WithMaxBackoff(time.Minute),
		func(c *actors.Config) { c.StableAfter = time.Hour }, actors.WithRetryCount(5))
	waitServerConn(t, srv)
	// A wait of U[0, 1 min]: a redial within 300 ms has a 0.5% chance;
	// try twice, so that a false failure needs two such draws.
	for range 2 {
		gen := c.Health().Generation
		srv.DropAll()
		time.Sleep(300 * time.Millisecond)
		if h := c.Health(); h.Generation == gen || h.State != actors.StateReconnecting {
			return
		}
		_ = c.Reconnect(ctxT(t, 5*time.Second))
		waitServerConn(t, srv)
	}
	t.Fatal("an unstable connection was redialled at once, twice")
}

// 200 clients dropped at once reconnect through the host dial pacer: at most
// its burst plus its rate reconnect in the first 250 ms; all of them
// eventually (before: all 200 redialled at once).
func TestHostPacerSpreadsAMassDrop(t *testing.T) {
	testutil.RaiseFileLimit(t, 2048)
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	const clients, rate, burst = 200, 100, 20
	opts := []actors.Option{func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = rate, burst }, func(c *actors.Config) { c.StableAfter = 10 * time.Millisecond },
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithTimeout(5 * time.Second)}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := actors.Connect(ctxT(t, 20*time.Second), sys, srv.URL(), opts...)
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Connect: %v", err)
	}
	if err := srv.WaitConnCount(ctxT(t, 10*time.Second), clients); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the pacer's bucket refills
	before := srv.TotalConns()
	at := time.Now()
	srv.DropAll()
	time.Sleep(250 * time.Millisecond)
	early, elapsed := srv.TotalConns()-before, time.Since(at)
	if err := srv.WaitConnCount(ctxT(t, 15*time.Second), clients); err != nil {
		t.Fatalf("not all reconnected: %v (%d open)", err, srv.ConnCount())
	}
	t.Logf("mass drop of %d: %d reconnected in the first %v, all in %v", clients, early, elapsed.Round(time.Millisecond), time.Since(at).Round(time.Millisecond))
	// The pacer admits at most burst + rate*elapsed dials in elapsed,
	// however slow the machine (a slower one only admits fewer).
	if limit := burst + int(rate*elapsed.Seconds()) + 5; early > limit {
		t.Fatalf("%d reconnected within %v, want at most %d (burst %d, %d/s)", early, elapsed, limit, burst, rate)
	}
}

// nilCtx is a nil context.Context held in a variable (what a caller's
// bug passes).
var nilCtx context.Context

// A nil ctx fails with ErrNilContext everywhere, and Connect leaves nothing
// behind (before: Connect(nil) panicked in WaitConnected and left a
// connected client nobody held; WaitConnected(nil) returned nil).
func TestNilContextFailsClearly(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	sys := newSystem(t)
	if c, err := actors.Connect(nilCtx, sys, srv.URL()); !errors.Is(err, actors.ErrNilContext) || c != nil {
		t.Fatalf("Connect(nil) = %v, %v", c, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := srv.TotalConns(); n != 0 {
		t.Fatalf("Connect(nil) left %d connections", n)
	}
	c := connect(t, sys, srv.URL(), fast()...)
	checks := map[string]error{
		"Send":          c.Send(nilCtx, []byte("x")),
		"SendBinary":    c.SendBinary(nilCtx, []byte("x")),
		"Subscribe":     c.Subscribe(nilCtx, "a"),
		"Unsubscribe":   c.Unsubscribe(nilCtx, "a"),
		"Reconnect":     c.Reconnect(nilCtx),
		"Rotate":        c.Rotate(nilCtx),
		"Wait":          c.Wait(nilCtx),
		"WaitConnected": c.WaitConnected(nilCtx),
	}
	_, checks["Call"] = c.Call(nilCtx, "public/test", nil)
	_, checks["Request"] = c.Request(nilCtx, []byte(`{"jsonrpc":"2.0","id":1,"method":"public/test"}`))
	for name, err := range checks {
		if !errors.Is(err, actors.ErrNilContext) {
			t.Errorf("%s(nil) = %v, want ErrNilContext", name, err)
		}
	}
	waitServerConn(t, srv)
	time.Sleep(50 * time.Millisecond)
	if n := srv.Conns()[0].ReceivedCount(); n != 0 || c.Health().Generation != 1 {
		t.Fatalf("nil ctx calls reached the server (%d frames) or reconnected: %+v", n, c.Health())
	}
}

// An already cancelled ctx returns its error and writes nothing, on every
// write path (before: 501 of 1,000 Sends went out).
func TestCancelledContextWritesNothing(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast()...)
	waitServerConn(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sent := 0
	for range 1000 {
		if err := c.Send(ctx, []byte("x")); err == nil {
			sent++
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send = %v", err)
		}
	}
	errs := map[string]error{
		"SendBinary":  c.SendBinary(ctx, []byte("x")),
		"Subscribe":   c.Subscribe(ctx, "a"),
		"Unsubscribe": c.Unsubscribe(ctx, "a"),
	}
	_, errs["Call"] = c.Call(ctx, "public/test", nil)
	_, errs["Request"] = c.Request(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"public/test"}`))
	for name, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s = %v, want context.Canceled", name, err)
		}
	}
	// A frame that does go out after them proves the connection is fine
	// and that nothing before it was written.
	if err := c.Send(ctxT(t, time.Second), []byte("last")); err != nil {
		t.Fatal(err)
	}
	msgs, err := srv.Conns()[0].WaitReceived(ctxT(t, 2*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if sent != 0 || len(msgs) != 1 || string(msgs[0].Data) != "last" {
		t.Fatalf("%d of 1000 cancelled Sends returned nil; server got %d frames", sent, len(msgs))
	}
}

// A Dialect that panics while the subscriptions are restored is a failed
// restore (a *PanicError to OnRestoreFailed), not a crash (before: the
// process exited with status 2).
func TestPanickingDialectDuringRestoreIsAFailedRestore(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	armed := new(atomic.Bool)
	failed := make(chan error, 1)
	c := connect(t, newSystem(t), srv.URL(), fast(func(c *actors.Config) { c.Dialect = testutil.PanickyDialect{Armed: armed} },
		func(c *actors.Config) {
			c.OnRestoreFailed = func(_ *actor.PID, _ []string, err error) { failed <- err }
		})...)
	if err := c.Subscribe(ctxT(t, 2*time.Second), "ticker.BTC"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	time.Sleep(2 * actors.MinStableAfter)
	srv.DropAll()
	select {
	case err := <-failed:
		var pe *actors.PanicError
		if !errors.As(err, &pe) || pe.Value != "dialect bug" {
			t.Fatalf("restore error %v, want a *PanicError", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no failed restore reported")
	}
	eventually(t, 2*time.Second, "connected without the subscription", func() bool { return c.State() == actors.StateConnected })
}

// A Dialect that panics inside the user's own Subscribe or Unsubscribe is
// a *PanicError returned to the caller (before: the panic went up the
// caller's goroutine), and the client stays connected.
func TestPanickingDialectInSubscribeIsAnError(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	armed := new(atomic.Bool)
	armed.Store(true)
	c := connect(t, newSystem(t), srv.URL(), fast(func(c *actors.Config) { c.Dialect = testutil.PanickyDialect{Armed: armed} })...)
	check := func(err error) {
		t.Helper()
		var pe *actors.PanicError
		if !errors.As(err, &pe) || pe.Value != "dialect bug" {
			t.Fatalf("got %v, want a *PanicError", err)
		}
	}
	check(c.Subscribe(ctxT(t, 2*time.Second), "ticker.BTC"))
	// An Unsubscribe runs the dialect only for a channel the venue has.
	armed.Store(false)
	if err := c.Subscribe(ctxT(t, 2*time.Second), "ticker.ETH"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	check(c.Unsubscribe(ctxT(t, 2*time.Second), "ticker.ETH"))
	if c.State() != actors.StateConnected {
		t.Fatalf("state %v after the panics", c.State())
	}
}

// A NetDial that panics is a failed attempt (a *PanicError), never a crash
// (before: it panicked on net/http's dial goroutine and ended the process).
func TestPanickingNetDialIsAFailedAttempt(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	calls := new(atomic.Int32)
	_, err := actors.Connect(ctxT(t, 5*time.Second), newSystem(t), srv.URL(), fast(actors.WithRetryCount(1),
		func(c *actors.Config) {
			c.NetDial = func(context.Context, string, string) (net.Conn, error) {
				calls.Add(1)
				panic("dialer bug")
			}
		})...)
	var pe *actors.PanicError
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || !errors.As(err, &pe) || pe.Where != "NetDial" || calls.Load() != 2 {
		t.Fatalf("Connect = %v after %d dials, want a *GiveUpError wrapping a *PanicError after 2", err, calls.Load())
	}
}

// Panics in the connect hook, the handler, OnConnect, OnDisconnect and the
// state observer are logged and counted; the client carries on.
func TestPanickingCallbacksDoNotCrash(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	hookCalls := new(atomic.Int32)
	hook := func(context.Context, *actors.Setup) error {
		if hookCalls.Add(1) == 1 {
			panic("hook bug")
		}
		return nil
	}
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithConnectHook(hook),
		actors.WithHandler(func(actors.Inbound) { panic("handler bug") }),
		actors.WithOnConnect(func(*actor.PID) { panic("on connect bug") }),
		actors.WithOnDisconnect(func(*actor.PID) { panic("on disconnect bug") }),
		actors.WithStateObserver(func(actors.StateChange) { panic("observer bug") }))...)
	var pe *actors.PanicError
	if err := c.Health().LastError; !errors.As(err, &pe) || pe.Where != "connect hook" {
		t.Fatalf("the hook's panic: LastError = %v, want a *PanicError", err)
	}
	waitServerConn(t, srv)
	if err := srv.Conns()[0].Send(ctxT(t, time.Second), websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "handler and OnConnect panics counted", func() bool { return c.Health().HandlerPanics >= 2 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Health().State != actors.StateDisconnected {
		t.Fatal("not stopped")
	}
}

// A server that sends Binance's serverShutdown every 5 ms on every
// connection: rotations are bounded (at most one per connection, spaced by
// a growing gap), the rest are coalesced and counted (before: 1,200-1,600
// connections in 3 s).
func TestMaintenanceNoticeFloodIsBounded(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithVenue(binance.Venue{}), actors.WithRateLimiter(nil, actors.RateWait), actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	waitServerConn(t, srv)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, conn := range srv.Conns() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = conn.SendServerShutdown(ctx)
				cancel()
			}
		}
	}()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	n := srv.TotalConns()
	h := c.Health()
	t.Logf("serverShutdown every 5 ms for 3 s: %d connections, %d rotations, %d notices", n, h.Rotations, h.MaintenanceNotices)
	if n > 5 || h.MaintenanceNotices < 100 {
		t.Fatalf("%d connections in 3 s (want at most 5), %d notices counted", n, h.MaintenanceNotices)
	}
	if h.State != actors.StateConnected || h.Reconnects != 0 {
		t.Fatalf("after the flood: %+v", h)
	}
}
