package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	deribitvenue "github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/transport/wstest"
)

// Subscriptions as intent (issue 13). Before: a Subscribe or Unsubscribe
// while reconnecting returned ErrNotConnected and was forgotten; a refused
// restore was never retried on the live connection; a subscribe the venue
// applied in part returned nil.

func channelState(c *actors.Client, ch string) (actors.ChannelStatus, bool) {
	for _, cs := range c.Health().Channels {
		if cs.Channel == ch {
			return cs, true
		}
	}
	return actors.ChannelStatus{}, false
}

// A Subscribe and an Unsubscribe made while the venue is down are kept:
// the new connection has the new channel and not the removed one.
func TestSubscribeAndUnsubscribeWhileReconnectingAreKept(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithRetryCount(1000))...)
	if err := c.Subscribe(ctxT(t, 2*time.Second), "ticker.OLD"); err != nil {
		t.Fatal(err)
	}
	waitServerConn(t, srv)
	srv.RefuseHandshakes(http.StatusServiceUnavailable)
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnecting", func() bool { return c.State() != actors.StateConnected })

	err := c.Subscribe(ctxT(t, 300*time.Millisecond), "ticker.NEW")
	if !errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("Subscribe while reconnecting = %v, want a timeout that says not connected", err)
	}
	if err := c.Unsubscribe(ctxT(t, 2*time.Second), "ticker.OLD"); err != nil {
		t.Fatalf("Unsubscribe while reconnecting = %v, want nil (no connection has it)", err)
	}
	if got := c.Subscriptions(); !slices.Equal(got, []string{"ticker.NEW"}) {
		t.Fatalf("wanted while reconnecting: %v", got)
	}
	if cs, _ := channelState(c, "ticker.NEW"); cs.State != actors.ChannelPending {
		t.Fatalf("ticker.NEW while reconnecting: %+v", cs)
	}

	srv.RefuseHandshakes(0)
	if err := c.WaitConnected(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	if got := conns[len(conns)-1].Channels(); !slices.Equal(got, []string{"ticker.NEW"}) {
		t.Fatalf("the new connection has %v, want [ticker.NEW]", got)
	}
	if h := c.Health(); h.Degraded || len(h.Channels) != 1 || h.Channels[0].State != actors.ChannelActive {
		t.Fatalf("after the reconnect: degraded %v, channels %+v", h.Degraded, h.Channels)
	}
}

// A channel the venue refuses on restore is asked for again, with
// backoff, on the same live connection, and the client is degraded (in its
// health push too) until it is active.
func TestRefusedRestoreIsRetriedOnTheLiveConnection(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	var refuse atomic.Int32
	srv.Handle("public/subscribe", func(c *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) {
		if refuse.Add(-1) >= 0 {
			return nil, &wstest.RPCError{Code: 10028, Message: "too_many_requests"}
		}
		var req struct{ Channels []string }
		_ = json.Unmarshal(p, &req)
		return c.Subscribe(req.Channels...), nil
	})
	sys := newSystem(t)
	watch := newHealthWatch(sys)
	c := connect(t, sys, srv.URL(), fast()...)
	if err := c.WatchHealth(watch.pid); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctxT(t, 2*time.Second), "ticker.X"); err != nil {
		t.Fatal(err)
	}
	waitServerConn(t, srv)
	refuse.Store(3)
	srv.DropAll()

	eventually(t, 5*time.Second, "the restore refused", func() bool {
		cs, _ := channelState(c, "ticker.X")
		return c.State() == actors.StateConnected && cs.State == actors.ChannelFailed
	})
	cs, _ := channelState(c, "ticker.X")
	var rpcErr *actors.RPCError
	if !errors.As(cs.Err, &rpcErr) || rpcErr.Code != 10028 || cs.NextRetry.IsZero() || cs.Attempts < 1 {
		t.Fatalf("failed channel: %+v", cs)
	}
	gen := c.Health().Generation
	eventually(t, 10*time.Second, "retried to active on the same connection", func() bool {
		cs, _ := channelState(c, "ticker.X")
		return cs.State == actors.ChannelActive
	})
	if h := c.Health(); h.Generation != gen || h.Degraded {
		t.Fatalf("generation %d -> %d, degraded %v: the retry must not reconnect", gen, h.Generation, h.Degraded)
	}
	conns, _ := srv.WaitConns(ctxT(t, time.Second), 1)
	if !conns[len(conns)-1].Subscribed("ticker.X") {
		t.Fatal("the venue does not have the channel")
	}
	if !watch.saw(func(h actors.Health) bool { return h.State == actors.StateConnected && h.Degraded }) {
		t.Fatal("no health push said degraded")
	}
	eventually(t, 2*time.Second, "a push that is no longer degraded", func() bool {
		return watch.last().State == actors.StateConnected && !watch.last().Degraded
	})
}

// A venue that answers a subscribe without some of its channels (Deribit
// leaves out a mistyped one) has applied it in part: a *PartialError
// naming both sides, the missing channel failed and retried.
func TestSubscribeAppliedInPartNamesBothSides(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	srv.Handle("public/subscribe", func(c *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) {
		var req struct{ Channels []string }
		_ = json.Unmarshal(p, &req)
		valid := slices.DeleteFunc(req.Channels, func(ch string) bool { return strings.HasPrefix(ch, "tikcer.") })
		return c.Subscribe(valid...), nil
	})
	c := connect(t, newSystem(t), srv.URL(), fast()...)
	err := c.Subscribe(ctxT(t, 2*time.Second), "ticker.BTC", "tikcer.ETH")
	var pe *actors.PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Applied, []string{"ticker.BTC"}) || !slices.Equal(pe.NotApplied, []string{"tikcer.ETH"}) {
		t.Fatalf("Subscribe = %v, want a PartialError applied [ticker.BTC] not applied [tikcer.ETH]", err)
	}
	if !strings.Contains(err.Error(), "tikcer.ETH") || !strings.Contains(err.Error(), "ticker.BTC") {
		t.Fatalf("the error does not name both sides: %v", err)
	}
	cs, _ := channelState(c, "tikcer.ETH")
	if cs.State != actors.ChannelFailed || cs.Err == nil || !c.Health().Degraded {
		t.Fatalf("the mistyped channel: %+v, degraded %v", cs, c.Health().Degraded)
	}
	// Unsubscribing it ends the intent and the degradation.
	if err := c.Unsubscribe(ctxT(t, 2*time.Second), "tikcer.ETH"); err != nil {
		t.Fatal(err)
	}
	if h := c.Health(); h.Degraded || len(h.Channels) != 1 {
		t.Fatalf("after Unsubscribe: degraded %v, channels %+v", h.Degraded, h.Channels)
	}
}

// A wait that ends by cancellation says so and is not a timeout; bad
// channel names are refused before anything changes.
func TestSubscribeErrorsAreTyped(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	never := make(chan struct{})
	defer close(never)
	srv.Handle("public/subscribe", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		<-never // does not answer while the test runs
		return nil, nil
	})
	c := connect(t, newSystem(t), srv.URL(), fast()...)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := c.Subscribe(ctx, "ticker.BTC")
	if !errors.Is(err, context.Canceled) || errors.Is(err, actors.ErrTimeout) || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("cancelled Subscribe = %v, want context.Canceled and not ErrTimeout", err)
	}
	if !slices.Equal(c.Subscriptions(), []string{"ticker.BTC"}) {
		t.Fatal("a cancelled wait dropped the intent")
	}
	for _, bad := range [][]string{nil, {""}, {strings.Repeat("x", 1025)}} {
		if err := c.Subscribe(ctxT(t, time.Second), bad...); !errors.Is(err, actors.ErrInvalidRequest) {
			t.Fatalf("Subscribe(%d names) = %v, want ErrInvalidRequest", len(bad), err)
		}
	}
}

// healthWatch is an actor that keeps every HealthUpdate it receives.
type healthWatch struct {
	pid *actor.PID
	mu  sync.Mutex
	all []actors.Health
}

func newHealthWatch(sys *actor.ActorSystem) *healthWatch {
	w := &healthWatch{}
	w.pid = sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*actors.HealthUpdate); ok {
			w.mu.Lock()
			w.all = append(w.all, m.Health)
			w.mu.Unlock()
		}
	}))
	return w
}

func (w *healthWatch) saw(cond func(actors.Health) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.all, cond)
}

func (w *healthWatch) last() actors.Health {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.all) == 0 {
		return actors.Health{}
	}
	return w.all[len(w.all)-1]
}

// A venue's refusal kept in a failed channel's status (and in the error
// Subscribe builds from it) is bounded: its message is cut, the cut said,
// and its data left out.
func TestFailedChannelKeepsABoundedRefusal(t *testing.T) {
	long := strings.Repeat("é", 5000) // 10,000 bytes, two per rune
	srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithResponder("public/subscribe",
		func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
			return nil, &wstest.RPCError{Code: 11050, Message: long, Data: strings.Repeat("d", 4096)}
		}))
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithVenue(deribitvenue.Venue{}), actors.WithHeartbeat(actors.HeartbeatDisabled, 0))
	err := c.Subscribe(ctxT(t, 5*time.Second), "book.X")
	var refused *actors.RPCError
	if !errors.As(err, &refused) || refused.Code != 11050 || len(err.Error()) > 1000 {
		t.Fatalf("Subscribe: %d bytes: %v", len(err.Error()), err)
	}
	h := c.Health()
	if len(h.Channels) != 1 || h.Channels[0].State != actors.ChannelFailed {
		t.Fatalf("channels: %+v", h.Channels)
	}
	var kept *actors.RPCError
	if !errors.As(h.Channels[0].Err, &kept) || kept.Code != 11050 || len(kept.Message) > 600 || len(kept.Data) != 0 ||
		!utf8.ValidString(kept.Message) || !strings.Contains(kept.Message, "(10000 bytes)") {
		t.Fatalf("kept %d bytes of message (%q...), %d of data", len(kept.Message), kept.Message[:20], len(kept.Data))
	}
}

// ChannelCounts agrees with Health().Channels in every state a channel
// goes through: active, failed (a refused restore), stale and pending
// (reconnecting), and with Health().ChannelCounts.
func TestChannelCountsAgreeWithTheList(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	var refuse atomic.Bool
	srv.Handle("public/subscribe", func(c *wstest.Conn, p json.RawMessage) (any, *wstest.RPCError) {
		var req struct{ Channels []string }
		_ = json.Unmarshal(p, &req)
		if refuse.Load() && slices.Contains(req.Channels, "ticker.B") {
			return nil, &wstest.RPCError{Code: 10028, Message: "too_many_requests"}
		}
		return c.Subscribe(req.Channels...), nil
	})
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithRetryCount(1000))...)
	if got := c.ChannelCounts(); got != (actors.ChannelCounts{}) {
		t.Fatalf("no channels: %+v", got)
	}
	agree := func(what string) actors.ChannelCounts {
		t.Helper()
		h := c.Health()
		var want actors.ChannelCounts
		for _, cs := range h.Channels {
			want.Total++
			switch cs.State {
			case actors.ChannelActive:
				want.Active++
			case actors.ChannelPending:
				want.Pending++
			case actors.ChannelFailed:
				want.Failed++
			case actors.ChannelStale:
				want.Stale++
			case actors.ChannelResyncing:
				want.Resyncing++
			}
		}
		if got := c.ChannelCounts(); got != want || h.ChannelCounts != want {
			t.Fatalf("%s: ChannelCounts %+v, Health().ChannelCounts %+v, the list counts %+v", what, got, h.ChannelCounts, want)
		}
		return want
	}
	for _, ch := range []string{"ticker.A", "ticker.B", "ticker.C"} {
		if err := c.Subscribe(ctxT(t, 2*time.Second), ch); err != nil {
			t.Fatal(err)
		}
	}
	if got := agree("subscribed"); got.Active != 3 || got.Total != 3 {
		t.Fatalf("subscribed: %+v", got)
	}
	waitServerConn(t, srv)
	refuse.Store(true)
	srv.DropAll()
	eventually(t, 5*time.Second, "ticker.B refused on the new connection", func() bool {
		return c.State() == actors.StateConnected && c.ChannelCounts().Failed == 1
	})
	if got := agree("refused restore"); got.Failed != 1 || got.Active != 2 {
		t.Fatalf("refused restore: %+v", got)
	}
	srv.RefuseHandshakes(http.StatusServiceUnavailable)
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnecting", func() bool { return c.State() != actors.StateConnected })
	if got := agree("reconnecting"); got.Total != 3 || got.Active != 0 || got.Stale+got.Pending != 3 || got.Stale < 2 {
		t.Fatalf("reconnecting: %+v", got)
	}
	refuse.Store(false)
	srv.RefuseHandshakes(0)
	eventually(t, 10*time.Second, "all active again", func() bool { return c.ChannelCounts().Active == 3 })
	agree("restored")
}
