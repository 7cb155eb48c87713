package review13c

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
)

// (Holds: guard.) Subscribe and Unsubscribe while the venue refuses
// handshakes: both are intent; after the venue is back the unsubscribed
// channel is not restored and the new one is active; the peer never saw the
// unsubscribed channel subscribed on the new connection.
func TestIntentDuringOutage(t *testing.T) {
	var mu sync.Mutex
	subsPerConn := map[int][]string{}
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) {
				mu.Lock()
				subsPerConn[rc.idx] = append(subsPerConn[rc.idx], r.Params.Channels...)
				mu.Unlock()
			}
			return false
		})
	}
	c := dial(t, pe.URL, nil)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "old.1", "keep.1"); err != nil {
		t.Fatal(err)
	}
	pe.refuse.Store(true)
	pe.dropAll()
	eventually(t, 5*time.Second, "refusing", func() bool { return pe.refused.Load() >= 1 })
	var subErr, unsubErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); subErr = c.Subscribe(ctxT(t, 10*time.Second), "new.1") }()
	go func() { defer wg.Done(); unsubErr = c.Unsubscribe(ctxT(t, 10*time.Second), "old.1") }()
	time.Sleep(300 * time.Millisecond)
	pe.refuse.Store(false)
	wg.Wait()
	if subErr != nil || unsubErr != nil {
		t.Errorf("during an outage: Subscribe %v, Unsubscribe %v; want nil once the venue is back", subErr, unsubErr)
	}
	eventually(t, 10*time.Second, "new.1 and keep.1 active", func() bool {
		return chanState(c, "new.1") == actors.ChannelActive && chanState(c, "keep.1") == actors.ChannelActive
	})
	if st := chanState(c, "old.1"); st != 0 {
		t.Errorf("old.1 still in Health.Channels: %v", st)
	}
	mu.Lock()
	last := subsPerConn[int(pe.conns.Load())-1]
	mu.Unlock()
	for _, ch := range last {
		if ch == "old.1" {
			t.Errorf("old.1 subscribed on the new connection: %v", last)
		}
	}
}

// (Holds: guard.) Heartbeat misses while a connect hook blocks: the peer
// answers no ping on the first two redials and the hook waits for its ctx.
// The client must not hang in setup: it comes back once the venue answers.
func TestHeartbeatMissDuringSetup(t *testing.T) {
	var mute atomic.Bool
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		if mute.Load() && rc.idx <= 2 {
			for { // read and ignore everything, pings included
				if _, _, err := rc.readFrame(); err != nil {
					return
				}
			}
		}
		rc.serveJSONRPC(nil)
	}
	var ch chain
	var blocking atomic.Bool
	hook := func(ctx context.Context, s *actors.Setup) error {
		if blocking.Load() {
			_, err := s.Call(ctx, "public/test", nil) // never answered on a muted conn
			return err
		}
		return nil
	}
	c := dial(t, pe.URL, &ch, actors.WithHeartbeat(actors.HeartbeatPingPong, 50*time.Millisecond),
		actors.WithConnectHook(hook), actors.WithRequestTimeout(1500*time.Millisecond))
	mute.Store(true)
	blocking.Store(true)
	pe.dropAll()
	eventually(t, 15*time.Second, "connected again on conn 3", func() bool {
		return pe.conns.Load() >= 4 && c.State() == actors.StateConnected
	})
	noPanic(t, "LastError", c.Health().LastError)
	ch.check(t)
}

// A connect hook that subscribes through its handle (s.Client().Subscribe,
// a plausible "subscribe on connect"): Subscribe is intent and waits for the
// live connection, which waits for the hook. Does the client ever connect?
func TestSubscribeFromConnectHook(t *testing.T) {
	pe := newRawPeer(t, nil)
	var hookErr atomic.Value
	hook := func(ctx context.Context, s *actors.Setup) error {
		err := s.Client().Subscribe(ctx, "from.hook")
		if err != nil {
			hookErr.Store(err.Error())
		}
		return nil // the hook itself never fails
	}
	sys := newSys(t)
	c, err := actors.Connect(ctxT(t, 10*time.Second), sys, pe.URL, actors.WithConnectHook(hook),
		actors.WithRequestTimeout(time.Second), actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }))
	if err != nil {
		t.Fatalf("Connect with a hook that subscribes: %v", err)
	}
	defer c.Close()
	eventually(t, 5*time.Second, "from.hook active", func() bool { return chanState(c, "from.hook") == actors.ChannelActive })
	if e := hookErr.Load(); e != nil {
		t.Logf("Subscribe in the hook returned: %v", e)
	}
}

// (Guard.) WithRestoreSubscriptions(false): a rotation still carries the
// channels over (the venue sees them subscribed on the new connection); a
// reconnect drops them from the wanted set (Subscriptions, Health.Channels
// empty, not degraded).
func TestNoRestoreRotationAndReconnect(t *testing.T) {
	var mu sync.Mutex
	subs := map[int][]string{}
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) {
				mu.Lock()
				subs[rc.idx] = append(subs[rc.idx], r.Params.Channels...)
				mu.Unlock()
			}
			return false
		})
	}
	c := dial(t, pe.URL, nil, actors.WithRestoreSubscriptions(false))
	if err := c.Subscribe(ctxT(t, 5*time.Second), "a.b"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rotate(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]string(nil), subs[1]...)
	mu.Unlock()
	if len(got) != 1 || got[0] != "a.b" || chanState(c, "a.b") != actors.ChannelActive {
		t.Errorf("after a rotation without restore: venue saw %v on the new connection, channel %v", got, chanState(c, "a.b"))
	}
	pe.dropAll()
	eventually(t, 10*time.Second, "reconnected", func() bool { return c.Health().Reconnects >= 1 && c.State() == actors.StateConnected })
	h := c.Health()
	if len(c.Subscriptions()) != 0 || len(h.Channels) != 0 || h.Degraded {
		t.Errorf("after a reconnect without restore: wanted %v, channels %v, degraded %v", c.Subscriptions(), h.Channels, h.Degraded)
	}
}

// (Guard.) Health during an outage and after: Attempt climbs, NextRetry is
// set while waiting, ConnectedSince is zero; once back Attempt and NextRetry
// are zero, ConnectedSince set, LastError kept (documented).
func TestHealthDuringOutage(t *testing.T) {
	pe := newRawPeer(t, nil)
	c := dial(t, pe.URL, nil, actors.WithRetryDelay(50*time.Millisecond), actors.WithMaxBackoff(200*time.Millisecond))
	pe.refuse.Store(true)
	pe.dropAll()
	eventually(t, 10*time.Second, "the loss seen", func() bool { return c.Health().Reconnects >= 1 })
	sawWait := false
	eventually(t, 10*time.Second, "attempt 3 and a NextRetry seen", func() bool {
		h := c.Health()
		if h.State == actors.StateConnected {
			t.Errorf("connected while every handshake is refused")
			return true
		}
		if !h.ConnectedSince.IsZero() {
			t.Errorf("ConnectedSince %v while reconnecting", h.ConnectedSince)
			return true
		}
		if !h.NextRetry.IsZero() {
			sawWait = true
		}
		return h.Attempt >= 3 && sawWait
	})
	pe.refuse.Store(false)
	eventually(t, 10*time.Second, "connected", func() bool { return c.State() == actors.StateConnected })
	h := c.Health()
	if h.Attempt != 0 || !h.NextRetry.IsZero() || h.ConnectedSince.IsZero() || h.LastError == nil {
		t.Errorf("after the outage: attempt %d next %v since %v last error %v", h.Attempt, h.NextRetry, h.ConnectedSince, h.LastError)
	}
}

// An unsubscribe the venue refused (retried with backoff), then Subscribe of
// the same channel again: the stale unsubscribe retry must not fire
// afterwards and remove the channel at the venue while the client shows it
// active (silent loss of data).
func TestResubscribeAfterRefusedUnsubscribe(t *testing.T) {
	var mu sync.Mutex
	venueHas := map[string]bool{}
	var refusedOnce atomic.Bool
	var unsubs atomic.Int64
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if strings.HasSuffix(r.Method, "/unsubscribe") {
				unsubs.Add(1)
				if refusedOnce.CompareAndSwap(false, true) {
					_ = rc.text(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"error":{"code":11050,"message":"try later"}}`)
					return true
				}
				mu.Lock()
				for _, ch := range r.Params.Channels {
					delete(venueHas, ch)
				}
				mu.Unlock()
				return false
			}
			if isSub(r) {
				mu.Lock()
				for _, ch := range r.Params.Channels {
					venueHas[ch] = true
				}
				mu.Unlock()
			}
			return false
		})
	}
	c := dial(t, pe.URL, nil, actors.WithRetryDelay(100*time.Millisecond), actors.WithMaxBackoff(200*time.Millisecond))
	if err := c.Subscribe(ctxT(t, 5*time.Second), "x.1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(ctxT(t, 5*time.Second), "x.1"); err == nil {
		t.Fatal("the refused unsubscribe returned nil")
	}
	if err := c.Subscribe(ctxT(t, 5*time.Second), "x.1"); err != nil {
		t.Fatalf("Subscribe again: %v", err)
	}
	time.Sleep(time.Second) // several retry periods
	mu.Lock()
	has := venueHas["x.1"]
	mu.Unlock()
	st := chanState(c, "x.1")
	t.Logf("unsubscribe requests %d; venue has x.1 %v; client shows %v", unsubs.Load(), has, st)
	if st == actors.ChannelActive && !has {
		t.Errorf("the client shows x.1 active, but a stale unsubscribe retry removed it at the venue")
	}
	if !has {
		t.Errorf("x.1 wanted again but not subscribed at the venue")
	}
}

// (Guard.) The reverse: a subscribe the venue refuses (retried with
// backoff), then Unsubscribe: no stale subscribe retry may add the channel
// at the venue afterwards.
func TestUnsubscribeAfterRefusedSubscribe(t *testing.T) {
	var mu sync.Mutex
	venueHas := map[string]bool{}
	var subReqs atomic.Int64
	var refuse atomic.Bool
	refuse.Store(true)
	pe := newRawPeer(t, nil)
	pe.onConn = func(rc *rawConn) {
		rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
			if isSub(r) {
				subReqs.Add(1)
				if refuse.Load() {
					_ = rc.text(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"error":{"code":11050,"message":"try later"}}`)
					return true
				}
				mu.Lock()
				for _, ch := range r.Params.Channels {
					venueHas[ch] = true
				}
				mu.Unlock()
			}
			if strings.HasSuffix(r.Method, "/unsubscribe") {
				mu.Lock()
				for _, ch := range r.Params.Channels {
					delete(venueHas, ch)
				}
				mu.Unlock()
			}
			return false
		})
	}
	c := dial(t, pe.URL, nil, actors.WithRetryDelay(100*time.Millisecond), actors.WithMaxBackoff(200*time.Millisecond))
	if err := c.Subscribe(ctxT(t, 5*time.Second), "y.1"); err == nil {
		t.Fatal("refused subscribe returned nil")
	}
	_ = c.Unsubscribe(ctxT(t, 5*time.Second), "y.1")
	refuse.Store(false) // a stale retry would now succeed
	n := subReqs.Load()
	time.Sleep(time.Second)
	mu.Lock()
	has := venueHas["y.1"]
	mu.Unlock()
	if has || subReqs.Load() != n {
		t.Errorf("after Unsubscribe of a refused channel: venue has it %v, %d more subscribe requests", has, subReqs.Load()-n)
	}
	if st := chanState(c, "y.1"); st != 0 {
		t.Errorf("y.1 still in Health.Channels: %v", st)
	}
}
