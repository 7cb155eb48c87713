package balancer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/balancer"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

func fast(opts ...actors.Option) []actors.Option {
	return append([]actors.Option{
		actors.WithRetryDelay(20 * time.Millisecond),
		actors.WithMaxBackoff(100 * time.Millisecond),
		actors.WithRetryCount(1000),
	}, opts...)
}

// auth is a connect hook for the simulator's private methods.
func auth(ctx context.Context, s *actors.Setup) error {
	_, err := s.Call(ctx, "public/auth", map[string]string{"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"})
	return err
}

type pool struct {
	sys     *actor.ActorSystem
	servers []*wstest.Server
	clients []*actors.Client
}

func newPool(t *testing.T, n int, srvOpts []wstest.Option, opts ...actors.Option) *pool {
	t.Helper()
	p := &pool{sys: testutil.NewSystem(t)}
	for i := 0; i < n; i++ {
		srv := wstest.NewServer(srvOpts...)
		t.Cleanup(srv.Close)
		c, err := actors.Connect(testutil.Context(t, 10*time.Second), p.sys, srv.URL(), fast(opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		p.servers = append(p.servers, srv)
		p.clients = append(p.clients, c)
	}
	return p
}

func (p *pool) pids() []*actor.PID {
	out := make([]*actor.PID, len(p.clients))
	for i, c := range p.clients {
		out[i] = c.PID()
	}
	return out
}

func (p *pool) balancer(t *testing.T, opts ...balancer.Option) *balancer.Balancer {
	t.Helper()
	b, err := balancer.New(p.sys, append([]balancer.Option{balancer.WithDiscovery(p.pids)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	waitEligible(t, b, len(p.clients))
	return b
}

func (p *pool) balancerWith(t *testing.T, disc func() []*actor.PID) *balancer.Balancer {
	t.Helper()
	b, err := balancer.New(p.sys, balancer.WithDiscovery(disc))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	return b
}

func waitEligible(t *testing.T, b *balancer.Balancer, n int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%d eligible clients", n), func() bool { return eligibleCount(b) == n })
}

func eligibleCount(b *balancer.Balancer) int {
	n := 0
	for _, ch := range b.PoolHealth() {
		if ch.Eligible {
			n++
		}
	}
	return n
}

func TestSendsSpreadOverConnectedClients(t *testing.T) {
	p := newPool(t, 3, []wstest.Option{wstest.WithDeribit()})
	b := p.balancer(t)
	ctx := testutil.Context(t, 10*time.Second)
	for i := 0; i < 300; i++ {
		if err := b.Send(ctx, []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 30; i++ {
		if _, err := b.Call(ctx, "public/get_time", nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range b.PoolHealth() {
		if ch.Picks < 30 {
			t.Fatalf("client %v picked %d times of 330: not spread", ch.PID, ch.Picks)
		}
		if ch.PeakEWMA == 0 && ch.Picks > 0 {
			t.Logf("client %v: no round trip recorded yet", ch.PID)
		}
	}
}

// One server dies mid-traffic. With healthy clients left: no balanced Send
// and no retry-safe call fails; orders (not retry-safe) fail only with
// ErrDisconnected and are never executed twice.
func TestKilledServerFailsOverWithoutDuplicates(t *testing.T) {
	p := newPool(t, 3, []wstest.Option{wstest.WithDeribit()}, actors.WithConnectHook(auth), actors.WithRequestTimeout(3*time.Second))
	b := p.balancer(t)
	ctx := testutil.Context(t, 30*time.Second)
	var (
		wg                                       sync.WaitGroup
		mu                                       sync.Mutex
		sendErrs, safeErrs, orderErrs, badOrders []error
		ordersOK                                 atomic.Int64
		labels                                   atomic.Int64
		okLabels                                 sync.Map
	)
	stop := make(chan struct{})
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := b.Send(ctx, []byte(`{"tick":1}`)); err != nil {
					mu.Lock()
					sendErrs = append(sendErrs, err)
					mu.Unlock()
				}
				if _, err := b.Call(ctx, "public/get_time", nil); err != nil {
					mu.Lock()
					safeErrs = append(safeErrs, err)
					mu.Unlock()
				}
				label := fmt.Sprintf("o-%d", labels.Add(1))
				_, err := b.Call(ctx, "private/buy", map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 10, "label": label})
				switch {
				case err == nil:
					ordersOK.Add(1)
					okLabels.Store(label, true)
				case errors.Is(err, actors.ErrDisconnected):
					mu.Lock()
					orderErrs = append(orderErrs, err)
					mu.Unlock()
				default:
					mu.Lock()
					badOrders = append(badOrders, err)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	p.servers[0].Close() // killed: listener and connections gone
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(sendErrs) != 0 || len(safeErrs) != 0 || len(badOrders) != 0 {
		t.Fatalf("failures with two healthy clients left: sends %v, retry-safe calls %v, orders with other errors %v", first(sendErrs), first(safeErrs), first(badOrders))
	}
	// Every order the server executed, counted by label: never twice, and
	// every order reported done was executed.
	total := 0
	for i := int64(1); i <= labels.Load(); i++ {
		label := fmt.Sprintf("o-%d", i)
		n := 0
		for _, s := range p.servers {
			n += s.OrdersByLabel(label)
		}
		if n > 1 {
			t.Fatalf("order %s executed %d times", label, n)
		}
		if _, ok := okLabels.Load(label); ok && n != 1 {
			t.Fatalf("order %s reported done but executed %d times", label, n)
		}
		total += n
	}
	if ordersOK.Load() < 10 {
		t.Fatalf("only %d orders went through: the test did not load the pool", ordersOK.Load())
	}
	t.Logf("orders: %d done, %d executed, %d failed with ErrDisconnected; failovers %d",
		ordersOK.Load(), total, len(orderErrs), b.Stats().Failovers)
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

func TestSlowClientGetsLittleTraffic(t *testing.T) {
	slowdown := func(d time.Duration) wstest.Option {
		return wstest.WithResponder("work", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
			time.Sleep(d)
			return true, nil
		})
	}
	p := &pool{sys: testutil.NewSystem(t)}
	// 10x slower: a gap that queueing jitter on a loaded machine cannot
	// hide (the benchmark measures the 5x case).
	for i, d := range []time.Duration{2 * time.Millisecond, 2 * time.Millisecond, 2 * time.Millisecond, 20 * time.Millisecond} {
		srv := wstest.NewServer(slowdown(d))
		t.Cleanup(srv.Close)
		c, err := actors.Connect(testutil.Context(t, 10*time.Second), p.sys, srv.URL(), fast()...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		p.servers, p.clients = append(p.servers, srv), append(p.clients, c)
		_ = i
	}
	b := p.balancer(t)
	ctx := testutil.Context(t, 20*time.Second)
	var wg sync.WaitGroup
	var calls atomic.Int64
	deadline := time.Now().Add(1500 * time.Millisecond)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := b.Call(ctx, "work", nil); err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	slow := p.clients[3].PID()
	var slowPicks, all uint64
	for _, ch := range b.PoolHealth() {
		all += ch.Picks
		if ch.PID.Equal(slow) {
			slowPicks = ch.Picks
		}
	}
	share := float64(slowPicks) / float64(all)
	t.Logf("the 10x slower client got %.1f%% of %d calls (a quarter would be 25%%)", 100*share, all)
	if all < 100 {
		t.Fatalf("only %d calls: too few to judge", all)
	}
	if share >= 0.15 {
		t.Fatalf("the 10x slower client got %.1f%% of the calls: traffic did not shift away", 100*share)
	}
}

func TestAllServersDownIsErrNoConnectionsAtOnce(t *testing.T) {
	p := newPool(t, 2, nil)
	b := p.balancer(t)
	for _, s := range p.servers {
		s.Close()
	}
	testutil.Eventually(t, 5*time.Second, "no eligible client", func() bool { return eligibleCount(b) == 0 })
	ctx := testutil.Context(t, 10*time.Second)
	start := time.Now()
	err := b.Send(ctx, []byte("x"))
	_, cerr := b.Call(ctx, "public/get_time", nil)
	if !errors.Is(err, balancer.ErrNoConnections) || !errors.Is(cerr, balancer.ErrNoConnections) {
		t.Fatalf("all down: Send %v, Call %v; want ErrNoConnections", err, cerr)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("ErrNoConnections took %v: it must not wait for a request timeout", el)
	}
}

func TestDiscoveryWithDeadUnknownAndRemotePIDs(t *testing.T) {
	p := newPool(t, 2, nil)
	dead := p.clients[1]
	_ = dead.Close()
	other := p.sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {})) // an actor, not a client
	defer p.sys.Root.Stop(other)
	disc := func() []*actor.PID {
		return []*actor.PID{nil, dead.PID(), other, actor.NewPID("10.0.0.1:9999", "zenws-client$1"), p.clients[0].PID()}
	}
	b, err := balancer.New(p.sys, balancer.WithDiscovery(disc))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Stop() }()
	waitEligible(t, b, 1)
	if n := len(b.PoolHealth()); n != 1 {
		t.Fatalf("table has %d members, want only the live client", n)
	}
	if err := b.Send(testutil.Context(t, 5*time.Second), []byte("ok")); err != nil {
		t.Fatal(err)
	}
	empty, err := balancer.New(p.sys, balancer.WithDiscovery(func() []*actor.PID { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = empty.Stop() }()
	if err := empty.Send(testutil.Context(t, time.Second), []byte("x")); !errors.Is(err, balancer.ErrNoConnections) {
		t.Fatalf("empty discovery: %v", err)
	}
	panicky, err := balancer.New(p.sys, balancer.WithDiscovery(func() []*actor.PID { panic("discovery bug") }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = panicky.Stop() }()
	if err := panicky.Send(testutil.Context(t, time.Second), []byte("x")); !errors.Is(err, balancer.ErrNoConnections) {
		t.Fatalf("panicking discovery: %v", err)
	}
}

func TestStoppedClientLeavesAndHalfOpenIsNotPicked(t *testing.T) {
	// Misses never add up to a reconnect: the stalled client stays stalled
	// (and not eligible) for the whole test.
	p := newPool(t, 3, nil, actors.WithHeartbeat(actors.HeartbeatPingPong, 100*time.Millisecond), func(c *actors.Config) { c.HeartbeatMisses = 1000 })
	b := p.balancer(t)
	_ = p.clients[2].Close()
	testutil.Eventually(t, 5*time.Second, "the stopped client left the table", func() bool { return len(b.PoolHealth()) == 2 })
	// A stalled (half-open) connection: its pings go unanswered, it is no
	// longer eligible, and sends go elsewhere.
	conns, err := p.servers[1].WaitConns(testutil.Context(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	conns[0].Stall()
	testutil.Eventually(t, 5*time.Second, "the stalled client is not eligible", func() bool {
		for _, ch := range b.PoolHealth() {
			if ch.PID.Equal(p.clients[1].PID()) {
				return !ch.Eligible
			}
		}
		return false
	})
	var before uint64
	for _, ch := range b.PoolHealth() {
		if ch.PID.Equal(p.clients[1].PID()) {
			before = ch.Picks
		}
	}
	ctx := testutil.Context(t, 5*time.Second)
	for i := 0; i < 50; i++ {
		if err := b.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range b.PoolHealth() {
		if ch.PID.Equal(p.clients[1].PID()) && ch.Picks != before {
			t.Fatalf("the half-open client was picked %d times", ch.Picks-before)
		}
	}
}

func TestHealthScoreStrategyTakesTurnsOnTies(t *testing.T) {
	p := newPool(t, 3, nil)
	b := p.balancer(t, balancer.WithStrategy(balancer.HealthScore))
	ctx := testutil.Context(t, 5*time.Second)
	for i := 0; i < 30; i++ {
		if err := b.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range b.PoolHealth() {
		if ch.Picks != 10 || ch.Score != 100 {
			t.Fatalf("client %v: %d picks, score %.0f; want 10 each and 100 for idle clients", ch.PID, ch.Picks, ch.Score)
		}
	}
}

func TestMaxAttemptsAndRetrySafety(t *testing.T) {
	// Every server answers "slow" after the request timeout: a timeout may
	// have reached the server, so it is retried only when retry-safe.
	slow := wstest.WithResponder("slow", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
		time.Sleep(300 * time.Millisecond)
		return true, nil
	})
	p := newPool(t, 3, []wstest.Option{slow}, actors.WithRequestTimeout(50*time.Millisecond))
	b := p.balancer(t)
	ctx := testutil.Context(t, 10*time.Second)
	_, err := b.Call(ctx, "slow", nil)
	if !errors.Is(err, actors.ErrTimeout) || errors.Is(err, balancer.ErrMaxAttempts) {
		t.Fatalf("not retry-safe: %v, want the first ErrTimeout only", err)
	}
	_, err = b.Call(ctx, "slow", nil, balancer.RetrySafe(), balancer.CallMaxAttempts(2))
	if !errors.Is(err, balancer.ErrMaxAttempts) || !errors.Is(err, actors.ErrTimeout) {
		t.Fatalf("retry-safe: %v, want ErrMaxAttempts wrapping ErrTimeout", err)
	}
	if f := b.Stats().Failovers; f != 1 {
		t.Fatalf("failovers %d, want 1", f)
	}
	// A JSON-RPC error is an answer: never retried. (The servers first
	// finish the slow requests that block their read loops.)
	time.Sleep(400 * time.Millisecond)
	for _, s := range p.servers {
		s.Handle("fails", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
			return nil, &wstest.RPCError{Code: 10009, Message: "not_enough_funds"}
		})
	}
	var rpc *actors.RPCError
	if _, err := b.Call(ctx, "fails", nil, balancer.RetrySafe()); !errors.As(err, &rpc) || rpc.Code != 10009 {
		t.Fatalf("RPC error: %v", err)
	}
	if f := b.Stats().Failovers; f != 1 {
		t.Fatalf("an RPC error was retried (failovers %d)", f)
	}
}

func TestPropsAndOf(t *testing.T) {
	p := newPool(t, 1, nil)
	pid, err := p.sys.Root.SpawnNamed(balancer.Props(balancer.WithDiscovery(p.pids)), "my-balancer")
	if err != nil {
		t.Fatal(err)
	}
	var b *balancer.Balancer
	testutil.Eventually(t, 5*time.Second, "the router started", func() bool {
		var ok bool
		b, ok = balancer.Of(p.sys, pid)
		return ok
	})
	if err := b.Refresh(testutil.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitEligible(t, b, 1)
	if err := b.Send(testutil.Context(t, 5*time.Second), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(testutil.Context(t, 5*time.Second), []byte("x")); !errors.Is(err, balancer.ErrStopped) && !errors.Is(err, balancer.ErrNoConnections) {
		t.Fatalf("after Stop: %v", err)
	}
}

// Refresh returns only once a discovery that started after it is in the
// table, even when another discovery was under way.
func TestRefreshWaitsForAFreshDiscovery(t *testing.T) {
	p := newPool(t, 2, nil)
	var mu sync.Mutex
	list := p.pids()[:1]
	gate := make(chan struct{})
	var gated atomic.Bool
	disc := func() []*actor.PID {
		if gated.Load() {
			<-gate
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]*actor.PID(nil), list...)
	}
	b := p.balancerWith(t, disc)
	gated.Store(true)
	b.Invalidate() // a discovery starts and blocks, reading the old list later
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	list = p.pids() // the list changes after that run started
	mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- b.Refresh(testutil.Context(t, 10*time.Second)) }()
	time.Sleep(20 * time.Millisecond)
	gated.Store(false)
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(b.PoolHealth()); n != 2 {
		t.Fatalf("Refresh returned with %d members; the discovery after it lists 2", n)
	}
}

// Options out of range given to Props: the router says so and stops; no
// spinning, no panic.
func TestPropsWithBadOptionsStops(t *testing.T) {
	sys := testutil.NewSystem(t)
	pid, err := sys.Root.SpawnNamed(balancer.Props(balancer.WithDiscoveryInterval(0)), "bad-balancer")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the router stopped", func() bool {
		_, alive := sys.ProcessRegistry.Get(pid)
		return !alive
	})
	if _, ok := balancer.Of(sys, pid); ok {
		t.Fatal("Of found a router that never started")
	}
}
