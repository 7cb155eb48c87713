package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/jsonrpc"
	"github.com/zenws/zenws/actors/venue/binance"
	"github.com/zenws/zenws/transport/wstest"
)

// seqs collects the channel_seq of the ticker's notifications.
type seqs struct {
	mu  sync.Mutex
	got []uint64
}

func (s *seqs) handle(in actors.Inbound) {
	if in.Kind != actors.KindNotification {
		return
	}
	env, _ := jsonrpc.Peek(in.Data)
	n, ok := jsonrpc.Uint(jsonrpc.Field(jsonrpc.Field(env.Params, "data"), "channel_seq"))
	if !ok {
		return
	}
	s.mu.Lock()
	s.got = append(s.got, n)
	s.mu.Unlock()
}

func (s *seqs) list() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.got...)
}

// The server cuts connections at 1.5 s; the client, told the age limit is
// 1 s, replaces each one before that, without a gap: it never reconnects,
// and the notification stream has no hole and no duplicate.
func TestRotationBeforeMaxAgeHasNoGap(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit(), wstest.WithDeribitTicker(10*time.Millisecond), wstest.WithMaxConnAge(1500*time.Millisecond))
	defer srv.Close()
	var st seqs
	var mu sync.Mutex
	var states []actors.State
	c := connect(t, newSystem(t), srv.URL(), fast(
		actors.WithHandler(st.handle),
		actors.WithMaxConnectionAge(time.Second),
		actors.WithStateObserver(func(sc actors.StateChange) { mu.Lock(); states = append(states, sc.To); mu.Unlock() }),
	)...)
	ctx := ctxT(t, 10*time.Second)
	if err := c.Subscribe(ctx, "ticker.BTC-PERPETUAL.100ms"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 8*time.Second, "two rotations", func() bool { return c.Health().Rotations >= 2 })
	time.Sleep(100 * time.Millisecond) // notifications after the last switch
	h := c.Health()
	if h.Reconnects != 0 || c.State() != actors.StateConnected {
		t.Fatalf("reconnects %d, state %v: rotation must not drop the client", h.Reconnects, c.State())
	}
	mu.Lock()
	for _, s := range states {
		if s != actors.StateConnected && s != actors.StateConnecting {
			t.Fatalf("state went through %v during rotations (all: %v)", s, states)
		}
	}
	mu.Unlock()
	got := st.list()
	if len(got) < 50 {
		t.Fatalf("only %d notifications", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("notification %d has channel_seq %d after %d: a gap or a duplicate", i, got[i], got[i-1])
		}
	}
	if h.DuplicatesDropped == 0 {
		t.Fatal("no duplicates dropped: the connections never overlapped")
	}
	for _, sc := range srv.Conns() {
		if _, reason := sc.CloseReason(); reason == wstest.MaxConnAgeReason {
			t.Fatal("the server had to cut a connection for its age")
		}
	}
	if n := srv.TotalConns(); n < 3 {
		t.Fatalf("server saw %d connections, want >= 3 after two rotations", n)
	}
	t.Logf("%d rotations, %d notifications in order, %d duplicates dropped", h.Rotations, len(got), h.DuplicatesDropped)
}

func TestServerShutdownTriggersRotation(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), actors.WithVenue(binance.Venue{}), actors.WithRateLimiter(nil, actors.RateWait), actors.WithHandler(box.handle))
	ctx := ctxT(t, 10*time.Second)
	conns, err := srv.WaitConns(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	first := conns[0]
	if err := first.SendServerShutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if in := box.next(t); in.Kind != actors.KindJSON {
		t.Fatalf("the notice reaches the handler as %v", in.Kind)
	}
	eventually(t, 5*time.Second, "rotated", func() bool { return c.Health().Rotations == 1 })
	select {
	case <-first.Done():
	case <-ctx.Done():
		t.Fatal("the old connection was not closed")
	}
	if code, reason := first.CloseReason(); reason != "rotated" {
		t.Fatalf("old connection closed with %d %q, want the client's 'rotated'", code, reason)
	}
	if h := c.Health(); h.Reconnects != 0 || h.Generation != 2 {
		t.Fatalf("reconnects %d, generation %d", h.Reconnects, h.Generation)
	}
	if err := c.Send(ctx, []byte(`{"after":"rotation"}`)); err != nil {
		t.Fatal(err)
	}
}

func TestRotationFailureKeepsTheConnection(t *testing.T) {
	srv := wstest.NewServer()
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), fast()...)
	ctx := ctxT(t, 10*time.Second)
	srv.RefuseHandshakes(503)
	err := c.Rotate(ctx)
	if !errors.Is(err, actors.ErrRotationFailed) {
		t.Fatalf("Rotate against a refusing server: %v", err)
	}
	if h := c.Health(); h.Generation != 1 || h.State != actors.StateConnected || h.Reconnects != 0 {
		t.Fatalf("after a failed rotation: %+v", h)
	}
	if err := c.Send(ctx, []byte(`{}`)); err != nil {
		t.Fatalf("send on the kept connection: %v", err)
	}
	srv.RefuseHandshakes(0)
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if h := c.Health(); h.Rotations != 1 || h.Generation != 2 {
		t.Fatalf("after rotating: rotations %d generation %d", h.Rotations, h.Generation)
	}
}

// A request in flight on the old connection gets its response there: the
// old connection drains before it closes.
func TestRotationDrainsRequestsInFlight(t *testing.T) {
	srv := wstest.NewServer(wstest.WithResponder("slow", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		time.Sleep(400 * time.Millisecond)
		return "done", nil
	}))
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL())
	ctx := ctxT(t, 10*time.Second)
	res := make(chan error, 1)
	go func() {
		r, err := c.Call(ctx, "slow", nil)
		if err == nil && string(r) != `"done"` {
			err = errors.New("result " + string(r))
		}
		res <- err
	}()
	eventually(t, 5*time.Second, "request pending", func() bool { return c.Health().Pending == 1 })
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("request in flight during the rotation: %v", err)
	}
}

func TestRotateWhileNotConnected(t *testing.T) {
	bh := wstest.NewBlackhole()
	defer bh.Close()
	cfg, err := actors.NewConfig(bh.URL(), actors.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c, err := actors.Spawn(newSystem(t).Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Rotate(ctxT(t, 2*time.Second)); !errors.Is(err, actors.ErrNotConnected) {
		t.Fatalf("Rotate while connecting: %v", err)
	}
}

// slowRotationHook delays the connect pipeline of every connection after the
// first, so that a test can act while a rotation is being set up.
func slowRotationHook(started chan<- struct{}, d time.Duration) actors.ConnectHook {
	return func(ctx context.Context, s *actors.Setup) error {
		if s.Generation() > 1 {
			select {
			case started <- struct{}{}:
			default:
			}
			time.Sleep(d)
		}
		return nil
	}
}

// Changes made while a rotation sets up reach the new connection too.
func TestSubscribeDuringRotationReachesTheNewConnection(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribit())
	defer srv.Close()
	started := make(chan struct{}, 1)
	c := connect(t, newSystem(t), srv.URL(), actors.WithConnectHook(slowRotationHook(started, 200*time.Millisecond)))
	ctx := ctxT(t, 10*time.Second)
	if err := c.Subscribe(ctx, "a.chan", "c.chan"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Rotate(ctx) }()
	<-started
	if err := c.Subscribe(ctx, "b.chan"); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(ctx, "c.chan"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the old connection closed", func() bool { return srv.ConnCount() == 1 })
	conns, _ := srv.WaitConns(ctx, 1)
	if got := conns[0].Channels(); !slices.Equal(got, []string{"a.chan", "b.chan"}) {
		for _, m := range conns[0].Received() {
			t.Logf("%s", m.Data)
		}
		t.Fatalf("new connection has %v, want [a.chan b.chan]", got)
	}
}

// Frames that legitimately repeat on one connection are all delivered, even
// while a rotation overlaps two connections.
func TestRepeatedFramesDuringRotationAreDelivered(t *testing.T) {
	srv := wstest.NewServer(wstest.WithEcho(false))
	defer srv.Close()
	started := make(chan struct{}, 1)
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), actors.WithHandler(box.handle), actors.WithConnectHook(slowRotationHook(started, 200*time.Millisecond)))
	ctx := ctxT(t, 10*time.Second)
	conns, _ := srv.WaitConns(ctx, 1)
	old := conns[0]
	done := make(chan error, 1)
	go func() { done <- c.Rotate(ctx) }()
	<-started
	for i := 0; i < 2; i++ {
		if err := old.Send(ctx, websocket.MessageText, []byte(`{"type":"hb"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if in := box.next(t); string(in.Data) != `{"type":"hb"}` {
			t.Fatalf("got %s", in.Data)
		}
	}
}

// A draining connection that dies fails its requests at once.
func TestLostDrainingConnectionFailsItsRequestsAtOnce(t *testing.T) {
	srv := wstest.NewServer(wstest.WithResponder("slow", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		time.Sleep(3 * time.Second)
		return "late", nil
	}))
	defer srv.Close()
	c := connect(t, newSystem(t), srv.URL(), actors.WithRequestTimeout(20*time.Second))
	ctx := ctxT(t, 30*time.Second)
	conns, _ := srv.WaitConns(ctx, 1)
	res := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "slow", nil); res <- err }()
	eventually(t, 5*time.Second, "request pending", func() bool { return c.Health().Pending == 1 })
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conns[0].Drop()
	err := <-res
	if !errors.Is(err, actors.ErrDisconnected) {
		t.Fatalf("request on the dropped draining connection: %v, want ErrDisconnected", err)
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Fatalf("it failed after %v: not at once", el)
	}
	if c.State() != actors.StateConnected || c.Health().Reconnects != 0 {
		t.Fatal("losing the draining connection touched the current one")
	}
}
