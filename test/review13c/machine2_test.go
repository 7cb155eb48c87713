package review13c

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/supervision"
)

// A give-up under a supervisor in the middle of a rotation: the rotation's
// setup stalls, the old connection drops, every redial is refused until the
// client gives up and is restarted; then the venue is back. The restarted
// client connects with its channel, the chain is coherent, no PanicError.
func TestGiveUpDuringRotationUnderSupervisor(t *testing.T) {
	var armed atomic.Bool
	inSetup := make(chan *rawConn, 1)
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) && armed.Load() && rc.idx == 1 {
				select {
				case inSetup <- rc:
				default:
				}
				return true // never answered
			}
			return false
		})
	}
	sys := newSys(t)
	sup, err := supervision.Start(sys, supervision.WithRestartBudget(5, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.Stop() })
	var ch chain
	c, err := sup.StartClient(ctxT(t, 10*time.Second), pe.URL,
		actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(30*time.Millisecond), actors.WithRetryCount(2),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }), actors.WithStateObserver(ch.add),
		actors.WithRequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	rot := make(chan error, 1)
	go func() { rot <- c.Rotate(ctxT(t, 20*time.Second)) }()
	select {
	case <-inSetup:
	case <-time.After(10 * time.Second):
		t.Fatal("rotation never reached setup")
	}
	pe.refuse.Store(true)
	pe.dropAll()
	eventually(t, 10*time.Second, "a restart", func() bool { return c.Health().Restarts >= 1 })
	pe.refuse.Store(false)
	select {
	case err := <-rot:
		noPanic(t, "Rotate", err)
		if err == nil {
			t.Error("Rotate returned nil although the rotation never completed")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Rotate hung across a give-up and restart")
	}
	eventually(t, 10*time.Second, "connected with a.b active after the restart", func() bool {
		return c.State() == actors.StateConnected && chanState(c, "a.b") == actors.ChannelActive
	})
	noPanic(t, "LastError", c.Health().LastError)
	ch.check(t)
	t.Logf("restarts %d refused %d conns %d chain %s", c.Health().Restarts, pe.refused.Load(), pe.conns.Load(), render(ch.get()))
}

// A flood of Binance serverShutdown notices on every connection while
// Rotate is called in a loop: a bounded number of connections, no panic,
// coherent chain, connected at the end.
func TestShutdownFloodDuringRotations(t *testing.T) {
	stop := make(chan struct{})
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				if rc.text(`{"event":{"e":"serverShutdown","E":1}}`) != nil {
					return
				}
			}
		}()
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if r.Method == "SUBSCRIBE" || r.Method == "UNSUBSCRIBE" {
				_ = rc.text(`{"result":null,"id":` + string(r.ID) + `}`)
				return true
			}
			return false
		})
	}
	var ch chain
	c := dial(t, pe.URL, &ch, actors.WithVenue(binance.Venue{}), actors.WithRateLimiter(nil, actors.RateWait),
		actors.WithHandler(func(actors.Inbound) {}))
	if err := c.Subscribe(ctxT(t, 5*time.Second), "btcusdt@trade"); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(3 * time.Second)
	var rotErrs []error
	for time.Now().Before(end) {
		if err := c.Rotate(ctxT(t, 5*time.Second)); err != nil {
			rotErrs = append(rotErrs, err)
		}
	}
	close(stop)
	for _, e := range rotErrs {
		noPanic(t, "Rotate", e)
		if !errors.Is(e, actors.ErrRotationFailed) && !errors.Is(e, actors.ErrNotConnected) {
			t.Errorf("Rotate: untyped error %v", e)
		}
	}
	eventually(t, 10*time.Second, "connected, channel active", func() bool {
		return c.State() == actors.StateConnected && chanState(c, "btcusdt@trade") == actors.ChannelActive
	})
	h := c.Health()
	noPanic(t, "LastError", h.LastError)
	ch.check(t)
	b, _ := json.Marshal(map[string]any{"conns": pe.conns.Load(), "rotations": h.Rotations, "notices": h.MaintenanceNotices, "reconnects": h.Reconnects})
	t.Logf("%s, %d rotate errors", b, len(rotErrs))
	if h.Reconnects > 0 {
		t.Errorf("%d reconnects: a notice flood during rotations lost the connection", h.Reconnects)
	}
}

// While a rotation's new connection is in setup (its restore unanswered),
// the client is connected on the old one with every channel active: Health
// says connected, not degraded, the channel active; after Close, Health
// says disconnected with nothing pending and no ConnectedSince.
func TestHealthDuringRotationSetup(t *testing.T) {
	var armed atomic.Bool
	inSetup := make(chan struct{}, 1)
	release := make(chan struct{})
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) && armed.Load() && rc.idx == 1 {
				select {
				case inSetup <- struct{}{}:
				default:
				}
				<-release
			}
			return false
		})
	}
	c := dial(t, pe.URL, nil)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b", "c.d"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	rot := make(chan error, 1)
	go func() { rot <- c.Rotate(ctxT(t, 10*time.Second)) }()
	<-inSetup
	time.Sleep(50 * time.Millisecond)
	h := c.Health()
	if h.State != actors.StateConnected || h.Degraded || h.ConnectedSince.IsZero() {
		t.Errorf("during a rotation's setup: state %v degraded %v since %v", h.State, h.Degraded, h.ConnectedSince)
	}
	for _, s := range h.Channels {
		if s.State != actors.ChannelActive {
			t.Errorf("during a rotation's setup: channel %s is %v, want active (it is, on the live connection)", s.Channel, s.State)
		}
	}
	close(release)
	if err := <-rot; err != nil {
		t.Errorf("Rotate: %v", err)
	}
	h = c.Health()
	if h.Degraded || h.Rotations != 1 {
		t.Errorf("after the rotation: degraded %v rotations %d", h.Degraded, h.Rotations)
	}
	_ = c.Close()
	h = c.Health()
	if h.State != actors.StateDisconnected || h.Pending != 0 || !h.ConnectedSince.IsZero() {
		t.Errorf("after Close: state %v pending %d since %v", h.State, h.Pending, h.ConnectedSince)
	}
}

// Subscribe and Unsubscribe while a rotation's new connection runs its
// restore (its first subscribe held by the venue): after the switch the new
// connection must carry late.1 (the venue saw it subscribed there) and not
// carry gone.1 (unsubscribed there, or never subscribed).
func TestIntentChangeDuringRotationRestore(t *testing.T) {
	var armed atomic.Bool
	inSetup := make(chan struct{}, 1)
	release := make(chan struct{})
	var mu sync.Mutex
	state := map[int]map[string]bool{} // per connection: channel -> subscribed
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if strings.HasSuffix(r.Method, "subscribe") {
				mu.Lock()
				if state[rc.idx] == nil {
					state[rc.idx] = map[string]bool{}
				}
				for _, ch := range r.Params.Channels {
					state[rc.idx][ch] = !strings.HasSuffix(r.Method, "unsubscribe")
				}
				mu.Unlock()
			}
			if isSub(r) && armed.Load() && rc.idx == 1 {
				select {
				case inSetup <- struct{}{}:
					<-release
				default:
				}
			}
			return false
		})
	}
	c := dial(t, pe.URL, nil)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b", "gone.1"); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	rot := make(chan error, 1)
	go func() { rot <- c.Rotate(ctxT(t, 10*time.Second)) }()
	<-inSetup
	if err := c.Subscribe(ctxT(t, 5*time.Second), "late.1"); err != nil {
		t.Errorf("Subscribe during the rotation: %v", err)
	}
	if err := c.Unsubscribe(ctxT(t, 5*time.Second), "gone.1"); err != nil {
		t.Errorf("Unsubscribe during the rotation: %v", err)
	}
	close(release)
	if err := <-rot; err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	eventually(t, 5*time.Second, "late.1 active", func() bool { return chanState(c, "late.1") == actors.ChannelActive })
	ok := eventually(t, 5*time.Second, "the new connection carries late.1 and not gone.1", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return state[1]["late.1"] && !state[1]["gone.1"] && state[1]["a.b"]
	})
	if !ok {
		mu.Lock()
		t.Logf("venue's view of connection 1: %v; client: %v", state[1], c.Subscriptions())
		mu.Unlock()
	}
}

// (Guard.) A venue that accepts, confirms the restore and drops, in a loop
// for 2 s, with RetryForever: the backoff climbs (connections bounded), the
// client never gives up, the chain is coherent, and it is connected once the
// venue stops dropping.
func TestAcceptDropLoop(t *testing.T) {
	var dropping atomic.Bool
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) && dropping.Load() {
				b, _ := json.Marshal(r.Params.Channels)
				_ = rc.text(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"result":` + string(b) + `}`)
				time.Sleep(5 * time.Millisecond)
				rc.c.Close()
				return true
			}
			return false
		})
	}
	var ch chain
	c := dial(t, pe.URL, &ch, actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(200*time.Millisecond))
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b"); err != nil {
		t.Fatal(err)
	}
	dropping.Store(true)
	pe.dropAll()
	time.Sleep(2 * time.Second)
	conns := pe.conns.Load()
	dropping.Store(false)
	eventually(t, 10*time.Second, "connected, a.b active", func() bool {
		return c.State() == actors.StateConnected && chanState(c, "a.b") == actors.ChannelActive
	})
	h := c.Health()
	t.Logf("connections in 2 s: %d; reconnects %d restarts %d", conns, h.Reconnects, h.Restarts)
	if conns > 100 {
		t.Errorf("%d connections in 2 s with a 200 ms backoff cap: the backoff did not climb", conns)
	}
	if h.StopReason != nil || h.Restarts != 0 {
		t.Errorf("stop reason %v restarts %d", h.StopReason, h.Restarts)
	}
	noPanic(t, "LastError", h.LastError)
	ch.check(t)
}

// (Guard.) Connection lost at the switch-over, 20 times: the rotation's new
// connection answers its restore and is dropped at once (variant new), or
// the old one is dropped the moment the new one answers (variant old).
// Rotate returns nil or a typed error, the client ends connected with its
// channel, the chain is coherent, no panic.
func TestLossAtSwitchOver(t *testing.T) {
	for _, variant := range []string{"new", "old"} {
		t.Run(variant, func(t *testing.T) {
			var armed atomic.Bool
			var cur atomic.Pointer[rawConn]
			var alive atomic.Int64
			pe := newRawPeer(t, nil)
			pe.onConn = func(rc *rawConn) {
				rotation := alive.Add(1) > 1 // another connection is open: a rotation's replacement
				defer alive.Add(-1)
				rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
					if isSub(r) && armed.Load() && rotation {
						b, _ := json.Marshal(r.Params.Channels)
						_ = rc.text(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"result":` + string(b) + `}`)
						if variant == "new" {
							rc.c.Close()
						} else if old := cur.Swap(rc); old != nil && old != rc {
							old.c.Close()
						}
						return true
					}
					if cur.Load() == nil {
						cur.Store(rc)
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
			for i := 0; i < 20; i++ {
				err := c.Rotate(ctxT(t, 10*time.Second))
				noPanic(t, "Rotate", err)
				if err != nil && !errors.Is(err, actors.ErrRotationFailed) && !errors.Is(err, actors.ErrNotConnected) && !errors.Is(err, actors.ErrDisconnected) {
					t.Errorf("Rotate: untyped %v", err)
				}
				_ = c.WaitConnected(ctxT(t, 10*time.Second))
			}
			armed.Store(false)
			h := c.Health()
			t.Logf("%s: rotations %d reconnects %d conns %d", variant, h.Rotations, h.Reconnects, pe.conns.Load())
			// Observed, not asserted (a race): in variant new about 1-2 of
			// 20 rotations switch to the replacement whose EOF the reader
			// already had, and then reconnect (a gap) instead of keeping
			// the old connection.
			time.Sleep(200 * time.Millisecond)
			eventually(t, 10*time.Second, "connected, a.b active", func() bool {
				return c.State() == actors.StateConnected && chanState(c, "a.b") == actors.ChannelActive
			})
			eventually(t, 10*time.Second, "a Call answered", func() bool {
				_, err := c.Call(ctxT(t, 5*time.Second), "public/test", nil)
				return err == nil
			})
			noPanic(t, "LastError", c.Health().LastError)
			ch.check(t)
		})
	}
}

// (Guard.) Reconnect while a rotation's dial hangs in its handshake: the
// Reconnect must not wait for the rotation's dial (Timeout 5 s): it returns
// connected well before, and Rotate returns a typed error.
func TestReconnectDuringRotationDial(t *testing.T) {
	pe := newRawPeer(t, nil)
	c := dial(t, pe.URL, nil, actors.WithTimeout(5*time.Second))
	pe.stallNext.Store(true)
	rot := make(chan error, 1)
	go func() { rot <- c.Rotate(ctxT(t, 15*time.Second)) }()
	eventually(t, 5*time.Second, "rotation dial stalled", func() bool { return pe.stalled.Load() == 1 })
	start := time.Now()
	if err := c.Reconnect(ctxT(t, 10*time.Second)); err != nil {
		t.Errorf("Reconnect during a rotation's dial: %v", err)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("Reconnect took %v: it waited for the rotation's hung dial", el)
	}
	select {
	case err := <-rot:
		noPanic(t, "Rotate", err)
		if err == nil {
			t.Error("Rotate returned nil; its rotation was abandoned")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Rotate hung")
	}
}

// (Guard.) A Subscribe waiting for its answer when the client gives up and
// its supervisor restarts it: the Subscribe returns (typed), the channel is
// kept as intent and active after the restart.
func TestSubscribePendingAcrossRestart(t *testing.T) {
	var holdSub atomic.Bool
	holdSub.Store(true)
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			return isSub(r) && holdSub.Load() && rc.idx == 0
		})
	}
	sys := newSys(t)
	sup, err := supervision.Start(sys, supervision.WithRestartBudget(5, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.Stop() })
	var ch chain
	c, err := sup.StartClient(ctxT(t, 10*time.Second), pe.URL,
		actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(30*time.Millisecond), actors.WithRetryCount(1),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }), actors.WithStateObserver(ch.add))
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { res <- c.Subscribe(ctxT(t, 20*time.Second), "p.1") }()
	eventually(t, 5*time.Second, "subscribe pending", func() bool { return c.Health().Pending >= 1 })
	pe.refuse.Store(true)
	pe.dropAll()
	eventually(t, 10*time.Second, "restarted", func() bool { return c.Health().Restarts >= 1 })
	pe.refuse.Store(false)
	select {
	case err := <-res:
		noPanic(t, "Subscribe", err)
		t.Logf("Subscribe: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Subscribe hung across the restart")
	}
	eventually(t, 10*time.Second, "p.1 active after the restart", func() bool {
		return c.State() == actors.StateConnected && chanState(c, "p.1") == actors.ChannelActive
	})
	ch.check(t)
}
