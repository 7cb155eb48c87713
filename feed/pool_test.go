package feed_test

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	vderibit "github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// newPool starts a pool on v of n clients, each with its own connection to
// srv (and the client options copts).
func newPool(t *testing.T, srv *wstest.Server, n int, v venue.Venue, opts []feed.Option, copts ...actors.Option) (*feed.Pool, []*actors.Client) {
	t.Helper()
	sys := testutil.NewSystem(t)
	r := &roster{}
	p, err := feed.New(sys, append([]feed.Option{feed.WithDiscovery(r.list), feed.WithVenue(v)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	urls := make([]string, n)
	for i := range urls {
		urls[i] = srv.URL()
	}
	return p, connectAll(t, sys, p, r, urls, append([]actors.Option{actors.WithVenue(v)}, copts...)...)
}

// A channel the venue refuses: Subscribe returns the refusal, the status
// shows it, and the channel stays wanted on its clients.
func TestSubscribeRefused(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	t.Cleanup(srv.Close)
	srv.Handle("public/subscribe", func(c *wstest.Conn, params json.RawMessage) (any, *wstest.RPCError) {
		return nil, &wstest.RPCError{Code: 11050, Message: "bad_request"}
	})
	p, cs := newPool(t, srv, 2, vderibit.Venue{}, nil)
	err := p.Subscribe(testutil.Context(t, 5*time.Second), "nosuch.channel")
	var rpc *actors.RPCError
	if !errors.As(err, &rpc) || rpc.Code != 11050 {
		t.Fatalf("Subscribe of a refused channel: %v", err)
	}
	ch, ok := status(t, p).Channel("nosuch.channel")
	if !ok || ch.Err == nil || ch.Active != 0 || ch.Copies != 2 {
		t.Fatalf("status %+v", ch)
	}
	for _, c := range cs {
		if !slices.Equal(c.Subscriptions(), []string{"nosuch.channel"}) {
			t.Fatalf("client wants %v", c.Subscriptions())
		}
	}
}

// Unsubscribe removes a channel from every client; Stop removes what is
// left, and later calls say ErrStopped. Neither is a gap.
func TestUnsubscribeAndStop(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	kinds := map[actors.InboundKind]int{}
	p, cs := newPool(t, srv, 3, vderibit.Venue{}, []feed.Option{feed.WithHandler(func(in actors.Inbound) {
		mu.Lock()
		kinds[in.Kind]++
		mu.Unlock()
	})})
	ctx := testutil.Context(t, 5*time.Second)
	if err := p.Subscribe(ctx, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"a", "b", "c"} {
		testutil.Eventually(t, 5*time.Second, "copies active", func() bool { return settled(t, p, ch, 2) })
		srv.Publish(ch, 1)
	}
	testutil.Eventually(t, 5*time.Second, "3 notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return kinds[actors.KindNotification] == 3
	})
	if err := p.Unsubscribe(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, ok := status(t, p).Channel("b"); ok {
		t.Fatal("b still held")
	}
	held := 0
	for _, c := range cs {
		if slices.Contains(c.Subscriptions(), "b") {
			t.Fatalf("a client still wants b: %v", c.Subscriptions())
		}
		held += len(c.Subscriptions())
	}
	if held != 4 { // a and c, two copies each
		t.Fatalf("%d copies held, want 4", held)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if len(c.Subscriptions()) != 0 {
			t.Fatalf("after Stop a client still wants %v", c.Subscriptions())
		}
	}
	mu.Lock()
	if kinds[actors.KindGap] != 0 || kinds[actors.KindNotification] != 3 {
		t.Fatalf("delivered %v: want 3 notifications and no gap", kinds)
	}
	mu.Unlock()
	if err := p.Subscribe(ctx, "d"); !errors.Is(err, feed.ErrStopped) {
		t.Fatalf("Subscribe after Stop: %v", err)
	}
	if err := p.Stop(); !errors.Is(err, feed.ErrStopped) {
		t.Fatalf("second Stop: %v", err)
	}
}

// Invalid options are a *actors.ConfigError naming the option.
func TestInvalidOptions(t *testing.T) {
	sys := testutil.NewSystem(t)
	for _, tc := range []struct {
		field string
		opts  []feed.Option
	}{
		{"Discovery", nil},
		{"Copies", []feed.Option{feed.WithCopies(feed.MaxCopies + 1)}},
		{"Window", []feed.Option{feed.WithWindow(0)}},
		{"Queue", []feed.Option{feed.WithQueue(0)}},
	} {
		opts := tc.opts
		if tc.field != "Discovery" {
			opts = append(opts, feed.WithDiscovery(func() []*actor.PID { return nil }))
		}
		_, err := feed.New(sys, opts...)
		var ce *actors.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Fatalf("%s: %v", tc.field, err)
		}
	}
}

// A discovery function that panics changes nothing: the pool keeps its
// clients and goes on.
func TestDiscoveryPanicContained(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	t.Cleanup(srv.Close)
	sys := testutil.NewSystem(t)
	r := &roster{}
	var broken atomic.Bool
	p, err := feed.New(sys, feed.WithDiscovery(func() []*actor.PID {
		if broken.Load() {
			panic("discovery broke")
		}
		return r.list()
	}), feed.WithVenue(vderibit.Venue{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	connectAll(t, sys, p, r, []string{srv.URL(), srv.URL()}, actors.WithVenue(vderibit.Venue{}))
	broken.Store(true)
	if err := p.Refresh(testutil.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := p.Subscribe(testutil.Context(t, 5*time.Second), "a"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "both copies active", func() bool { return settled(t, p, "a", 2) })
	if st := status(t, p); len(st.Clients) != 2 {
		t.Fatalf("after a panicking discovery: %+v", st.Clients)
	}
}
