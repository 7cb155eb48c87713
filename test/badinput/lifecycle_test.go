package badinput

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/supervision"
	"github.com/zenws/zenws/transport/wstest"
)

// nilCtx is the nil context a caller's bug passes.
var nilCtx context.Context

// TestLifecycleHostileInputs: the connection life cycle under venues that
// flap, flood maintenance notices or go silent, and API misuse (nil and
// cancelled contexts, durations below their minimums, panicking user
// code). Issue 12 items 10, 12, 13, 14, 16, 17, 18.
func TestLifecycleHostileInputs(t *testing.T) {
	rows := []row{
		{"13: a venue that accepts and drops after 50 ms (10 clients)", "bounded dials: 1 + RetryCount each, then *GiveUpError", func(t *testing.T) {
			venue := testutil.NewFlappy(t, 50*time.Millisecond)
			sys := testutil.NewSystem(t)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var cs []*actors.Client
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if c, err := actors.Connect(ctx(t), sys, venue.URL(), fast(func(c *actors.Config) { c.StableAfter = time.Second })...); err == nil {
						mu.Lock()
						cs = append(cs, c)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for _, c := range cs {
				select {
				case <-c.Done():
				case <-time.After(5 * time.Second):
					t.Fatalf("a client never gave up: %+v", c.Health())
				}
			}
			if n := venue.Upgrades(); n > 10*(1+defaultRetryCount) {
				t.Fatalf("%d connections", n)
			}
		}},
		{"13: a venue that sends 101 and closes at once", "at most 1 + RetryCount connections", func(t *testing.T) {
			venue := testutil.NewFlappy(t, 0)
			c, err := actors.Connect(ctx(t), testutil.NewSystem(t), venue.URL(), fast(func(c *actors.Config) { c.StableAfter = time.Second })...)
			if err == nil {
				defer func() { _ = c.Close() }()
			}
			time.Sleep(time.Second)
			if n := venue.Upgrades(); n > 1+defaultRetryCount {
				t.Fatalf("%d connections in 1 s", n)
			}
		}},
		{"13: a stable connection dropped, with a 10 s backoff base", "redialled at once, no backoff wait", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			c := connect(t, srv.URL(), actors.WithRetryDelay(10*time.Second), actors.WithMaxBackoff(time.Minute), func(c *actors.Config) { c.StableAfter = 50 * time.Millisecond })
			if _, err := srv.WaitConns(ctx(t), 1); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			srv.DropAll()
			testutil.Eventually(t, 3*time.Second, "redialled", func() bool { return c.Health().Generation == 2 && c.State() == actors.StateConnected })
		}},
		{"10: serverShutdown every 5 ms for 1.5 s (Binance venue)", "at most one rotation per connection, spaced: <= 4 connections", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			c := connect(t, srv.URL(), actors.WithVenue(binance.Venue{}), actors.WithRateLimiter(nil, actors.RateWait))
			deadline := time.Now().Add(1500 * time.Millisecond)
			for time.Now().Before(deadline) {
				for _, conn := range srv.Conns() {
					_ = conn.SendServerShutdown(ctx(t))
				}
				time.Sleep(5 * time.Millisecond)
			}
			if n, h := srv.TotalConns(), c.Health(); n > 4 || h.MaintenanceNotices < 50 || h.State != actors.StateConnected {
				t.Fatalf("%d connections, %+v", n, h)
			}
		}},
		{"12: a frame header after the 101, then silence (default heartbeat kind)", "ErrHeartbeatTimeout: pings are on by default", func(t *testing.T) {
			cfg, err := actors.NewConfig("ws://x")
			if err != nil || cfg.Heartbeat != actors.HeartbeatPingPong || cfg.HeartbeatInterval != 30*time.Second || cfg.HeartbeatMisses != 2 {
				t.Fatalf("default heartbeat %v every %v, %d misses (%v)", cfg.Heartbeat, cfg.HeartbeatInterval, cfg.HeartbeatMisses, err)
			}
			venue := testutil.NewFlappy(t, 4*time.Second)                                      // answers 101, then reads nothing
			venue.SetAfter([]byte{0x81, 100, 'p', 'a', 'r', 't'})                              // a 100-byte text frame that never completes
			interval := func(c *actors.Config) { c.HeartbeatInterval = 50 * time.Millisecond } // the kind stays the default
			c := connect(t, venue.URL(), interval, func(c *actors.Config) { c.StableAfter = time.Minute })
			start := time.Now()
			testutil.Eventually(t, 3*time.Second, "the dead connection found", func() bool {
				return errors.Is(c.Health().LastError, actors.ErrHeartbeatTimeout)
			})
			t.Logf("found dead after %v", time.Since(start).Round(time.Millisecond))
		}},
		{"14: a NetDial that panics", "*actors.PanicError as a failed attempt; no crash", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			_, err := actors.Connect(ctx(t), testutil.NewSystem(t), srv.URL(), fast(actors.WithRetryCount(0),
				func(c *actors.Config) {
					c.NetDial = func(context.Context, string, string) (net.Conn, error) { panic("dialer bug") }
				})...)
			var pe *actors.PanicError
			if !errors.As(err, &pe) || pe.Where != "NetDial" {
				t.Fatalf("got %v", err)
			}
		}},
		{"14: a Dialect that panics during the restore", "*actors.PanicError to OnRestoreFailed; connected", func(t *testing.T) {
			srv := wstest.NewServer(wstest.WithDeribit())
			defer srv.Close()
			armed := new(atomic.Bool)
			failed := make(chan error, 1)
			c := connect(t, srv.URL(), func(c *actors.Config) { c.Dialect = testutil.PanickyDialect{Armed: armed} }, func(c *actors.Config) { c.StableAfter = minStableAfter },
				func(c *actors.Config) {
					c.OnRestoreFailed = func(_ *actor.PID, _ []string, err error) { failed <- err }
				})
			if err := c.Subscribe(ctx(t), "ticker.BTC"); err != nil {
				t.Fatal(err)
			}
			armed.Store(true)
			time.Sleep(2 * minStableAfter)
			srv.DropAll()
			var pe *actors.PanicError
			select {
			case err := <-failed:
				if !errors.As(err, &pe) {
					t.Fatalf("got %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no failed restore")
			}
			testutil.Eventually(t, 2*time.Second, "connected", func() bool { return c.State() == actors.StateConnected })
		}},
		{"16: nil ctx to Connect, WaitConnected, StartClient and the balancer", "actors.ErrNilContext; nothing spawned or dialled", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			sys := testutil.NewSystem(t)
			if _, err := actors.Connect(nilCtx, sys, srv.URL()); !errors.Is(err, actors.ErrNilContext) {
				t.Fatalf("Connect: %v", err)
			}
			s, err := supervision.Start(sys)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Stop() }()
			if _, err := s.StartClient(nilCtx, srv.URL()); !errors.Is(err, actors.ErrNilContext) {
				t.Fatalf("StartClient: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
			if n := srv.TotalConns(); n != 0 {
				t.Fatalf("%d connections left behind", n)
			}
			c := connect(t, srv.URL())
			if err := c.WaitConnected(nilCtx); !errors.Is(err, actors.ErrNilContext) {
				t.Fatalf("WaitConnected: %v", err)
			}
			b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return []*actor.PID{c.PID()} }))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b.Stop() }()
			_, errReq := b.Request(nilCtx, []byte(`{"jsonrpc":"2.0","id":1,"method":"x"}`))
			_, errCall := b.Call(nilCtx, "x", nil)
			for _, err := range []error{b.Send(nilCtx, []byte("x")), errReq, errCall, b.Refresh(nilCtx)} {
				if !errors.Is(err, actors.ErrNilContext) {
					t.Fatalf("balancer: %v", err)
				}
			}
		}},
		{"17: durations below their minimums", "*actors.ConfigError naming the field", func(t *testing.T) {
			for field, opt := range map[string]actors.Option{
				"HeartbeatInterval": actors.WithHeartbeat(actors.HeartbeatPingPong, time.Nanosecond),
				"MaxConnectionAge":  actors.WithMaxConnectionAge(24),
				"WriteTimeout":      func(c *actors.Config) { c.WriteTimeout = time.Nanosecond },
				"Timeout":           actors.WithTimeout(time.Nanosecond),
				"RetryDelay":        actors.WithRetryDelay(time.Nanosecond),
				"RequestTimeout":    actors.WithRequestTimeout(time.Nanosecond),
				"StableAfter":       func(c *actors.Config) { c.StableAfter = time.Nanosecond },
			} {
				_, err := actors.NewConfig("ws://x", opt)
				var ce *actors.ConfigError
				if !errors.As(err, &ce) || ce.Field != field {
					t.Errorf("%s: got %v", field, err)
				}
			}
			_, err := supervision.Start(testutil.NewSystem(t), supervision.WithRestartBudget(1, time.Nanosecond))
			var ce *actors.ConfigError
			if !errors.As(err, &ce) || ce.Field != "RestartBudget.within" {
				t.Fatalf("restart budget: %v", err)
			}
		}},
		{"18: 1,000 Sends with an already cancelled ctx, and a balanced Send", "context.Canceled; nothing written", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			sys := testutil.NewSystem(t)
			c := connect(t, srv.URL())
			conns, err := srv.WaitConns(ctx(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			cancelled, cancel := context.WithCancel(context.Background())
			cancel()
			for range 1000 {
				want(t, c.Send(cancelled, []byte("x")), context.Canceled)
			}
			b, err := balancer.New(sys, balancer.WithDiscovery(func() []*actor.PID { return []*actor.PID{c.PID()} }))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b.Stop() }()
			want(t, b.Send(cancelled, []byte("x")), context.Canceled)
			if err := c.Send(ctx(t), []byte("last")); err != nil {
				t.Fatal(err)
			}
			msgs, err := conns[0].WaitReceived(ctx(t), 1)
			if err != nil || len(msgs) != 1 || string(msgs[0].Data) != "last" {
				t.Fatalf("server got %d frames (%v)", len(msgs), err)
			}
		}},
	}
	runRows(t, rows)
	t.Logf("%d life-cycle hostile inputs, each handled as its row says", len(rows))
}
